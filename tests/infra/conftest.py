"""The two deployable templates as plain CloudFormation dicts, both made by the one CDK stack
(infra/stratasync_infra): template.yaml (SAM packaging) expanded by AWS's SAM translator, and the CDK
app's template (CDK packaging). Synthesized once per session, assets not bundled."""

from __future__ import annotations

import functools
import glob
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import emulators
from tests.infra.templates import Stack

ROOT = Path(__file__).resolve().parents[2]
SAM_TEMPLATE = ROOT / "template.yaml"
INFRA = ROOT / "infra"
STACK_NAME = "stratasync"
WHEELHOUSE = ROOT / ".venv-sam" / "wheelhouse"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))


@dataclass(frozen=True)
class Synthesized:
    template: dict[str, Any]
    template_path: Path
    validation_report: dict[str, Any]


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        **options.pop("env", {}),
    }
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT, **options)


def sam_cli() -> str:
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    if sam.exists():
        return str(sam)
    found = shutil.which("sam")
    if found:
        return found
    emulators.missing("the SAM CLI is not installed in .venv-sam (bash scripts/install-infra-tools.sh)")
    raise AssertionError("unreachable")


def runtime_python() -> Path:
    """The functions' runtime's python (3.13), which ``sam build`` runs: on PATH, or pyenv's."""
    candidates = [os.environ.get("PYTHON313", ""), shutil.which("python3.13") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 13)"], capture_output=True
        )
        if probe.returncode == 0:
            return Path(candidate)
    emulators.missing("python3.13 (the functions' runtime) is not installed, so sam build cannot run")
    raise AssertionError("unreachable")


def sam_to_cfn(source: Path, target: Path) -> Path:
    """A SAM template through AWS's SAM translator (infra/sam_to_cfn.py, run with .venv-sam's python)."""
    python = Path(sam_cli()).with_name("python")
    result = run([str(python), str(INFRA / "sam_to_cfn.py"), str(source), str(target)])
    assert result.returncode == 0, result.stdout + result.stderr
    return target


@pytest.fixture(scope="session")
def sam_source() -> dict[str, Any]:
    """template.yaml as written, short-form intrinsics (!Ref, !Sub, ...) in their long JSON form."""
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        emulators.missing("cfn-lint is not installed (bash scripts/install-infra-tools.sh)")
    loaded: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(SAM_TEMPLATE))))
    return loaded


@pytest.fixture(scope="session")
def sam_transformed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """template.yaml as CloudFormation deploys it: after the SAM transform (versions, aliases, ...)."""
    target = sam_to_cfn(SAM_TEMPLATE, tmp_path_factory.mktemp("sam") / "template.json")
    loaded: dict[str, Any] = json.loads(target.read_text())
    return loaded


@pytest.fixture(scope="session")
def cdk_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """``app.synth()`` of the CDK app (infra/cdk.json's feature flags), with CDK's built-in template
    validation on, the dependency layer's pip bundling skipped (``aws:cdk:bundling-stacks=[]``)."""
    try:
        import aws_cdk as cdk
        from stratasync_infra import StratasyncStack
        from stratasync_infra.sam import cdk_context
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), context={**cdk_context(), "aws:cdk:bundling-stacks": []})
    StratasyncStack(app, STACK_NAME)
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(STACK_NAME)
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesized(dict(artifact.template), outdir / artifact.template_file, report)


# ---------------------------------------------------------------------- artifact builds


class Builds:
    """``sam build`` of template.yaml and the CDK layer's pip command, both offline, started in the
    background at the first infra test so they overlap the synth and lint tests (the artifact tests
    run after those, see pytest_collection_modifyitems).

    Offline: pip finds no index, only .venv-sam/wheelhouse served on a loopback port (pip takes a
    local folder's wheels for source trees, which ``sam build`` would rebuild one by one). ``sam
    build`` runs with the functions' runtime's python (3.13) first on PATH, as it requires.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
        self.problem = ""
        self.server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        requirements = ROOT / "functions" / "requirements.txt"
        stamp = WHEELHOUSE / "requirements.txt"
        if not stamp.exists() or stamp.read_text() != requirements.read_text():
            self.problem = f"{WHEELHOUSE} is missing or stale (bash scripts/install-infra-tools.sh)"
            return

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        handler = functools.partial(Quiet, directory=str(WHEELHOUSE))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        pip = {
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": f"http://127.0.0.1:{self.server.server_address[1]}/",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        sam = ROOT / ".venv-sam" / "bin" / "sam"
        python = _find_runtime_python()
        if not sam.exists() or python is None:
            self.problem = "the SAM CLI (.venv-sam) or python3.13, which sam build runs, is missing"
        else:
            build_dir = self.workdir / "sam-build"
            command = [str(sam), "build", "--template", str(SAM_TEMPLATE), "--build-dir", str(build_dir)]
            command += ["--base-dir", str(ROOT), "--cache-dir", str(self.workdir / "sam-cache")]
            env = {**pip, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
            self._spawn("sam", command, env, build_dir)
        try:
            from stratasync_infra.bundling import pip_command
        except ImportError:
            return  # reported by the CDK tests
        target = self.workdir / "layer" / "python"
        self._spawn("layer", pip_command(requirements, target, "3.13"), pip, target)

    def _spawn(self, name: str, command: list[str], env: dict[str, str], result: Path) -> None:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1", **env},
            )
        self.processes[name] = (process, log, result)

    def wait(self, name: str) -> Path:
        if name not in self.processes:
            emulators.missing(self.problem or f"the {name} build could not start")
        process, log, result = self.processes[name]
        started = time.monotonic()
        code = process.wait(timeout=600)
        print(f"{name} build: waited {time.monotonic() - started:.1f} s")
        assert code == 0, log.read_text()
        return result

    def stop(self) -> None:
        for process, _, _ in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _find_runtime_python() -> Path | None:
    try:
        return runtime_python()
    except (pytest.skip.Exception, pytest.fail.Exception):
        return None


ARTIFACT_TESTS = "test_artifacts.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within the infra tests, the artifact tests last (their builds run while the others run)."""
    positions = [i for i, item in enumerate(items) if item.path.parent == Path(__file__).parent]
    ours = [items[i] for i in positions]
    ours.sort(key=lambda item: item.path.name == ARTIFACT_TESTS)  # stable: the order otherwise kept
    for position, item in zip(positions, ours, strict=True):
        items[position] = item


@pytest.fixture(scope="session", autouse=True)
def infra_builds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Builds]:
    builds = Builds(tmp_path_factory.mktemp("builds"))
    if any(item.path.name == ARTIFACT_TESTS for item in request.session.items):
        builds.start()
    yield builds
    builds.stop()


# ---------------------------------------------------------------------- both templates


@pytest.fixture(params=["sam", "cdk"])
def stack(request: pytest.FixtureRequest) -> Stack:
    if request.param == "sam":
        return Stack("sam", request.getfixturevalue("sam_transformed"))
    synthesized: Synthesized = request.getfixturevalue("cdk_synth")
    return Stack("cdk", synthesized.template)


@pytest.fixture
def both(sam_transformed: dict[str, Any], cdk_synth: Synthesized) -> tuple[Stack, Stack]:
    return Stack("sam", sam_transformed), Stack("cdk", cdk_synth.template)
