"""The storage tier of the fault harness, a few seeds in CI
(``python -m tests.faults.harness --storage-faults --seeds 100`` runs many).

The client-leg faults of :mod:`tests.faults.test_convergence_under_faults`, plus the storage leg's
(:mod:`tests.faults.storage`): lost answers of applied DynamoDB writes and S3 PutObjects, delayed
conditional writes, throttling, archiver crashes at each step boundary; with the archive on
SeaweedFS (``--segment-events`` 1..5), multi-part batches, unicode payloads, raw-HTTP clients that
re-send a push whose answer was lost, and first pulls racing first pushes on fresh stores. Each run
ends with the history checker (:mod:`tests.faults.history`) as well as the convergence checks.
"""

from __future__ import annotations

import pytest

from tests.faults.harness import RunReport, StorageOptions, run_seed

pytestmark = [pytest.mark.faults, pytest.mark.dynamodb_local, pytest.mark.seaweedfs]


def _count(report: RunReport, prefix: str) -> int:
    return sum(value for key, value in report.faults().items() if key.startswith(prefix))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clients_converge_and_the_history_checks_out_under_storage_faults(
    seed: int, dynamodb_local_endpoint: str, seaweedfs_endpoint: str
) -> None:
    # Smaller than the harness's defaults, to keep the tier near a minute a seed.
    storage = StorageOptions(seaweedfs_endpoint, raw_clients=3, raw_events=12, probes=5)
    report = run_seed(
        seed, dynamodb_local_endpoint, clients=5, events=5, storage=storage, deadline_seconds=150
    )
    print(report.line())
    # run_seed raises ConvergenceError unless the history checks out (no acked event lost or
    # doubled, no fork at any cursor, no gap, no refused retry of an acked push, no UnknownError)
    # and every client holds the backend's exact log.
    history = report.history
    assert history["acked_events"] >= 80
    assert history["lost"] == history["forks"] == history["server_errors"] == 0
    assert report.segments_sealed > 0
    # The run really went through the storage leg's faults (else it proved less than it claims).
    assert _count(report, "dynamodb_lost_response_put_") > 0  # applied writes whose answer was lost
    assert _count(report, "dynamodb_delayed_conditional_put_commit") > 0  # head read, then a slow put
    assert _count(report, "dynamodb_throttled") > 0
    assert _count(report, "dynamodb_archiver_crash_") + _count(report, "s3_archiver_crash_") >= 3
    assert _count(report, "dynamodb_delayed_probe_query") > 0
    assert report.raw_clients
    assert all(stats["acked"] > 0 for stats in report.raw_clients.values())
