"""Authentication and per-store authorization: every kind of bad token is refused before storage
is touched, in the protocol's error shape, with nothing written."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import BaseModel, ValidationError

from stratasync.auth import AccessControl, Hooks, TokenVerifier
from stratasync.auth.access import Action, Claims, default_authorize
from stratasync.core import SyncService, handle_rpc
from stratasync.protocol.errors import ForbiddenError
from stratasync.protocol.messages import WireEvent
from stratasync.storage.memory import InMemoryStorage
from tests.protocol.test_envelopes import event, pull_body, push_body

SECRET = "test-shared-secret-of-a-decent-length"
AUDIENCE = "stratasync"
ISSUER = "https://issuer.example"


class JwksServer:
    """A JWKS endpoint on loopback whose key set the test can rotate."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def publish(self, kid: str, public_jwk: dict[str, Any]) -> None:
        self.keys.append({**public_jwk, "kid": kid, "use": "sig"})


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.http.shutdown()


class CountingStore(InMemoryStorage):
    """Counts every storage call, to show refusals happen before storage is touched."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def backend_id(self, store_id: str) -> str:
        self.calls += 1
        return super().backend_id(store_id)


def token(
    claims: dict[str, Any] | None = None,
    *,
    key: Any = SECRET,
    algorithm: str = "HS256",
    kid: str | None = None,
    **overrides: Any,
) -> str:
    now = int(time.time())
    body = {"sub": "user-1", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 300, "stores": ["s1"]}
    body.update(claims or {})
    body.update(overrides)
    for name in [name for name, value in body.items() if value is None]:
        del body[name]
    headers = {"kid": kid} if kid else None
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


def make_service(jwks_url: str | None = None, hooks: Hooks | None = None) -> SyncService:
    verifier = TokenVerifier(
        hs256_secret=SECRET,
        jwks_url=jwks_url,
        audience=AUDIENCE,
        issuer=ISSUER,
        leeway_seconds=0,
        jwks_cooldown_seconds=0,
    )
    return SyncService(CountingStore(), access=AccessControl(verifier, hooks or Hooks()))


def with_token(body: bytes, auth_token: str | None) -> bytes:
    envelope = json.loads(body)
    if auth_token is not None:
        envelope["payload"]["payload"] = {"authToken": auth_token}
    return json.dumps(envelope).encode()


def send(service: SyncService, body: bytes, store: str = "s1", headers: dict[str, str] | None = None) -> Any:
    response = handle_rpc(service, body, {"storeId": store}, headers or {})
    assert response.status == 200
    return json.loads(response.body)[-1]["exit"]


def refusal(exit_message: Any) -> dict[str, Any]:
    assert exit_message["_tag"] == "Failure", exit_message
    error: dict[str, Any] = exit_message["cause"]["error"]
    assert error["_tag"] == "UnknownError"  # what the LiveStore client decodes for push and pull
    return error


def assert_refused(
    service: SyncService,
    body: bytes,
    kind: str,
    fragment: str,
    store: str = "s1",
    headers: dict[str, str] | None = None,
) -> None:
    error = refusal(send(service, body, store, headers))
    assert error["cause"]["name"] == kind
    assert fragment in error["cause"]["message"], error["cause"]["message"]
    assert "nothing was read or written" in error["note"]
    store_backend = service.store
    assert isinstance(store_backend, CountingStore)
    assert store_backend.calls == 0  # decided before storage was touched


PUSH = push_body([event(1)])
PULL = pull_body()


@pytest.mark.parametrize("body", [PUSH, PULL], ids=["push", "pull"])
def test_unauthenticated_requests_are_refused(body: bytes) -> None:
    assert_refused(make_service(), with_token(body, None), "UnauthorizedError", "a token is required")


@pytest.mark.parametrize(
    ("make_token", "fragment"),
    [
        (lambda: token(exp=int(time.time()) - 10), "Signature has expired"),
        (lambda: token(nbf=int(time.time()) + 600), "not yet valid"),
        (lambda: token(aud="another-app"), "Audience doesn't match"),
        (lambda: token(iss="https://evil.example"), "Invalid issuer"),
        (lambda: token(exp=None), 'Token is missing the "exp" claim'),
        (lambda: token()[:-4] + "AAAA", "Signature verification failed"),
        (lambda: token(key="another-secret-of-a-decent-length!"), "Signature verification failed"),
        (
            lambda: jwt.encode(
                {"stores": ["s1"], "exp": int(time.time()) + 60, "aud": AUDIENCE, "iss": ISSUER},
                None,  # type: ignore[arg-type]  # an unsigned token, as an attacker would send it
                algorithm="none",
            ),
            "algorithm 'none' is not accepted",
        ),
        (lambda: "not.a.token", "malformed token"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-issuer",
        "no-exp",
        "tampered",
        "wrong-key",
        "alg-none",
        "garbage",
    ],
)
def test_invalid_tokens_are_refused(make_token: Callable[[], str], fragment: str) -> None:
    # made when the test runs, not at collection: under pytest-xdist a module may run minutes later
    bad_token = make_token()
    for body in (PUSH, PULL):
        assert_refused(make_service(), with_token(body, bad_token), "UnauthorizedError", fragment)


def test_a_token_for_store_a_cannot_read_or_push_store_b() -> None:
    only_a = token({"stores": ["store-a"]})
    assert_refused(
        make_service(),
        with_token(pull_body(store="store-b"), only_a),
        "ForbiddenError",
        "may not read store 'store-b'",
        store="store-b",
    )
    assert_refused(
        make_service(),
        with_token(push_body([event(1)], store="store-b"), only_a),
        "ForbiddenError",
        "may not push store 'store-b'",
        store="store-b",
    )
    service = make_service()
    assert (
        send(service, with_token(push_body([event(1)], store="store-a"), only_a), "store-a")["_tag"]
        == "Success"
    )


def test_read_only_stores_and_glob_patterns() -> None:
    claims = {"stores": ["team-1:*"], "stores_read": ["public-*"]}
    assert default_authorize(claims, "team-1:notes", Action.PUSH)
    assert not default_authorize(claims, "team-2:notes", Action.READ)
    assert default_authorize(claims, "public-board", Action.READ)
    assert not default_authorize(claims, "public-board", Action.PUSH)
    reader = token({"stores": [], "stores_read": ["s*"]})
    assert_refused(make_service(), with_token(PUSH, reader), "ForbiddenError", "may not push store 's1'")
    assert send(make_service(), with_token(PULL, reader))["_tag"] == "Success"


def test_bearer_header_is_accepted() -> None:
    service = make_service()
    assert send(service, PUSH, headers={"authorization": f"Bearer {token()}"})["_tag"] == "Success"
    assert service.store.head("s1") == 1


def test_rs256_and_es256_from_jwks_with_rotation(jwks: JwksServer) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish("rsa-1", json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key())))
    service = make_service(jwks.url)
    assert (
        send(service, with_token(PULL, token(key=rsa_key, algorithm="RS256", kid="rsa-1")))["_tag"]
        == "Success"
    )

    # Rotation: the issuer signs with a new EC key; the cached key set is refreshed on the unknown kid.
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks.publish("ec-2", json.loads(ECAlgorithm.to_jwk(ec_key.public_key())))
    fetches = jwks.fetches
    assert (
        send(service, with_token(PULL, token(key=ec_key, algorithm="ES256", kid="ec-2")))["_tag"] == "Success"
    )
    assert jwks.fetches == fetches + 1

    # The old key is withdrawn: a token signed with it names a kid the refreshed set lacks.
    jwks.keys = [key for key in jwks.keys if key["kid"] != "rsa-1"]
    fresh = make_service(jwks.url)
    assert_refused(
        fresh,
        with_token(PULL, token(key=rsa_key, algorithm="RS256", kid="rsa-1")),
        "UnauthorizedError",
        "no signing key for this token",
    )
    # A key that is in the set but does not match the signature is refused too.
    forged = token(
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256", kid="ec-2"
    )
    assert_refused(fresh, with_token(PULL, forged), "UnauthorizedError", "invalid token")


class TodoCreated(BaseModel):
    id: str
    text: str


def validate_todos(claims: Claims, store_id: str, batch: Sequence[WireEvent]) -> None:
    for index, item in enumerate(batch):
        if item.name == "v1.TodoCreated":
            try:
                TodoCreated.model_validate(item.args)
            except ValidationError as error:
                raise ForbiddenError(
                    f"batch[{index}]: invalid v1.TodoCreated args ({error.error_count()} errors)"
                ) from None


def test_on_push_hook_validates_event_args() -> None:
    service = make_service(hooks=Hooks(on_push=validate_todos))
    good = with_token(push_body([event(1)]), token())
    assert send(service, good)["_tag"] == "Success"
    bad = with_token(push_body([event(2, args={"id": 7})]), token())
    error = refusal(send(service, bad))
    assert error["cause"]["name"] == "ForbiddenError"
    assert "invalid v1.TodoCreated args" in error["cause"]["message"]
    assert service.store.head("s1") == 1


def test_deployed_default_requires_auth_configuration() -> None:
    from stratasync.handlers.settings import Settings

    settings = Settings.from_env({"STRATASYNC_TABLE_NAME": "table"})
    assert settings.auth_required
    with pytest.raises(RuntimeError, match="authentication is required but neither a shared secret"):
        settings.access_control()
    off = Settings.from_env({"STRATASYNC_TABLE_NAME": "table", "STRATASYNC_AUTH_REQUIRED": "false"})
    assert off.access_control().verifier is None


@pytest.mark.slow
def test_dev_server_with_auth_secret(tmp_path: Any) -> None:
    from stratasync.client import Store
    from stratasync.client.todos import schema, todo_created
    from stratasync.protocol.errors import UnknownError
    from tests.devserver_process import running_dev_server

    with running_dev_server("--auth-secret", SECRET) as (url, lines):
        assert "auth: HS256 tokens signed with --auth-secret required" in "".join(lines)
        good = jwt.encode({"stores": ["auth-*"], "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
        with Store(
            schema, "auth-demo", str(tmp_path / "a.db"), backend_url=url, payload={"authToken": good}
        ) as store:
            store.commit(todo_created(id="a", text="milk"))
            store.sync(timeout=30)
            assert store.upstream_head == 1
        with (
            Store(schema, "auth-demo", str(tmp_path / "b.db"), backend_url=url) as anonymous,
            pytest.raises(UnknownError, match="a token is required"),
        ):
            anonymous.sync(timeout=0.5)
