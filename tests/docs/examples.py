"""The examples in README.md and docs/: the fenced blocks marked `<!-- example: NAME -->`.

A marker may add `expect: TEXT` (the output must hold it). A shell block either has `$ `
prompts (each command, maybe continued over lines, is followed by the output it shows) or is
all commands. `<!-- not-an-example: why -->` marks a block that does not run against
`make serve` (compose, TLS, code that runs inside a sandbox, a synopsis).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*(example|not-an-example):\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
# What makes a block an example of calling the stack.
CALLS = re.compile(
    r"\bgrpcurl\b|\bcurl\b|\bcatalog-agents (?:start|get|watch|cancel|list|open)\b"
    r"|\bCatalogClient\b"
)


@dataclass(frozen=True)
class Command:
    text: str  # the command, as a shell reads it
    shown: str  # the output the page shows after it ("" when none)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    code: str
    marker: str  # "example", "not-an-example" or ""
    name: str  # the example's name, or why it is not one
    expect: str = ""

    def commands(self) -> list[Command]:
        lines = self.code.splitlines()
        if not any(line.startswith("$ ") for line in lines):
            return [Command(text, "") for text in _joined(lines)]
        found: list[Command] = []
        i = 0
        while i < len(lines):
            text, i = _one_command(lines, i)
            shown = []
            while i < len(lines) and not lines[i].startswith("$ "):
                shown.append(lines[i])
                i += 1
            found.append(Command(text, "\n".join(shown)))
        return found


def blocks() -> list[Block]:
    found = []
    for path in PAGES:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            fence = FENCE.match(lines[i])
            if not fence:
                i += 1
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            marked = MARKER.match(lines[i - 1].strip()) if i else None
            kind, rest = (marked.group(1), marked.group(2)) if marked else ("", "")
            name, _, expect = rest.partition(" expect: ")
            code = "\n".join(lines[i + 1 : end])
            found.append(
                Block(path.name, i + 1, fence.group(1), code, kind, name.strip(), expect.strip())
            )
            i = end + 1
    return found


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text)
    except ValueError:  # an open quotation: the command goes on
        return False
    return True


def _one_command(lines: list[str], i: int) -> tuple[str, int]:
    text = lines[i][2:]
    i += 1
    while not _complete(text) and i < len(lines):
        text += "\n" + lines[i]
        i += 1
    return text, i


def _joined(lines: list[str]) -> list[str]:
    commands, text = [], ""
    for line in lines:
        if not text and (not line.strip() or line.lstrip().startswith("#")):
            continue
        text = f"{text}\n{line}" if text else line
        if _complete(text):
            commands.append(text)
            text = ""
    return commands
