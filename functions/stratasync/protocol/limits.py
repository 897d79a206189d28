"""Transport limits of LiveStore's sync-cf provider (``common/constants.ts`` upstream)."""

#: Largest accepted request body, in bytes (``MAX_HTTP_REQUEST_BYTES``).
MAX_REQUEST_BYTES = 900_000
#: Most events in one push (``MAX_PUSH_EVENTS_PER_REQUEST``).
MAX_PUSH_EVENTS = 100
#: Most events in one pull chunk (``MAX_PULL_EVENTS_PER_MESSAGE``).
MAX_PULL_EVENTS_PER_CHUNK = 100
#: Target size of one encoded pull chunk, in bytes (``MAX_TRANSPORT_PAYLOAD_BYTES``).
MAX_PULL_CHUNK_BYTES = 900_000
#: The largest seqNum a client can send (JavaScript's ``Number.MAX_SAFE_INTEGER``).
MAX_SEQ_NUM = 2**53 - 1
