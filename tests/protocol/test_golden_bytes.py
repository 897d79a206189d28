"""Golden bytes: how the backend encodes a pushed event, and the batch digest that recognises a
retried push. Both are stored for good (the digest survives archiving in the tombstone), so a
change here would make every retry of a batch pushed before the change look like a conflict,
and would change the bytes a pull serves. Change them only on purpose, with a migration note.

Why the push path stays on the standard library's JSON (measured: pydantic-core's parser and
serializer are about twice as fast on a 100-event push): pydantic-core's ``from_json`` refuses a
lone surrogate escape (``"\\ud83d"``, which LiveStore clients may send), its ``to_json`` writes
NaN and Infinity, and it formats some floats differently (``1e-7`` where ``json`` writes ``1e-07``),
which would change these bytes.
"""

from __future__ import annotations

from stratasync.core.service import SyncService
from stratasync.protocol import jsontext
from stratasync.protocol.messages import PushPayload
from stratasync.storage import EventBatch
from stratasync.storage.memory import InMemoryStorage

PUSH = (
    '{"storeId":"golden","backendId":{"_tag":"None"},"batch":['
    '{"name":"v1.TodoCreated","args":{"id":"t1","text":"Grüße \\ud83d \\ud83d\\ude00 \\u2028 \\"q\\" \\\\",'
    '"n":[1e-7,1e+20,-0.0,0.1,12345678901234567890,true,null],"nested":{"z":1,"a":2}},'
    '"seqNum":1,"parentSeqNum":0,"clientId":"c1","sessionId":"s1"},'
    '{"name":"v1.TodoCompleted","args":{"id":"t1"},"seqNum":2,"parentSeqNum":1,"clientId":"c1","sessionId":"s1"}]}'
)
STORED = [
    '{"name":"v1.TodoCreated","args":{"id":"t1","text":"Grüße \\ud83d \U0001f600 \u2028 \\"q\\" \\\\",'
    '"n":[1e-07,1e+20,-0.0,0.1,12345678901234567890,true,null],"nested":{"z":1,"a":2}},'
    '"seqNum":1,"parentSeqNum":0,"clientId":"c1","sessionId":"s1"}',
    '{"name":"v1.TodoCompleted","args":{"id":"t1"},"seqNum":2,"parentSeqNum":1,"clientId":"c1","sessionId":"s1"}',
]
DIGEST = "f22813e33913d160cad0c4eae94dd511cacde2aceab357c8d5d9b03ad4fad87a"


def test_pushed_events_are_stored_as_these_bytes_with_this_digest() -> None:
    storage = InMemoryStorage()
    service = SyncService(storage, clock=lambda: "2026-12-01T00:00:00.000Z")
    service.push("golden", PushPayload.model_validate(jsontext.loads(PUSH)))
    stored = [event.event_json for event in storage.read("golden", 0)]
    assert stored == STORED
    assert EventBatch(0, list(enumerate(STORED, start=1)), "any time").digest == DIGEST
