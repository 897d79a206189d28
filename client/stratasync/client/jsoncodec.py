"""JSON for the client: orjson when it is installed (``pip install 'stratasync[fast]'``), else the stdlib.

Both paths write the same kind of text: compact, raw UTF-8 (as ``JSON.stringify`` writes it), and
every lone surrogate (half an emoji, ``"\\ud83d"``, legal in JavaScript strings) as its ``\\uXXXX``
escape, so an event's JSON survives the eventlog and the wire exactly. orjson refuses lone
surrogates and integers beyond 64 bits in both directions; those values take the stdlib path.
Neither path checks strictness (NaN, Infinity): :meth:`Store.commit` refuses those before encoding.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

try:  # pragma: no cover - which branch runs depends on the install
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

#: True when orjson does the work.
USING_ORJSON = orjson is not None

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Digits as ``0``, every other byte as a space: a run of 19 zeros in the translation is a run of 19
#: digits, which may be an integer beyond 64 bits (``-9223372036854775809`` has 19), which orjson
#: would read as a float. Much faster than a regular expression's search.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_NUMBER = b"0" * 19


def _may_hold_a_long_integer(raw: bytes) -> bool:
    return _LONG_NUMBER in raw.translate(_DIGITS_AS_ZEROS)


def _stdlib_dumps(value: Any) -> str:
    text = _ENCODER.encode(value)
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return text


def _orjson_dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # a lone surrogate, an integer beyond 64 bits, a non-str key
        return _stdlib_dumps(value)


def _stdlib_loads(data: bytes | str) -> Any:
    return json.loads(data)


def _orjson_loads(data: bytes | str) -> Any:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not _may_hold_a_long_integer(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:  # a lone surrogate escape, or not JSON at all
            pass
    return json.loads(data)


def _stdlib_loads_many(texts: Sequence[str]) -> list[Any]:
    return [json.loads(text) for text in texts]


def _orjson_loads_many(texts: Sequence[str]) -> list[Any]:
    if len(texts) > 1:
        raw = ("[" + ",".join(texts) + "]").encode("utf-8", "surrogatepass")
        if not _may_hold_a_long_integer(raw):
            try:
                values = orjson.loads(raw)
            except orjson.JSONDecodeError:  # a lone surrogate escape, or a text that is not JSON
                pass
            else:
                if len(values) == len(texts):
                    return values  # type: ignore[no-any-return]
    return [_orjson_loads(text) for text in texts]


dumps = _orjson_dumps if USING_ORJSON else _stdlib_dumps
dumps.__doc__ = "Compact JSON text of ``value``; lone surrogates as ``\\uXXXX`` escapes."
loads = _orjson_loads if USING_ORJSON else _stdlib_loads
loads.__doc__ = "The value of JSON text (str or UTF-8 bytes); raises ValueError for text that is not JSON."
loads_many = _orjson_loads_many if USING_ORJSON else _stdlib_loads_many
loads_many.__doc__ = """The values of JSON texts that each hold one value (an archived segment's events):
``[loads(text) for text in texts]``, parsed as one array where orjson does the work."""


def check_strict(value: Any, path: str = "args") -> None:
    """Raise ValueError for what strict JSON cannot carry (NaN, ±Infinity, integers beyond a double)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value!r}, which JSON cannot carry")
    elif isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            raise ValueError(f"{path} is an integer too large for JSON readers (Infinity)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has a key {key!r} that is not a string")
            check_strict(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_strict(item, f"{path}[{index}]")
    else:
        raise ValueError(f"{path} is a {type(value).__name__}, which is not JSON")


__all__ = ["USING_ORJSON", "check_strict", "dumps", "loads", "loads_many"]
