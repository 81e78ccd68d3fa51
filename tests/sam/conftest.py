"""Fixtures for the SAM checks: the SAM CLI's own virtualenv, the built and translated template.

The SAM CLI lives in `.venv-sam` (made by `make test`): it pins boto3 and pydantic versions
that must not constrain the application's own environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM_VENV = Path(os.environ.get("DURABLE_SAM_VENV", ROOT / ".venv-sam"))
SAM_ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make .venv-sam/.installed` (make test does)")
    return path


@pytest.fixture(scope="session")
def sam_bin() -> Path:
    return _require(SAM_VENV / "bin" / "sam")


@pytest.fixture(scope="session")
def sam_python() -> Path:
    return _require(SAM_VENV / "bin" / "python")


@pytest.fixture(scope="session")
def sam_build_dir(sam_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    build_dir = tmp_path_factory.mktemp("sam-build")
    cache_dir = ROOT / ".aws-sam" / "cache"
    result = subprocess.run(
        [
            str(sam_bin),
            "build",
            "--template",
            str(ROOT / "template.yaml"),
            "--build-dir",
            str(build_dir),
            "--cached",
            "--cache-dir",
            str(cache_dir),
        ],
        cwd=ROOT,
        env=SAM_ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    yield build_dir
    shutil.rmtree(build_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def translated_template(sam_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("cfn") / "template.json"
    result = subprocess.run(
        [
            str(sam_python),
            str(ROOT / "tests" / "sam" / "translate_template.py"),
            str(ROOT / "template.yaml"),
            str(target),
        ],
        env=SAM_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return target
