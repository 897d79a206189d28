"""Who may read or push which store, and the app's own checks (LiveStore's ``onPush``/``onPull``).

By default a token's ``stores`` claim lists the store ids (or glob patterns) it may read and
push, and ``stores_read`` the ones it may only read. Apps replace :func:`default_authorize` or
add ``on_push`` / ``on_pull`` hooks, e.g. to validate event args against pydantic models.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stratasync.auth.tokens import TokenVerifier
from stratasync.protocol.errors import ForbiddenError, UnauthorizedError
from stratasync.protocol.messages import Cursor, WireEvent


class Action(StrEnum):
    """What a request wants to do with a store."""

    READ = "read"
    PUSH = "push"


Claims = Mapping[str, Any]
Authorize = Callable[[Claims, str, Action], bool]
OnPush = Callable[[Claims, str, Sequence[WireEvent]], None]
OnPull = Callable[[Claims, str, Cursor | None], None]


def _patterns(claims: Claims, name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def default_authorize(claims: Claims, store_id: str, action: Action) -> bool:
    """``stores`` grants read and push, ``stores_read`` grants read; entries may be glob patterns."""
    granted = _patterns(claims, "stores")
    if action is Action.READ:
        granted += _patterns(claims, "stores_read")
    return any(fnmatch.fnmatchcase(store_id, pattern) for pattern in granted)


@dataclass(frozen=True)
class Hooks:
    """An app's own authorization and validation; each may raise a protocol error to refuse."""

    authorize: Authorize = default_authorize
    on_push: OnPush | None = None
    on_pull: OnPull | None = None

    @classmethod
    def from_module(cls, name: str) -> Hooks:
        """Hooks from a module's ``authorize``, ``on_push`` and ``on_pull`` functions (any may be absent)."""
        module = importlib.import_module(name)
        return cls(
            authorize=getattr(module, "authorize", default_authorize),
            on_push=getattr(module, "on_push", None),
            on_pull=getattr(module, "on_pull", None),
        )


def bearer_token(payload: Any, headers: Mapping[str, str]) -> str | None:
    """The token from the app's payload (``authToken``) or an ``Authorization: Bearer`` header."""
    if isinstance(payload, Mapping) and isinstance(payload.get("authToken"), str):
        token: str = payload["authToken"]
        return token
    header = headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


@dataclass(frozen=True)
class AccessControl:
    """Authentication (when a verifier is set) and authorization of one request."""

    verifier: TokenVerifier | None = None
    hooks: Hooks = Hooks()

    def claims_for(self, payload: Any, headers: Mapping[str, str], store_id: str, action: Action) -> Claims:
        """The caller's verified claims, or a refusal (Unauthorized / Forbidden)."""
        if self.verifier is None:
            return {}
        token = bearer_token(payload, headers)
        if token is None:
            raise UnauthorizedError("a token is required: payload.authToken or Authorization: Bearer")
        claims = self.verifier.verify(token)
        if not self.hooks.authorize(claims, store_id, action):
            raise ForbiddenError(f"this token may not {action.value} store {store_id!r}")
        return claims
