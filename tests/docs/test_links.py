"""The README is a short front door, and every page it sends a reader to exists where it says."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
# [text](target): the target up to a space or ")"; images and links alike.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked out."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return lines


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(path.read_text()):
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            base = github_anchor(heading.group(1))
            anchor, n = base, 0
            while anchor in found:  # GitHub numbers repeated headings: x, x-1, x-2
                n += 1
                anchor = f"{base}-{n}"
            found.add(anchor)
    return found


def relative_links(path: Path) -> list[str]:
    targets = [t for line in prose(path.read_text()) for t in LINK.findall(line)]
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    return broken


def test_the_anchor_rule_matches_github() -> None:
    assert github_anchor("Read only: what holds and what does not") == (
        "read-only-what-holds-and-what-does-not"
    )
    assert github_anchor("The `catalogs` queue, step 2") == "the-catalogs-queue-step-2"


def test_every_relative_link_resolves_to_a_file_and_heading() -> None:
    assert len(PAGES) > 10  # README, CONTRIBUTING and the docs pages are all found
    broken = {p.relative_to(REPO).as_posix(): broken_links(p) for p in PAGES}
    assert not {page: links for page, links in broken.items() if links}


def test_the_readme_stays_a_front_door() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) < 250


def test_every_docs_page_is_one_link_from_the_readme() -> None:
    linked = {
        (REPO / target.partition("#")[0]).resolve() for target in relative_links(REPO / "README.md")
    }
    unlinked = [p.name for p in (REPO / "docs").glob("*.md") if p.resolve() not in linked]
    assert not unlinked, f"link these from the README: {unlinked}"
