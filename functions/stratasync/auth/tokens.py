"""JWT verification: HS256 with a shared secret, RS256/ES256 against a JWKS URL (Cognito, Auth0).

The JWKS key set is cached in the warm process and fetched again when a token names a key id
that is not in the cache (key rotation), at most once per ``jwks_cooldown_seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jwt

from stratasync.protocol.errors import UnauthorizedError

_ASYMMETRIC = ("RS256", "ES256")


class TokenVerifier:
    """Verifies a token's signature, ``exp``, ``nbf`` and, where configured, ``aud`` and ``iss``."""

    def __init__(
        self,
        *,
        hs256_secret: str | None = None,
        jwks_url: str | None = None,
        audience: str | Sequence[str] | None = None,
        issuer: str | None = None,
        leeway_seconds: float = 30,
        jwks_cooldown_seconds: float = 10,
    ) -> None:
        if not hs256_secret and not jwks_url:
            raise ValueError("a TokenVerifier needs an HS256 secret, a JWKS URL, or both")
        self._secret = hs256_secret
        self._jwks = (
            jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600, cooldown_duration=jwks_cooldown_seconds)
            if jwks_url
            else None
        )
        self.audience = audience
        self.issuer = issuer
        self.leeway_seconds = leeway_seconds

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; :class:`UnauthorizedError` for any token that is not valid."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise UnauthorizedError(f"malformed token: {error}") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._secret:
            key = self._secret
        elif algorithm in _ASYMMETRIC and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str):
                raise UnauthorizedError("token has no key id (kid)")
            try:
                signing_key = self._jwks.get_signing_key(kid)
            except jwt.PyJWKClientError as error:
                raise UnauthorizedError(f"no signing key for this token: {error}") from None
            if signing_key.algorithm_name != algorithm:
                raise UnauthorizedError(f"invalid token: key {kid!r} is not a {algorithm} key")
            key = signing_key.key
        else:
            raise UnauthorizedError(f"token algorithm {algorithm!r} is not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except (jwt.PyJWTError, TypeError, ValueError) as error:
            raise UnauthorizedError(f"invalid token: {error}") from None
        return claims
