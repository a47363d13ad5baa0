"""The vendored front-end files are the ones the lock pins: a changed byte is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts import vendor_frontend


def test_the_committed_axe_matches_its_pinned_sha256() -> None:
    assert vendor_frontend.main([]) == 0


def test_a_vendored_file_with_another_sha256_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (package,) = vendor_frontend.packages()
    copy = tmp_path / package["into"]
    shutil.copytree(vendor_frontend.REPO / package["into"], copy)
    with (copy / "axe.min.js").open("a") as script:
        script.write(";window.tampered=1")
    monkeypatch.setattr(vendor_frontend, "REPO", tmp_path)
    with pytest.raises(vendor_frontend.VendorError, match=r"axe\.min\.js: sha256 .* the lock pins"):
        vendor_frontend.vendored("axe-core", "axe.min.js")
