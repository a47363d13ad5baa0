"""The sandbox image (sandbox/Dockerfile, built by `make image`): who it runs as, what it can
import, that it works on a read-only root fs, and that it starts the kernel.

Uses the docker CLI against CATALOG_SANDBOX_IMAGE (default catalog-agents/sandbox:latest), through
the `docker_image` fixture of tests/conftest.py: without Docker or the image they fail, never skip.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TEST_LABEL, TEST_RUN

pytestmark = pytest.mark.docker

VENV_PYTHON = "/opt/venv/bin/python"
SANDBOX_UID = 10001

IMPORTS = """
import json, os, sys, importlib.util
import ibis, ibis.backends.duckdb, ibis.backends.postgres, ibis.backends.mysql
import MySQLdb, psycopg, pandas, polars, pyarrow, boto3, duckdb, sqlglot
t = ibis.memtable({"a": [1, 2, 3], "b": ["x", "y", "z"]})
expr = t.filter(t.a > 1)
assert len(expr.to_pandas()) == 2
assert expr.to_polars().height == 2
assert expr.to_pyarrow().num_rows == 2
print(json.dumps({
    "uid": os.getuid(),
    "gid": os.getgid(),
    "home": os.environ.get("HOME"),
    "cwd": os.getcwd(),
    "dont_write_bytecode": sys.flags.dont_write_bytecode,
    "ibis_pyc": os.path.exists(importlib.util.cache_from_source(ibis.__file__)),
    "versions": {
        "ibis": ibis.__version__,
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "polars": polars.__version__,
        "pyarrow": pyarrow.__version__,
        "psycopg": psycopg.__version__,
        "boto3": boto3.__version__,
        "sqlglot": sqlglot.__version__,
    },
}))
"""


def _docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


@pytest.fixture(scope="module")
def image(docker_image: str) -> dict[str, Any]:
    """The inspected image (`docker_image`, from tests/conftest.py, fails when it is missing)."""
    inspected: dict[str, Any] = json.loads(_docker("image", "inspect", docker_image).stdout)[0]
    return inspected


@pytest.fixture
def run(docker_image: str) -> Iterator[Any]:
    """run(*docker_run_args, cmd=[...]) -> CompletedProcess; every container is labelled and
    removed, even when the test fails or times out."""
    names: list[str] = []

    def _run(*args: str, cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        name = f"catalog-agents-test-{uuid.uuid4().hex[:12]}"
        names.append(name)
        return _docker(
            "run", "--rm", "--name", name, "--label", f"{TEST_LABEL}={TEST_RUN}",
            *args, docker_image, *cmd, timeout=timeout, check=False,
        )  # fmt: skip

    yield _run
    for name in names:
        _docker("rm", "-f", name, timeout=60, check=False)


def test_configured_user_is_non_root(image: dict[str, Any]) -> None:
    user = image["Config"]["User"]
    assert user, "the image runs as root by default"
    uid = user.split(":")[0]
    assert uid not in ("0", "root")
    assert uid in (str(SANDBOX_UID), "sandbox")


def test_entrypoint_is_the_kernel_module(image: dict[str, Any]) -> None:
    assert image["Config"]["Entrypoint"] == [VENV_PYTHON, "-m", "catalog_kernel"]
    assert image["Config"]["WorkingDir"] == "/tmp"
    env = dict(e.split("=", 1) for e in image["Config"]["Env"])
    assert env["PYTHONPATH"] == "/opt/kernel"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["HOME"] == "/tmp"


def test_kernel_package_is_installed(run: Any) -> None:
    script = (
        "import importlib.util as u, json; s = u.find_spec('catalog_kernel');"
        "m = u.find_spec('catalog_kernel.__main__');"
        "print(json.dumps([list(s.submodule_search_locations), m is not None]))"
    )
    proc = run("--entrypoint", VENV_PYTHON, cmd=["-c", script])
    assert proc.returncode == 0, proc.stderr
    locations, has_main = json.loads(proc.stdout)
    assert locations == ["/opt/kernel/catalog_kernel"]
    assert has_main, "catalog_kernel has no __main__, so `python -m catalog_kernel` cannot start"


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param([], id="default"),
        pytest.param(["--read-only", "--tmpfs", "/tmp", "--network", "none"], id="read-only"),
    ],
)
def test_imports_as_sandbox_user(run: Any, flags: list[str]) -> None:
    proc = run(*flags, "--entrypoint", VENV_PYTHON, cmd=["-c", IMPORTS])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["uid"] == SANDBOX_UID
    assert out["gid"] == SANDBOX_UID
    assert out["home"] == "/tmp"
    assert out["cwd"] == "/tmp"
    assert out["dont_write_bytecode"] == 1
    assert out["ibis_pyc"], "the venv is not byte-compiled"
    assert out["versions"]["ibis"] == "12.0.0"
    assert out["versions"]["duckdb"].startswith("1.")


def test_root_fs_is_read_only_and_tmp_writable(run: Any) -> None:
    script = (
        "import os, tempfile\n"
        "for d in ('/opt/venv', '/opt/kernel', '/usr', '/'):\n"
        "    try:\n"
        "        open(os.path.join(d, 'probe'), 'w')\n"
        "    except OSError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(f'{d} is writable')\n"
        "with tempfile.NamedTemporaryFile(dir='/tmp') as f:\n"
        "    f.write(b'ok')\n"
        "print('ok')\n"
    )
    proc = run(
        "--read-only", "--tmpfs", "/tmp", "--network", "none",
        "--entrypoint", VENV_PYTHON, cmd=["-c", script],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.strip() == "ok"
