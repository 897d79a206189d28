"""stratasync: a LiveStore-compatible sync backend for local-first apps on AWS.

Layers, from the wire inwards:

* :mod:`stratasync.protocol` - wire models and the Effect-RPC envelope (pure, no I/O).
* :mod:`stratasync.core` - the sync rules (push, pull, validation) over a storage interface.
* :mod:`stratasync.storage` - the storage interface and its adapters (in-memory, DynamoDB).
* :mod:`stratasync.handlers`, :mod:`stratasync.devserver`, :mod:`stratasync.cli` - thin entry points.
* :mod:`stratasync.client` - the Python client library.
"""

__version__ = "0.1.0"
