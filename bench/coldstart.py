"""Cold import of the Lambda handler module against a bare ``import boto3``, in the same run.

Each sample is a fresh ``python`` process that times one import statement with
``time.perf_counter`` (the interpreter's own start-up is the same for both and left out; the
whole process time is recorded too). The candidates run interleaved, round after round, and each
figure is the median of the rounds. The handler is imported with the environment of a deployed
function (table, archive bucket and archiver function, an HS256 secret), so its module-level work
(settings, the boto3 clients, Powertools' logger/metrics/tracer and resolver) is in the figure.
``python -X importtime`` then shows where the handler's time goes beyond boto3.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

TARGET_RATIO = 1.15

_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "stratasync-sync",
}
#: What a deployed sync function has (the secret's value instead of its ARN: no network at import).
DEPLOYED_ENV = {
    "STRATASYNC_TABLE_NAME": "stratasync",
    "STRATASYNC_ARCHIVE_BUCKET": "stratasync-archive",
    "STRATASYNC_ARCHIVE_FUNCTION": "stratasync-archiver",
    "STRATASYNC_AUTH_HS256_SECRET": "bench-secret",
    "POWERTOOLS_SERVICE_NAME": "stratasync",
}
MINIMAL_ENV = {"STRATASYNC_TABLE_NAME": "stratasync", "STRATASYNC_AUTH_REQUIRED": "false"}

CANDIDATES: dict[str, tuple[str, dict[str, str]]] = {
    "import boto3": ("import boto3", {}),
    # The floor of any DynamoDB Lambda: boto3 plus one client (botocore loads the service model).
    "import boto3 + one DynamoDB client": ("import boto3; boto3.client('dynamodb')", {}),
    "handler (deployed settings)": ("import stratasync.handlers.sync", DEPLOYED_ENV),
    "handler (no archive, auth off)": ("import stratasync.handlers.sync", MINIMAL_ENV),
}

_TIMER = "import time; _t = time.perf_counter(); {statement}; print(f'{{time.perf_counter() - _t:.6f}}')"


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATASYNC_", "POWERTOOLS_", "AWS_"))}
    return {**env, **_AWS, **extra, "PYTHONDONTWRITEBYTECODE": "0"}


def _sample(statement: str, extra: dict[str, str]) -> tuple[float, float]:
    """(seconds inside the import statement, seconds of the whole process) for one fresh process."""
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", _TIMER.format(statement=statement)],
        env=_clean_env(extra),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(output.strip().splitlines()[-1]), time.perf_counter() - started


def import_profile(statement: str, extra: dict[str, str], top: int = 10) -> dict[str, Any]:
    """``-X importtime``: self time (import plus module body) per top-level package and per module."""
    stderr = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        env=_clean_env(extra),
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    per_package: dict[str, int] = defaultdict(int)
    per_module: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        per_package[name.split(".")[0]] += int(self_us)
        per_module[name] = int(self_us)

    def largest(table: dict[str, int]) -> list[dict[str, Any]]:
        ordered = sorted(table.items(), key=lambda item: -item[1])[:top]
        return [{"name": name, "self_ms": round(us / 1000, 1)} for name, us in ordered]

    return {
        "total_ms": round(sum(per_package.values()) / 1000, 1),
        "packages": largest(per_package),
        "modules": largest(per_module),
    }


def measure(rounds: int = 9) -> dict[str, Any]:
    for statement, extra in CANDIDATES.values():  # warm the file cache and .pyc files first
        _sample(statement, extra)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in CANDIDATES}
    for _ in range(rounds):
        for name, (statement, extra) in CANDIDATES.items():
            samples[name].append(_sample(statement, extra))
    rows = {
        name: {
            "import_ms": round(statistics.median(s[0] for s in values) * 1000, 1),
            "process_ms": round(statistics.median(s[1] for s in values) * 1000, 1),
            "min_import_ms": round(min(s[0] for s in values) * 1000, 1),
            "max_import_ms": round(max(s[0] for s in values) * 1000, 1),
        }
        for name, values in samples.items()
    }
    boto3_ms = rows["import boto3"]["import_ms"]
    for row in rows.values():
        row["ratio_to_boto3"] = round(row["import_ms"] / boto3_ms, 2)
    deployed = rows["handler (deployed settings)"]
    return {
        "rounds": rounds,
        "target_ratio": TARGET_RATIO,
        "rows": rows,
        "ratio": deployed["ratio_to_boto3"],
        "meets_target": deployed["ratio_to_boto3"] <= TARGET_RATIO,
        "handler_profile": import_profile("import stratasync.handlers.sync", DEPLOYED_ENV),
        "boto3_profile": import_profile("import boto3", {}),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
