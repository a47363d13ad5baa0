"""Every block that calls the stack is marked: an example the e2e test runs
(tests/e2e/test_doc_examples.py), or a block that says why it is not one."""

from __future__ import annotations

from tests.docs.examples import CALLS, blocks


def test_every_block_that_calls_the_stack_is_marked() -> None:
    unmarked = [
        f"{b.page}:{b.line}"
        for b in blocks()
        if b.language and CALLS.search(b.code) and not b.marker
    ]
    assert not unmarked, (
        "mark these blocks `<!-- example: NAME -->` (the e2e test runs them) or "
        f"`<!-- not-an-example: why -->`: {unmarked}"
    )


def test_the_readme_shows_all_four_ways_in() -> None:
    names = {b.name for b in blocks() if b.page == "README.md" and b.marker == "example"}
    assert {"grpcurl", "curl", "python", "cli"} <= names


def test_shell_examples_split_into_commands_and_what_they_show() -> None:
    grpcurl = next(b for b in blocks() if b.name == "grpcurl")
    commands = grpcurl.commands()
    assert [c.text.split()[0] for c in commands] == ["grpcurl", "grpcurl"]
    assert "StartCatalog" in commands[0].text and '"catalog_id"' in commands[0].shown
    assert commands[1].shown.lstrip().startswith('{ "step_changed"')
