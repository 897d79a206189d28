"""Conformance suites for storage adapters, shipped so that a third-party adapter can reuse them
(in the manner of eventsourcing's ``eventsourcing.tests.persistence``).

Subclass the suite of each interface your adapter implements, and say how to make one::

    from stratasync.testing.event_log import EventLogStorageConformance

    class TestMyStorage(EventLogStorageConformance):
        def create_store(self) -> EventLogStorage:
            return MyStorage(...)

* :class:`~stratasync.testing.event_log.EventLogStorageConformance`: the sync contract
  (backend ids, conditional appends, reads from any cursor, racing writers, large batches).
* :class:`~stratasync.testing.archive.ArchiveConformance`: a hot tier with a segment storage
  under the archiver (reads across the boundary, crash safety at every step, concurrent archivers).
* :class:`~stratasync.testing.segments.SegmentStorageConformance`: immutable segment objects
  (checksums on upload, presigned URLs, metadata).

They need pytest (``pip install "stratasync[testing]"``). stratasync's own adapters (in memory,
DynamoDB on moto and DynamoDB Local, S3 on moto and SeaweedFS) pass all three.
"""
