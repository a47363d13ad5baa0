"""Services meet only through their protos: no service imports another one's package.

Each service under services/ imports services/common, its own package and the generated
catalog.v1 code; what two services share (the clients, the error tree) lives in common. A
service that reached into another's internals could not be deployed, changed or tested alone.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import services.common.clients as clients

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
SHARED = "common"


def imported_modules(path: Path, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if base == "services":  # `from services import orchestrator` names the package
                yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)
            else:
                yield node.lineno, base


def crossings(services_dir: Path) -> list[str]:
    """Every import, in any services/<a>/ file, of services.<b> with b neither a nor common."""
    found = []
    for path in sorted(services_dir.rglob("*.py")):
        relative = path.relative_to(services_dir.parent)
        owner = relative.parts[1] if len(relative.parts) > 2 else None
        if owner is None:  # services/__init__.py and the like belong to no service
            continue
        package = ".".join(relative.with_suffix("").parts[:-1])
        for line, module in imported_modules(path, package):
            parts = module.split(".")
            if parts[0] != "services" or len(parts) < 2:
                continue
            allowed = {owner} if owner == SHARED else {owner, SHARED}
            if parts[1] not in allowed:
                found.append(f"{relative}:{line} imports {module}")
    return sorted(set(found))


def test_no_service_imports_another_service() -> None:
    assert crossings(SERVICES) == []


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    """A runner module reaching into the manager, absolutely or relatively, is caught."""
    runner = tmp_path / "services" / "agent_runner"
    runner.mkdir(parents=True)
    (runner / "sneaky.py").write_text(
        "from services.sandbox_manager.pool import Pool\n"
        "from ..orchestrator import steps\n"
        "import services.common.errors\n"
        "from . import config\n",
        encoding="utf-8",
    )
    common = tmp_path / "services" / "common"
    common.mkdir()
    (common / "leaky.py").write_text("from services import orchestrator\n", encoding="utf-8")
    assert crossings(tmp_path / "services") == [
        "services/agent_runner/sneaky.py:1 imports services.sandbox_manager.pool",
        "services/agent_runner/sneaky.py:2 imports services.orchestrator",
        "services/common/leaky.py:1 imports services.orchestrator",
    ]


def test_the_clients_list_their_public_surface() -> None:
    """`__all__` names exactly what the package offers, each name defined."""
    assert sorted(clients.__all__) == clients.__all__
    public = {name for name in vars(clients) if not name.startswith("_")}
    assert public == set(clients.__all__)


def test_the_catalog_client_imports_without_dbos_or_docker() -> None:
    """Another backend service depends on the client alone: importing it (and the CLI built on
    it) pulls in neither the orchestrator's DBOS nor the manager's docker."""
    probe = (
        "import sys\n"
        "from services.common.clients import CatalogClient\n"
        "import services.common.cli\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dbos', 'docker', 'anthropic', 'boto3', 'fastapi', 'sqlalchemy'))\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_web_uis_toolkit_modules_load_where_ibis_is_not_installed() -> None:
    """The orchestrator's image has no ibis: the web UI's charts and run comparison (the
    toolkit's pure modules) must load there, which a toolkit import chain reaching the
    database layer once broke (recording a profile masks it with the pii rules)."""
    probe = (
        "import sys\n"
        "class NoDataStack:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('ibis', 'duckdb', 'pandas', 'polars', 'pyarrow'):\n"
        "            raise ImportError(name + ' is not installed here')\n"
        "sys.meta_path.insert(0, NoDataStack())\n"
        "from services.orchestrator.ui.toolkit import module\n"
        "print(module('compare').compare_runs.__name__, module('charts').sparkline.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'protos'}:{ROOT / 'sandbox'}"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["compare_runs", "sparkline"]
