"""A password printed in disguise is still redacted: base64 (both alphabets, padded or not, and
inside a longer base64 string at any alignment), hex, URL-encoding and reversed. Over the
Redactor itself, and end to end through the agent runner to the fake Anthropic API."""

from __future__ import annotations

import base64
import html
import json
import time
from urllib.parse import quote, quote_plus

import pytest
from catalog.v1 import agent_pb2 as pb

from services.common.redaction import REDACTED, Redactor, encoded_forms
from tests.agent_runner.conftest import (  # noqa: F401  (fixtures)
    StartRunner,
    collect,
    fake,
    lease,
    manager,
    run_request,
    start_runner,
)
from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use

PASSWORD = "pw/S3cr3t+?&x~y"  # '/', '+' and '?' make each base64 alphabet and quoting differ


def disguises(secret: str) -> dict[str, str]:
    raw = secret.encode()
    return {
        "base64": base64.b64encode(raw).decode(),
        "base64 unpadded": base64.b64encode(raw).decode().rstrip("="),
        "urlsafe base64": base64.urlsafe_b64encode(raw).decode(),
        "urlsafe base64 unpadded": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "quote": quote(secret, safe=""),
        "quote_plus": quote_plus(secret),
        "reversed": secret[::-1],
        "HTML-escaped": html.escape(secret),
    }


@pytest.mark.parametrize("name", list(disguises(PASSWORD)))
def test_each_encoding_of_the_password_is_redacted(name: str) -> None:
    form = disguises(PASSWORD)[name]
    redacted = Redactor([PASSWORD])(f"out: {form} :end")
    assert form not in redacted and REDACTED in redacted
    assert redacted.startswith("out: ") and redacted.endswith(" :end")


@pytest.mark.parametrize("before", [b"", b"a", b"ab", b"abc", b"abcd", b"user:"])
def test_the_password_inside_a_longer_base64_string_is_redacted(before: bytes) -> None:
    """e.g. base64 of `user:password` (HTTP basic auth), whatever the password's offset."""
    redact = Redactor([PASSWORD])
    start = -(-len(before) * 8 // 6)  # the first character made of the password's bits alone
    end = (len(before) + len(PASSWORD)) * 8 // 6
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        blob = encode(before + PASSWORD.encode() + b"-tail").decode()
        redacted = redact(blob)
        assert REDACTED in redacted
        assert blob[start:end] not in redacted


def test_short_secrets_and_short_forms_stay_excluded() -> None:
    assert Redactor(["abc"])("abc YWJj 616263") == "abc YWJj 616263"
    assert all(len(form) >= 8 for form in encoded_forms("abcd") - {"abcd"})
    assert Redactor(["abcd"])("abcd and dcba") == f"{REDACTED} and dcba"  # 'dcba' is short


def test_a_dsn_is_replaced_whole_before_its_password() -> None:
    dsn = f"postgresql://reader:{quote(PASSWORD, safe='')}@db:5432/shop"
    redact = Redactor([dsn, PASSWORD, quote(PASSWORD, safe="")])
    assert redact(f"connect {dsn} now") == f"connect {REDACTED} now"


def test_redaction_stays_fast_with_the_forms_precomputed() -> None:
    redact = Redactor([PASSWORD, f"postgresql://u:{PASSWORD}@h/db", "another-secret-value"])
    text = "ordinary tool output with numbers 1234567890 and words\n" * 2000  # ~110 KB
    started = time.perf_counter()
    for _ in range(10):
        redact(text)
    assert (time.perf_counter() - started) / 10 < 0.05


async def test_each_encoding_printed_by_a_cell_never_reaches_the_model_or_the_page(
    start_runner: StartRunner,  # noqa: F811
    fake: FakeAnthropic,  # noqa: F811
    lease: str,  # noqa: F811
) -> None:
    # The cell builds every disguise itself, so the password is only in redact_values.
    parts = [PASSWORD[:6], PASSWORD[6:]]
    code = (
        "import base64, urllib.parse\n"
        f"s = {parts[0]!r} + {parts[1]!r}\n"
        "b = s.encode()\n"
        "print(base64.b64encode(b).decode(), base64.urlsafe_b64encode(b).decode().rstrip('='))\n"
        "print(base64.b64encode(b'user:' + b).decode())\n"
        "print(b.hex(), b.hex().upper(), s[::-1])\n"
        "print(urllib.parse.quote(s, safe=''), urllib.parse.quote_plus(s))\n"
    )
    page_forms = " ".join(disguises(PASSWORD)[name] for name in ("base64", "hex", "reversed"))
    fake.script(
        Reply(tool_use("execute_python", {"code": code})),
        # a page that spells the password out (as a model could from pieces it saw)
        Reply(tool_use("submit_html", {"content": f"<h1>done</h1><p>{page_forms}</p>"})),
    )
    stub = (await start_runner()).stub
    events = await collect(stub.RunAgent(run_request(lease, redact_values=[PASSWORD])))
    assert events[-1].result.stop_reason == pb.STOP_REASON_SUBMITTED
    page = events[-1].result.html
    assert "done" in page and page.count(REDACTED) == 3
    assert all(form not in page for form in page_forms.split())
    sent = json.dumps(fake.requests[1].body)
    assert sent.count(REDACTED) >= 8  # one per form printed
    for name, form in disguises(PASSWORD).items():
        assert json.dumps(form)[1:-1] not in sent, name
    inner = base64.b64encode(b"user:" + PASSWORD.encode()).decode()
    assert inner not in sent
