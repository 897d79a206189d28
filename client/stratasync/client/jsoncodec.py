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
from typing import Any

try:  # pragma: no cover - which branch runs depends on the install
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

#: True when orjson does the work.
USING_ORJSON = orjson is not None

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: 20 digits in a row may be an integer beyond 64 bits, which orjson would read as a float.
_LONG_NUMBER = re.compile(rb"\d{20}")


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
    if _LONG_NUMBER.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:  # a lone surrogate escape, or not JSON at all
            pass
    return json.loads(data)


dumps = _orjson_dumps if USING_ORJSON else _stdlib_dumps
dumps.__doc__ = "Compact JSON text of ``value``; lone surrogates as ``\\uXXXX`` escapes."
loads = _orjson_loads if USING_ORJSON else _stdlib_loads
loads.__doc__ = "The value of JSON text (str or UTF-8 bytes); raises ValueError for text that is not JSON."


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


__all__ = ["USING_ORJSON", "check_strict", "dumps", "loads"]
