"""JSON text as the protocol carries it: strict, compact, valid UTF-8, byte-faithful to JavaScript.

* **Strict.** ``NaN``, ``Infinity`` and numbers beyond the double range (``1e400``, or an integer
  literal of more than 308 digits, which JavaScript reads as ``Infinity``) are not JSON. Python's
  ``json`` module reads and writes them by default; here :func:`loads` reads them as infinite or
  not-a-number floats and :func:`dumps` refuses those with :class:`NotJsonError`, so that nothing a
  JSON reader cannot read is ever stored or sent.
* **Lone surrogates.** A JavaScript string may hold half a surrogate pair (half an emoji,
  ``"\\ud83d"``); ``JSON.stringify`` writes it as that escape. Python reads the escape into a
  ``str`` that cannot be encoded to UTF-8. :func:`dumps` writes such code points as the very same
  ``\\uXXXX`` escapes, so the text is valid UTF-8 and round-trips to a LiveStore client exactly as
  it was committed. Every other character is written raw (``ensure_ascii=False``), as
  ``JSON.stringify`` does.
"""

from __future__ import annotations

import json
import re
from typing import Any

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Integer literals longer than this are beyond the double range (1.8e308).
_MAX_INT_DIGITS = 308


class NotJsonError(ValueError):
    """A value that JSON cannot represent (NaN, Infinity, a number beyond the double range)."""


def dumps(value: Any) -> str:
    """Compact, strict JSON text of ``value`` (see the module docstring)."""
    try:
        text = _ENCODER.encode(value)
    except ValueError as error:  # allow_nan=False: "Out of range float values are not JSON compliant"
        raise NotJsonError(
            "NaN, Infinity and numbers beyond ±1.8e308 are not JSON; JSON readers cannot read them"
        ) from error
    return escape_lone_surrogates(text)


def escape_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate code point written as its ``\\uXXXX`` JSON escape.

    Only valid inside JSON strings (which is the only place such code points can come from)."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return text


def _parse_int(literal: str) -> int | float:
    digits = len(literal) - literal.startswith("-")
    if digits > _MAX_INT_DIGITS:
        return float("-inf") if literal.startswith("-") else float("inf")  # as JavaScript reads it
    return int(literal)


def loads(data: bytes | str) -> Any:
    """Parse JSON text; non-JSON numbers come back as infinite or NaN floats (:func:`dumps` refuses
    them), and integer literals too long for a double as infinities (Python would raise instead).

    Raises ``ValueError`` (``json.JSONDecodeError``, ``UnicodeDecodeError``) or ``RecursionError``
    for text that is not JSON at all.
    """
    return json.loads(data, parse_int=_parse_int)
