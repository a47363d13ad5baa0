"""`make screenshots`: the demo's pages in headless Chromium, as PNGs for the README.

Run it after `make demo`. It takes the demo's last two runs under `catalogs/shop` (or under
CATALOG_DEMO_DIR's): the catalog, pii and relations pages of the first, the anomalies and
summary pages of the second (after the data changed, where they have the most to say), and
writes `docs/images/{agent}.png`, 1280x800 each. `--chromium` names the browser (default:
`chromium` on PATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Which of the two runs each page comes from.
PAGES = {"catalog": 0, "pii": 0, "relations": 0, "anomalies": 1, "summary": 1}
WINDOW = "1280,800"


def say(message: str) -> None:
    print(f"screenshots: {message}", file=sys.stderr, flush=True)


def last_two_runs(shop: Path) -> list[Path]:
    """The two newest run folders that have pages (generated history has none)."""
    runs = sorted(p.parent for p in shop.glob("*/summary.html"))
    if len(runs) < 2:
        raise SystemExit(f"screenshots: no two demo runs under {shop}; run `make demo` first")
    return runs[-2:]


def shoot(chromium: str, page: Path, png: Path) -> None:
    command = [chromium, "--headless", "--disable-gpu", "--hide-scrollbars"]
    if os.geteuid() == 0:  # Chromium refuses its own sandbox as root; these are our pages
        command.append("--no-sandbox")
    command += [f"--window-size={WINDOW}", f"--screenshot={png}", page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not png.is_file():
        raise SystemExit(f"screenshots: chromium failed on {page}: {done.stderr[-1000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    demo = Path(os.environ.get("CATALOG_DEMO_DIR", str(REPO)))
    parser.add_argument("--shop", type=Path, default=demo / "catalogs" / "shop")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    runs = last_two_runs(args.shop.resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    for agent, run in PAGES.items():
        png = args.out / f"{agent}.png"
        png.unlink(missing_ok=True)
        shoot(args.chromium, runs[run] / f"{agent}.html", png)
        say(f"wrote {png}")


if __name__ == "__main__":
    main()
