"""Vendor the front-end files we take from npm, each pinned by sha256 in frontend-lock.json.

    python scripts/vendor_frontend.py          # check the committed files (offline)
    python scripts/vendor_frontend.py --fetch  # `npm pack` each package, check, extract, check

`--fetch` refuses a tarball whose sha256 is not the pinned one, extracts only the files the
lock names (the code and its license, nothing is executed: no install scripts run), and
refuses a file whose sha256 differs from the lock's. The check alone needs no network, so the
tests can verify what they inject. To upgrade, change the version, clear the hashes, run
`--fetch` once to see the new ones, read the package's changes, then pin them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "scripts" / "frontend-lock.json"


class VendorError(Exception):
    """A file or tarball that is not what the lock pins."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def packages() -> list[dict[str, Any]]:
    return list(json.loads(LOCK.read_text())["packages"])


def check(package: dict[str, Any]) -> None:
    """Every file of `package` is in place with the pinned sha256."""
    folder = REPO / package["into"]
    for name, pinned in package["files"].items():
        path = folder / name
        if not path.is_file():
            raise VendorError(f"{path} is missing: run python scripts/vendor_frontend.py --fetch")
        if (actual := sha256(path.read_bytes())) != pinned:
            raise VendorError(f"{path}: sha256 {actual}, the lock pins {pinned}")


def vendored(name: str, file: str) -> Path:
    """The path of `file` of package `name`, checked against the lock first."""
    package = next(p for p in packages() if p["name"] == name)
    check(package)
    return REPO / str(package["into"]) / file


def fetch(package: dict[str, Any]) -> None:
    spec = f"{package['name']}@{package['version']}"
    with tempfile.TemporaryDirectory(prefix="vendor-") as work:
        out = subprocess.run(
            ["npm", "pack", spec, "--ignore-scripts", "--json", "--pack-destination", work],
            check=True,
            capture_output=True,
            text=True,
        )
        tarball = Path(work) / json.loads(out.stdout)[0]["filename"]
        if (actual := sha256(tarball.read_bytes())) != package["tarball_sha256"]:
            raise VendorError(f"{spec}: tarball sha256 {actual}, the lock pins "
                              f"{package['tarball_sha256']}")  # fmt: skip
        folder = REPO / package["into"]
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            for name in package["files"]:
                member = archive.extractfile(f"package/{name}")
                if member is None:
                    raise VendorError(f"{spec} has no regular file {name}")
                (folder / name).write_bytes(member.read())
    check(package)


def main(argv: list[str]) -> int:
    try:
        for package in packages():
            if "--fetch" in argv:
                fetch(package)
            check(package)
            print(f"{package['name']}@{package['version']} ({package['license']}): ok")
    except VendorError as error:
        print(f"vendor_frontend: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
