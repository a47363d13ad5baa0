"""Files the orchestrator copies into the sandbox (earlier runs' pages, for the summary agent).

A copy needs no storage credentials in the sandbox and is read only towards the store whatever
the store allows. A file arrives in base64 chunks, one cell each, so no cell is too large.
"""

from __future__ import annotations

import base64
import os


def make_folder(name: str) -> str:
    """The absolute path of folder `name` under the working folder, made if missing."""
    path = os.path.abspath(name)
    os.makedirs(path, exist_ok=True)
    return path


def stage_file(path: str, chunk: str, append: bool = False) -> int:
    """Write (or, with `append`, add) the base64 `chunk` to `path`, making its folder; returns
    the file's size after the write."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "ab" if append else "wb") as file:
        file.write(base64.b64decode(chunk, validate=True))
    return os.path.getsize(path)
