"""``GET /archive``: the manifest of presigned segment URLs for clients far behind (fast bootstrap).

A client that is far behind downloads the archived segments straight from S3 (checking each
SHA-256), then pulls the rest through the sync protocol from ``pullFrom``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from stratasync.auth import Action
from stratasync.core.service import SyncService
from stratasync.protocol.errors import ForbiddenError, InvalidRequestError, ProtocolError, UnauthorizedError
from stratasync.protocol.segment_format import SEGMENT_FORMAT
from stratasync.storage.base import StorageError
from stratasync.storage.tiered import TieredEventLog

logger = logging.getLogger(__name__)

#: Segments listed by one manifest response at most.
MANIFEST_SEGMENTS = 100
#: A seqNum in a query string: ASCII digits only (``str.isdigit`` also admits "²", which int() refuses).
_SEQ_NUM_TEXT = re.compile(r"[0-9]{1,16}")


def manifest(
    log: TieredEventLog,
    store_id: str,
    after: int,
    *,
    expires_in: int,
    limit: int = MANIFEST_SEGMENTS,
) -> dict[str, Any]:
    """The archived segments holding events after ``after``, with presigned GET URLs.

    A client far behind downloads these straight from S3 (checking each SHA-256), then pulls
    the rest through the sync protocol from ``pullFrom``. ``more`` is true when ``limit`` cut
    the list: ask again with ``after = pullFrom``.
    """
    expires_at = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat(timespec="seconds")
    listed: list[dict[str, Any]] = []
    more = False
    pull_from = after
    for segment in log.hot.segments(store_id, after):
        if len(listed) == limit:
            more = True
            break
        listed.append(
            {
                "parentSeqNum": segment.parent_seq_num,
                "firstSeqNum": segment.first_seq_num,
                "lastSeqNum": segment.last_seq_num,
                "events": segment.events,
                "size": segment.size,
                "sha256": segment.sha256,
                "url": log.segment_store.presign_get(segment.key, expires_in),
            }
        )
        pull_from = segment.last_seq_num
    return {
        "storeId": store_id,
        "backendId": log.backend_id(store_id),
        "after": after,
        "format": SEGMENT_FORMAT,
        "expiresAt": expires_at.replace("+00:00", "Z"),
        "segments": listed,
        "pullFrom": pull_from,
        "more": more,
    }


def handle_manifest(
    service: SyncService,
    archive: TieredEventLog | None,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    expires_in: int,
) -> tuple[int, dict[str, Any]]:
    """``GET /archive?storeId=<id>&after=<seqNum>``: HTTP status and JSON body.

    The same authentication and read authorization as a pull; 404 when no archive is configured.
    """
    if archive is None:
        return 404, {"message": "this backend has no eventlog archive"}
    store_id = query.get("storeId") or headers.get("x-livestore-store-id") or ""
    try:
        service.limits.check_store_id(store_id)
    except InvalidRequestError as error:
        return 400, {"message": str(error)}
    after_text = query.get("after", "0")
    if not _SEQ_NUM_TEXT.fullmatch(after_text):
        return 400, {"message": "after must be a seqNum (a non-negative integer of at most 16 digits)"}
    try:
        claims = service.access.claims_for(None, headers, store_id, Action.READ)
        if service.access.hooks.on_pull is not None:
            service.access.hooks.on_pull(claims, store_id, None)
        body = manifest(archive, store_id, int(after_text), expires_in=expires_in)
    except UnauthorizedError as error:
        return 401, {"message": str(error)}
    except ForbiddenError as error:
        return 403, {"message": str(error)}
    except ProtocolError as error:
        return 400, {"message": str(error)}
    except StorageError as error:
        logger.exception("archive manifest failed")
        return 503, {"message": f"storage error: {type(error).__name__}"}
    return 200, body
