"""Make the HTML a model submits safe to open in a browser, and wrap it in the published page.

The page lands in S3 and is opened by people, so nothing in it may run a script, load a remote
resource or hide the run's metadata. `sanitize` keeps an allow-list (nh3, the Python binding of
the Rust sanitizer ammonia) and checks every URL and inline style itself; `wrap_page` adds a
Content-Security-Policy as a second line of defence and a header the body cannot cover.

Two choices, and why:

- ``<style>`` blocks are dropped, content and all. nh3 filters CSS only in ``style``
  attributes; a block would need a hand-written CSS deny-list (escapes such as ``u\\72l(``,
  comments, ``@font-face``, ``image-set()``...), and a stylesheet reaches the whole page, so
  ``header{display:none}`` could hide the "Incomplete" banner. Inline styles, filtered per
  property, cover what a catalog needs, and `wrap_page` brings a house stylesheet.
- Inline ``<svg>`` is dropped, content and all: it brings ``<script>``, ``foreignObject``,
  event handlers and ``xlink:href`` into the page, and mXSS through foreign content is the
  classic way around sanitizers. A chart comes as ``<img src="data:image/svg+xml;base64,...">``
  (or PNG, JPEG, GIF, WebP): browsers never run scripts nor load resources in an image.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import nh3

from services.agent_runner.errors import InvalidHtml
from services.common.usage import TokenUsage


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# No <main>: the page wrapper has the one <main>.
_ALLOWED_TAGS = _words(
    """
    h1 h2 h3 h4 h5 h6 p br hr blockquote ul ol li dl dt dd
    table caption colgroup col thead tbody tfoot tr th td
    details summary code pre kbd samp var
    em strong b i u s del ins small sub sup mark abbr time wbr a img
    span div section article header footer nav aside figure figcaption
    """
)

# Dropped with everything inside: their content is code, or text nobody should see as text.
_DROPPED_WITH_CONTENT = _words(
    """
    script style template noscript noembed noframes xmp plaintext
    iframe frame frameset object embed applet svg math
    title textarea select option button
    """
)

_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"id", "title", "lang", "dir", "style"},
    "a": {"href"},  # `rel` is set by nh3 (link_rel)
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "headers"},
    "th": {"colspan", "rowspan", "headers", "scope", "abbr"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "reversed", "type"},
    "li": {"value"},
    "details": {"open"},
    "time": {"datetime"},
}

# No property that can take a URL (background, list-style, border-image, content, cursor,
# filter, mask...), nor one that can lift content over the header (position, z-index, transform).
_ALLOWED_CSS_PROPERTIES = _words(
    """
    color background-color opacity
    font font-family font-size font-style font-weight font-variant line-height
    letter-spacing word-spacing text-align text-indent text-transform text-decoration
    text-decoration-line text-decoration-color text-decoration-style text-overflow
    white-space word-break overflow-wrap vertical-align
    margin margin-top margin-right margin-bottom margin-left
    padding padding-top padding-right padding-bottom padding-left
    border border-top border-right border-bottom border-left
    border-color border-style border-width border-radius
    border-top-color border-right-color border-bottom-color border-left-color
    border-top-style border-right-style border-bottom-style border-left-style
    border-top-width border-right-width border-bottom-width border-left-width
    border-collapse border-spacing outline box-shadow
    width min-width max-width height min-height max-height
    display float clear overflow overflow-x overflow-y box-sizing
    table-layout caption-side empty-cells list-style-type list-style-position
    flex flex-direction flex-wrap flex-grow flex-shrink flex-basis
    justify-content align-items align-content align-self order
    gap row-gap column-gap grid-template-columns grid-template-rows grid-column grid-row
    """
)

# Checked on the raw style value: nh3 keeps `url(...)` inside an allowed property, and a
# backslash could spell any of these as a CSS escape.
_CSS_DANGER = re.compile(
    r"url\(|src\(|image-set\(|expression\(|@import|javascript:|vbscript:"
    r"|behavior|binding|\\"
)
_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.DOTALL)

_IMAGE_DATA_URI = re.compile(
    r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}", re.IGNORECASE
)
# Anchors, web links, and another page of the same run (`pii.html`, beside this one): a bare
# agent page name, with no path, scheme or query, so it cannot leave the run's folder.
_LINK = re.compile(
    r"#[^\s\"'<>]*|https?://[^\s\"'<>]+|[a-z][a-z0-9_]{0,31}\.html(#[^\s\"'<>]*)?", re.IGNORECASE
)
# Browsers drop tabs and newlines anywhere in a URL, and C0 controls and spaces at its ends.
_URL_IGNORED = re.compile(r"[\t\n\r]")
_URL_TRIMMED = "".join(chr(c) for c in range(0x21))


def _clean_url(value: str) -> str:
    return _URL_IGNORED.sub("", value).strip(_URL_TRIMMED)


def _css_is_dangerous(css: str) -> bool:
    bare = re.sub(r"\s+", "", _CSS_COMMENT.sub("", css)).lower()
    return _CSS_DANGER.search(bare) is not None


def _filter_style(value: str) -> str | None:
    """The declarations without a URL, import, expression or escape; nh3 then keeps the
    allowed properties. The joined result is checked again, as a whole, to fail closed."""
    kept = ";".join(d for d in value.split(";") if not _css_is_dangerous(d))
    return None if not kept.strip() or _css_is_dangerous(kept) else kept


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """The value to keep, or None to drop it; nh3 calls it for every attribute it allows."""
    if attribute == "style":
        return _filter_style(value)
    if tag == "img" and attribute == "src":
        url = re.sub(r"\s+", "", value)
        return url if _IMAGE_DATA_URI.fullmatch(url) else None
    if tag == "a" and attribute == "href":
        url = _clean_url(value)
        return url if _LINK.fullmatch(url) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    clean_content_tags=_DROPPED_WITH_CONTENT,
    attributes=_ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    strip_comments=True,
    link_rel="noopener noreferrer",
    url_schemes={"http", "https", "data"},  # narrowed per tag by _filter_attribute
    filter_style_properties=_ALLOWED_CSS_PROPERTIES,
)


def sanitize(content: str, *, max_bytes: int) -> str:
    """The body HTML with every script, remote load and risky construct removed.

    Raises InvalidHtml when the content is empty, too large, or empty once cleaned.
    """
    if not content.strip():
        raise InvalidHtml("the HTML is empty: pass the whole catalog page as `content`")
    size = len(content.encode("utf-8"))
    if size > max_bytes:
        raise InvalidHtml(
            f"the HTML is {size} bytes, over the limit of {max_bytes} bytes: shorten it "
            "(fewer or smaller images, summarise long tables) and submit again"
        )
    cleaned = _CLEANER.clean(content)
    if not cleaned.strip():
        raise InvalidHtml(
            "nothing is left of the HTML once scripts, styles, SVG, frames and forms are "
            "removed: submit headings, paragraphs and tables; charts as "
            '<img src="data:image/png;base64,...">'
        )
    return cleaned


def escape_text(value: object) -> str:
    """`value` as HTML text, safe in element content and quoted attributes alike."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True, kw_only=True)
