"""Lambda functions as pools of worker processes: each worker is one execution environment.

A worker imports the real handler module once (its cold start) and then serves one invocation
at a time with its module state kept warm, so concurrent requests really run concurrently, as
on AWS. Workers are started with ``spawn``: nothing of the dev server's own process leaks in.

:class:`ThreadFunction` is the dev server's in-process mode: the same handler in threads of the
dev server's own process, which share one warm module state (see its docstring for what that
gives up).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stratasync.devserver.gateway import FakeLambdaContext
from stratasync.devserver.loopback import Route, serve_in_process

if TYPE_CHECKING:
    from stratasync.handlers.wiring import MemoryTables


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function: its name, ``module:function`` handler, the ``module:function`` that
    builds what the handler serves with (run at init, so a misconfiguration shows at start), its
    timeout, and how many execution environments may run at once."""

    name: str
    handler: str
    init: str
    timeout_seconds: float
    concurrency: int


def _resolve(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _init_environment(env: dict[str, str], spec: FunctionSpec) -> None:
    os.environ.update(env)
    _resolve(spec.init)()  # the cold start happens here, once per worker


def _invoke(spec: FunctionSpec, event: dict[str, Any]) -> Any:
    return _resolve(spec.handler)(event, FakeLambdaContext(spec.name, spec.timeout_seconds))


def _pid() -> int:
    return os.getpid()


class LocalFunction:
    """One Lambda function run by up to ``spec.concurrency`` worker processes."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str]) -> None:
        self.spec = spec
        self._pool = ProcessPoolExecutor(
            max_workers=spec.concurrency,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_environment,
            initargs=(env, spec),
        )

    def warm(self, timeout: float = 120) -> None:
        """Start every execution environment now (so a misconfiguration shows at once)."""
        for future in [self._pool.submit(_pid) for _ in range(self.spec.concurrency)]:
            future.result(timeout=timeout)

    def invoke(self, event: dict[str, Any]) -> Future[Any]:
        """Run one invocation in a free execution environment."""
        return self._pool.submit(_invoke, self.spec, event)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ThreadFunction:
    """One Lambda function run in up to ``spec.concurrency`` threads of this process.

    The in-process mode of the dev server: no worker process, no pickling of events, and, with
    :mod:`.loopback`, no socket between the handler and the embedded moto. What it gives up:
    the threads share one module state (one cold start for all, one cache), take turns on the
    GIL, and read the process's own environment, which the dev server sets (so one in-process
    dev server per process at a time).
    """

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self._pool = ThreadPoolExecutor(max_workers=spec.concurrency, thread_name_prefix=spec.name)

    def warm(self, timeout: float = 120) -> None:
        """Run the function's init now (so a misconfiguration shows at once)."""
        self._pool.submit(_resolve(self.spec.init)).result(timeout=timeout)

    def invoke(self, event: dict[str, Any]) -> Future[Any]:
        """Run one invocation in a free thread."""
        return self._pool.submit(_invoke, self.spec, event)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class InProcessHost:
    """What running the functions in this process changes in it, undone by :meth:`leave`: the
    process's one in-process owner, its environment (the functions read it), the handlers' warm
    state, and the routes that serve the owner's own endpoints without a socket."""

    _owner: object | None = None
    _lock = threading.Lock()

    def __init__(self, owner: object) -> None:
        self.owner = owner
        self._undo: list[Callable[[], None]] = []

    def enter(
        self, env: dict[str, str], routes: dict[str, Route], memory_tables: MemoryTables | None = None
    ) -> InProcessHost:
        """Take the process (one in-process dev server at a time), set ``env``, serve ``routes``,
        and serve the functions from ``memory_tables`` instead of DynamoDB when given."""
        from stratasync.handlers import wiring  # the handlers' modules load only when used

        with InProcessHost._lock:
            if InProcessHost._owner is not None:
                raise RuntimeError("an in-process dev server already runs in this process; stop it first")
            InProcessHost._owner = self.owner
        self._undo.append(self._release)
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        self._undo.append(lambda: _restore_environ(saved))
        self._undo.append(wiring.forget_warm_state)
        if memory_tables is not None:
            wiring.use_memory_tables(memory_tables)
            self._undo.append(lambda: wiring.use_memory_tables(None))
        for base_url, route in routes.items():
            close = getattr(route, "close", None)
            if close is not None:
                self._undo.append(close)
            self._undo.append(serve_in_process(base_url, route))
        return self

    def leave(self) -> None:
        """Undo :meth:`enter`, last step first."""
        while self._undo:
            self._undo.pop()()

    def _release(self) -> None:
        with InProcessHost._lock:
            if InProcessHost._owner is self.owner:
                InProcessHost._owner = None


def _restore_environ(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
