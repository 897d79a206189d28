"""Convergence under faults, a few seeds in CI (``python -m tests.faults.harness --seeds 50`` runs many).

16 clients commit 10 events each into one store through ``stratasync dev`` on DynamoDB Local,
with lost acks, duplicated requests, offline periods, DynamoDB throttling, a dev server SIGKILL
and restart, and a client process SIGKILLed and reopened (see :mod:`tests.faults.harness`); the
history checker (:mod:`tests.faults.history`) checks every ack and pull observation of the run.
"""

from __future__ import annotations

import pytest

from tests.faults.harness import run_seed

pytestmark = [pytest.mark.faults, pytest.mark.dynamodb_local]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sixteen_clients_converge_under_faults(seed: int, dynamodb_local_endpoint: str) -> None:
    report = run_seed(seed, dynamodb_local_endpoint, clients=16, events=10)
    print(report.line())
    # run_seed raises ConvergenceError unless the history checks out, every client holds the
    # backend's exact log and the same tables, and the backend holds 160 events, seqNums 1..160,
    # each client event once.
    assert report.backend_events == 160
    # Every event was acknowledged, or pushed in a push the dev server died with (after the
    # commit, before the answer: its client then learns of it by pulling).
    assert report.history["unaccounted_events"] == 0
    assert report.history["acked_events"] + report.history["unanswered_events"] == 160
    # The run really went through every kind of fault (else it proved less than it claims).
    assert report.client_faults.get("drop_response_push", 0) > 0  # committed, but the ack was lost
    assert report.client_faults.get("duplicate_push", 0) > 0  # a push delivered twice
    assert report.client_faults.get("refuse", 0) > 0  # offline periods
    assert report.client_faults.get("upstream_down", 0) > 0  # requests that met the dead dev server
    assert report.dynamodb_faults.get("throttled", 0) > 0
    assert report.dev_server_restarts == 1
    assert report.client_process_kills >= 1
    assert report.rebases > 0
