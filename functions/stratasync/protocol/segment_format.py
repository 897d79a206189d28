"""The archived segment format, ``stratasync-segment-1``: what the archiver writes to S3 and what a
client bootstrapping from presigned URLs reads. One definition for both sides (pure, no I/O).

A segment is gzip (``mtime`` 0, so the same events always give the same bytes) of lines
``"<seqNum> <createdAt> <event JSON>"`` joined by ``\\n``, ascending. Compact event JSON never
holds a raw newline and ``createdAt`` holds no space, so a line splits unambiguously.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

#: How much decompressed text :func:`iter_segment_pages` splits into lines at a time.
_BLOCK_BYTES = 1 << 20

SEGMENT_FORMAT = "stratasync-segment-1"


class SegmentFormatError(ValueError):
    """Bytes that are not a segment of this format."""


def encode_segment_body(lines: Iterable[tuple[int, str, str]]) -> tuple[bytes, int]:
    """The stored bytes of ``(seqNum, createdAt, event JSON)`` lines, and their raw size."""
    raw = "\n".join(f"{seq_num} {created_at} {event_json}" for seq_num, created_at, event_json in lines)
    data = raw.encode()
    return gzip.compress(data, compresslevel=6, mtime=0), len(data)


def parse_line(line: str) -> tuple[int, str, str]:
    """``(seqNum, createdAt, event JSON)`` of one line."""
    try:
        seq_text, created_at, event_json = line.split(" ", 2)
        return int(seq_text), created_at, event_json
    except ValueError as error:
        raise SegmentFormatError(f"not a segment line: {line[:80]!r}") from error


def decode_segment_body(body: bytes) -> list[tuple[int, str, str]]:
    """The lines of a whole segment."""
    try:
        text = gzip.decompress(body).decode()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise SegmentFormatError(f"not a gzip of UTF-8 lines: {error}") from error
    return [parse_line(line) for line in text.split("\n")]


def iter_segment_lines(stream: BinaryIO) -> Iterator[tuple[int, str, str]]:
    """The lines of a segment read from a binary stream, decompressed as they come (bounded memory)."""
    with gzip.GzipFile(fileobj=stream, mode="rb") as raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8"):
            yield parse_line(line.rstrip("\n"))


def iter_segment_pages(stream: BinaryIO, page_lines: int) -> Iterator[tuple[list[str], list[str]]]:
    """The lines of a segment read from a binary stream, ``page_lines`` at a time (the last page
    may hold fewer): ``(createdAt of each line, event JSON of each line)``.

    What :func:`iter_segment_lines` gives without the seqNums (each event JSON holds its own),
    decompressed a block at a time and split in bulk rather than line by line: the fast way
    for a client that applies pages of events.
    """
    stamps: list[str] = []
    texts: list[str] = []
    carry = b""
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as raw:
            while True:
                block = raw.read(_BLOCK_BYTES)
                if not block:
                    break
                data = carry + block if carry else block
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1 :]
                _split_lines(data[:cut].decode(), stamps, texts)
                while len(texts) >= page_lines:
                    yield stamps[:page_lines], texts[:page_lines]
                    del stamps[:page_lines], texts[:page_lines]
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise SegmentFormatError(f"not a gzip of UTF-8 lines: {error}") from error
    if carry:
        try:
            _split_lines(carry.decode(), stamps, texts)
        except UnicodeDecodeError as error:
            raise SegmentFormatError(f"not a gzip of UTF-8 lines: {error}") from error
    while texts:
        yield stamps[:page_lines], texts[:page_lines]
        del stamps[:page_lines], texts[:page_lines]


def _split_lines(text: str, stamps: list[str], texts: list[str]) -> None:
    """Append the createdAt and event JSON of each of the ``\\n``-separated lines of ``text``."""
    add_stamp, add_text = stamps.append, texts.append
    try:
        for line in text.split("\n"):
            _, created_at, event_json = line.split(" ", 2)
            add_stamp(created_at)
            add_text(event_json)
    except ValueError:
        for line in text.split("\n"):
            parse_line(line)  # raises SegmentFormatError naming the line
        raise