class PageMeta:
    """What the page header tells about the run that wrote it."""

    agent_name: str
    model: str
    generated_at: datetime
    usage: TokenUsage
    stop_reason: str
    turns: int
    complete: bool
    run_id: str
    incomplete_reason: str = ""
    offline: bool = False
    cost_usd: float | None = None  # from the price table; None: the model has no price there
    title: str = ""  # the page's <title>; empty means "Data catalog by <agent_name>"

    def __post_init__(self) -> None:
        if self.generated_at.tzinfo is None:
            raise ValueError("PageMeta.generated_at must be timezone-aware: use datetime.now(UTC)")


CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

# The body sits in its own stacking context below the header, so nothing in it paints over
# the metadata, whatever its margins or floats.
_HOUSE_STYLE = """
body{margin:0;font-family:system-ui,sans-serif;line-height:1.5;color:#1b1b1b}
.run-meta{position:relative;z-index:1;background:#f3f4f6;border-bottom:1px solid #d1d5db;
  padding:.75rem 1.5rem;font-size:.875rem}
.run-meta dl{display:flex;flex-wrap:wrap;gap:.25rem 1.5rem;margin:0}
.run-meta dt{font-weight:600}.run-meta dd{margin:0 0 0 .25rem}
.run-meta div{display:flex}
.run-banner{margin:.5rem 0 0;padding:.5rem .75rem;border-radius:4px;font-weight:600}
.run-incomplete{background:#fde68a;border:1px solid #b45309;color:#78350f}
.run-offline{background:#dbeafe;border:1px solid #1d4ed8;color:#1e3a8a}
.run-body{position:relative;z-index:0;isolation:isolate;padding:1rem 1.5rem}
table{border-collapse:collapse}th,td{border:1px solid #d1d5db;padding:.25rem .5rem}
pre{overflow-x:auto;background:#f9fafb;padding:.5rem}img{max-width:100%}
"""


def _meta_item(label: str, value: object) -> str:
    return f"<div><dt>{escape_text(label)}</dt><dd>{escape_text(value)}</dd></div>"


def _cost_text(cost_usd: float | None) -> str:
    return "unknown (no price for the model)" if cost_usd is None else f"{cost_usd:.4f}"


def _header(meta: PageMeta) -> str:
    when = meta.generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    usage = meta.usage
    items = "".join(
        [
            _meta_item("Agent", meta.agent_name),
            _meta_item("Model", meta.model),
            f'<div><dt>Generated</dt><dd><time datetime="{when}">{when}</time></dd></div>',
            _meta_item("Input tokens", usage.input_tokens),
            _meta_item("Output tokens", usage.output_tokens),
            _meta_item("Cache creation tokens", usage.cache_creation_input_tokens),
            _meta_item("Cache read tokens", usage.cache_read_input_tokens),
            _meta_item("Cost (USD)", _cost_text(meta.cost_usd)),
            _meta_item("Stop reason", meta.stop_reason),
            _meta_item("Turns", meta.turns),
            _meta_item("Complete", "yes" if meta.complete else "no"),
            _meta_item("Run", meta.run_id),
        ]
    )
    banners = ""
    if not meta.complete:
        reason = meta.incomplete_reason or meta.stop_reason
        banners += (
            f'<p class="run-banner run-incomplete" role="alert">'
            f"Incomplete: {escape_text(reason)}</p>"
        )
    if meta.offline:
        banners += (
            '<p class="run-banner run-offline">'
            "Written by the built-in offline agent, without a language model</p>"
        )
    return f'<header class="run-meta"><dl>{items}</dl>{banners}</header>'


def wrap_page(body_html: str, meta: PageMeta) -> str:
    """A complete HTML5 document: CSP, title, the run's metadata, then `body_html` as given.

    `body_html` must come from `sanitize` (or be built with `escape_text`): it is not escaped.
    """
    title = meta.title or f"Data catalog by {meta.agent_name}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n'
        '<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape_text(title)}</title>\n"
        f"<style>{_HOUSE_STYLE}</style>\n"
        "</head>\n<body>\n"
        f"{_header(meta)}\n"
        f'<main class="run-body">\n{body_html}\n</main>\n'
        "</body>\n</html>\n"
    )
