"""ISO-8601 timestamps as LiveStore's ``Schema.Date`` writes them (``Date.toISOString()``).

:data:`IsoDateTime` is the type to give an event field that the JS app declares as ``Schema.Date``:
it takes a timezone-aware ``datetime`` or an ISO-8601 string with an offset (naive times are
refused: JavaScript would read them in the reader's local time zone; a bare date such as
``2026-01-01`` is midnight UTC, as in JavaScript), and is encoded on the wire
as UTC with milliseconds, ``2026-01-02T03:04:05.006Z``, exactly what the JS client writes and can
decode. A string that ``Schema.Date`` cannot decode would make a LiveStore page show nothing.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _aware(value: _dt.datetime) -> _dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "a naive datetime has no time zone; give one (datetime.now(timezone.utc), or '...Z' in a string)"
        )
    return value.astimezone(_dt.UTC)


def _date_only_is_utc(value: Any) -> Any:
    """``2026-01-01`` means midnight UTC, as JavaScript's ``new Date("2026-01-01")`` reads it."""
    if isinstance(value, str) and _DATE_ONLY.fullmatch(value):
        return value + "T00:00:00Z"
    return value


def format_iso(value: Any) -> str:
    """``value`` (an aware datetime, or an ISO-8601 string) as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC."""
    if isinstance(value, str):
        value = parse_iso(value)
    if not isinstance(value, _dt.datetime):
        raise TypeError(f"not a datetime: {value!r}")
    utc = _aware(value)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> _dt.datetime:
    """An ISO-8601 timestamp with an offset (``Z`` or ``+02:00``), or a date (UTC), as an aware datetime."""
    return _aware(_dt.datetime.fromisoformat(_date_only_is_utc(text)))


#: An event field that LiveStore declares as ``Schema.Date`` (see the module docstring).
IsoDateTime = Annotated[
    _dt.datetime,
    BeforeValidator(_date_only_is_utc),
    AfterValidator(_aware),
    PlainSerializer(format_iso, return_type=str, when_used="json"),
]

__all__ = ["IsoDateTime", "format_iso", "parse_iso"]
