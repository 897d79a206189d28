"""The client's JSON: orjson when installed, the stdlib otherwise; both keep hostile values exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from stratasync.client import RetryPolicy, Store, jsoncodec
from stratasync.client.todos import schema, todo_created
from tests.client.fakes import ScriptedTransport, wire_event

HALF_EMOJI = "\ud83d"
Codec = tuple[Callable[[Any], str], Callable[[bytes | str], Any]]

CODECS: dict[str, Codec] = {"stdlib": (jsoncodec._stdlib_dumps, jsoncodec._stdlib_loads)}
if jsoncodec.USING_ORJSON:
    CODECS["orjson"] = (jsoncodec._orjson_dumps, jsoncodec._orjson_loads)


@pytest.fixture(params=sorted(CODECS))
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Codec:
    dumps, loads = CODECS[request.param]
    monkeypatch.setattr(jsoncodec, "dumps", dumps)
    monkeypatch.setattr(jsoncodec, "loads", loads)
    return dumps, loads


VALUES = [
    {"text": f"half {HALF_EMOJI} an emoji", "id": "é✓"},
    {"pair": "\U0001f600", "control": '\x1f\n"\\'},
    {"big": 2**70, "neg": -(10**25), "float": 1e308, "small": 5e-324, "safe": 2**53 - 1},
    [None, True, False, 0, -0.0, 1.5, [], {}],
]


@pytest.mark.parametrize("value", VALUES)
def test_round_trips_are_exact(codec: Codec, value: Any) -> None:
    dumps, loads = codec
    text = dumps(value)
    text.encode()  # valid UTF-8 whatever the value held
    assert loads(text) == value
    assert loads(text.encode()) == value
    assert loads(text) == json.loads(text)  # what any JSON reader makes of it
    assert " " not in dumps({"a": [1, 2]})  # compact


def test_lone_surrogates_are_written_as_escapes_and_other_characters_raw(codec: Codec) -> None:
    dumps, _ = codec
    assert dumps({"t": f"a{HALF_EMOJI}b é"}) == '{"t":"a\\ud83db é"}'


def test_the_eventlog_is_faithful_with_either_codec(codec: Codec) -> None:
    upstream = [wire_event(1, 0, "v1.TodoCreated", {"id": "s", "text": f"half {HALF_EMOJI}"}, "js")]
    transport = ScriptedTransport(upstream)
    with Store(schema, "s", transport=transport, retry=RetryPolicy(0.001, 0.01)) as store:
        store.commit(todo_created(id="mine", text=f"mine {HALF_EMOJI} é"))
        store.sync(timeout=10)
        stored = [row[0] for row in store._db.conn.execute("SELECT event FROM __ss_eventlog ORDER BY seq")]
        assert '"text":"half \\ud83d"' in stored[0]
        assert '"text":"mine \\ud83d é"' in stored[1]
        assert [event.encoded() for event in store.events()] == transport.upstream


def test_text_that_is_not_json_raises_value_error(codec: Codec) -> None:
    _, loads = codec
    for text in ("{", "NaN?", b"\xff"):
        with pytest.raises(ValueError, match=r"."):
            loads(text)
