"""Cold import of the sync Lambda's handler module against the stack's own hello world, in the
same run.

The hello world is what any Lambda of this stack pays before doing anything of its own:
Powertools' Logger, Metrics and Tracer and the HTTP API resolver, pydantic, and one boto3
DynamoDB client made at import. Both run with the template's environment (``Tracing: Active``,
so Powertools' Tracer and the X-Ray SDK load in both, as in production). The handler is imported
with a deployed sync function's settings (table, archive bucket, archiver function, an HS256
secret, the WebSocket settings), so its module-level work is in the figure: in Lambda it builds
its backend at init, which SnapStart then snapshots.

Each sample is a fresh ``python -S`` process whose path is the Lambda code (``functions/``) and the
installed dependencies, as in a Lambda artifact (``/var/task``): no ``.pth`` file runs, so the
editable install's import hook, which a Lambda does not have, is not timed (it cost the handler
about 20 ms). Each process times one import statement with
``time.perf_counter`` (the interpreter's own start-up is the same for both and left out; the
whole process time is recorded too). The candidates run interleaved, round after round, and each
figure is the median of the rounds. ``python -X importtime`` then shows where the handler's time
goes.
"""

from __future__ import annotations

import os
import site
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.0

#: The stack's hello world: the same framework pieces and one DynamoDB client, nothing of ours.
HELLO_WORLD = """
import boto3, pydantic
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver
logger = Logger(service="hello"); metrics = Metrics(namespace="hello"); tracer = Tracer(service="hello")
app = APIGatewayHttpResolver()
class Ping(pydantic.BaseModel):
    storeId: str
dynamodb = boto3.client("dynamodb")
@app.post("/")
def ping() -> dict:
    return {"storeId": Ping.model_validate(app.current_event.json_body).storeId}
"""

_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # As in Lambda: Powertools and the handlers know they run there, and tracing is on.
    "AWS_LAMBDA_FUNCTION_NAME": "stratasync-sync",
    "POWERTOOLS_SERVICE_NAME": "stratasync",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
#: What a deployed sync function has (the secret's value instead of its ARN: no network at import).
DEPLOYED_ENV = {
    "STRATASYNC_TABLE_NAME": "stratasync",
    "STRATASYNC_ARCHIVE_BUCKET": "stratasync-archive",
    "STRATASYNC_ARCHIVE_FUNCTION": "arn:aws:lambda:us-east-1:000000000000:function:stratasync-archiver:live",
    "STRATASYNC_AUTH_HS256_SECRET": "bench-secret-of-a-proper-length-0123456789",
}

CANDIDATES: dict[str, tuple[str, dict[str, str]]] = {
    "hello world": (f"exec({HELLO_WORLD!r})", {}),
    "handler (deployed settings)": ("import stratasync.handlers.sync", DEPLOYED_ENV),
    "import boto3": ("import boto3", {}),
}

_TIMER = "import time; _t = time.perf_counter(); {statement}; print(f'{{time.perf_counter() - _t:.6f}}')"


#: What a Lambda artifact's path holds: the Lambda code and the installed dependencies.
_LAMBDA_PATH = os.pathsep.join(
    [str(Path(__file__).resolve().parent.parent / "functions"), *site.getsitepackages()]
)


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATASYNC_", "POWERTOOLS_", "AWS_"))}
    return {**env, **_AWS, **extra, "PYTHONDONTWRITEBYTECODE": "0", "PYTHONPATH": _LAMBDA_PATH}


def python_command(*args: str) -> list[str]:
    """A fresh interpreter that imports as a Lambda does (``-S``: no site hooks; see the module)."""
    return [sys.executable, "-S", *args]


def _sample(statement: str, extra: dict[str, str]) -> tuple[float, float]:
    """(seconds inside the import statement, seconds of the whole process) for one fresh process."""
    started = time.perf_counter()
    output = subprocess.run(
        python_command("-c", _TIMER.format(statement=statement)),
        env=_clean_env(extra),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(output.strip().splitlines()[-1]), time.perf_counter() - started


def import_profile(statement: str, extra: dict[str, str], top: int = 10) -> dict[str, Any]:
    """``-X importtime``: self time (import plus module body) per top-level package and per module."""
    stderr = subprocess.run(
        python_command("-X", "importtime", "-c", statement),
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
    hello_ms = rows["hello world"]["import_ms"]
    for row in rows.values():
        row["ratio_to_hello_world"] = round(row["import_ms"] / hello_ms, 2)
    ratio = rows["handler (deployed settings)"]["ratio_to_hello_world"]
    return {
        "rounds": rounds,
        "target_ratio": TARGET_RATIO,
        "rows": rows,
        "ratio": ratio,
        "meets_target": ratio <= TARGET_RATIO,
        "handler_profile": import_profile("import stratasync.handlers.sync", DEPLOYED_ENV),
        "hello_world_profile": import_profile(f"exec({HELLO_WORLD!r})", {}),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
