"""HTML we build ourselves: token spans, and bertviz's views made to work offline.

Every token string is escaped before it goes into HTML. bertviz's JSON sits inside a <script>, where html.escape
does not help: there `</` and `<!--` are escaped so no token can close the script or open a comment.
"""

from __future__ import annotations

import html
import re
import unicodedata
import zlib
from functools import lru_cache

from core.loading.integrity import ASSETS, check_asset

# Light enough for the dark text (contrast ≥ 7:1) and apart under protan-, deutan- and tritanopia as well as normal
# vision (min ΔE*ab 13 between any two, simulated: tests/test_palettes.py); the old pastels had two colours a
# protanope could not tell apart (ΔE 0.5). The gap between spans marks every token boundary too.
PALETTE = ["#90f0c0", "#c0c080", "#f090f0", "#90b0b0", "#f0e080", "#c0c0e0", "#d0a090", "#c0f0f0"]
VISIBLE = {" ": "·", "\n": "↵", "\t": "→", "\r": "␍"}


INVISIBLE = {"\u200d": "‹ZWJ›", "\u200c": "‹ZWNJ›", "\u200b": "‹ZWSP›", "\ufeff": "‹BOM›", "\u00ad": "‹SHY›",
             "\u00a0": "⍽"}


def visible(text: str) -> str:
    """Whitespace, control and invisible format characters made visible (a learner must see that ' the' starts
    with a space, and that an emoji family holds zero-width joiners)."""
    out = []
    for ch in text:
        if ch in VISIBLE:
            out.append(VISIBLE[ch])
        elif ch in INVISIBLE:
            out.append(INVISIBLE[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        elif unicodedata.category(ch) == "Cf":  # other zero-width format characters (bidi marks, tags, …)
            out.append(f"‹U+{ord(ch):04X}›")
        else:
            out.append(ch)
    return "".join(out)


def colour(token: int | str) -> str:
    """A palette colour that depends on the token alone (not on where it stands)."""
    key = token if isinstance(token, int) else zlib.crc32(token.encode("utf-8", "surrogatepass"))
    return PALETTE[key % len(PALETTE)]


def token_spans(
    tokens: list[str], ids: list[int] | None = None, show_ids: bool = True, mark_from: int | None = None,
    scope: str | None = None,
) -> str:
    """Coloured spans, one per token; the id sits under its token, and hovering shows index, id and bytes.
    The same token always gets the same colour (by its id, or its text when there are no ids). Tokens from
    `mark_from` on get a dark outline (generated text). With a `scope` (the tokenizer's name) and ids, hovering a
    token rings every copy of it in every view of the same tokenizer on the page (CSS :has, no script)."""
    cells = []
    tag = re.sub(r"[^a-z0-9]", "-", scope.lower()) if scope and ids is not None else None
    for i, tok in enumerate(tokens):
        label = html.escape(visible(tok)) or "&nbsp;"
        tid = "" if ids is None else str(ids[i])
        hover = html.escape(f"#{i} · id {tid} · {tok.encode('utf-8', 'backslashreplace')!r}", quote=True)
        id_line = (
            f'<span style="display:block;font-size:0.7em;color:#475569;text-align:center">{tid}</span>'
            if show_ids and ids is not None
            else ""
        )
        outline = "outline:2px solid #0f172a;" if mark_from is not None and i >= mark_from else ""
        klass = f' class="gb-{tag}-{ids[i]}"' if tag else ""
        cells.append(
            f'<span title="{hover}"{klass} '
            f'style="display:inline-block;margin:2px;padding:2px 4px;border-radius:4px;{outline}'
            f'background:{colour(tok if ids is None else ids[i])};color:#111827;font-family:monospace;white-space:pre;'
            'line-height:1.3">'
            f"{label}{id_line}</span>"
        )
    rings = ""
    if tag:
        rings = "<style>" + "".join(f"body:has(.gb-{tag}-{i}:hover) .gb-{tag}-{i}{{box-shadow:0 0 0 3px #dc2626}}"
                                    for i in dict.fromkeys(ids)) + "</style>"
    return rings + '<div data-gb-tokens style="line-height:2.2">' + "".join(cells) + "</div>"


def script_safe(code: str) -> str:
    """Text placed inside <script> must not contain `</` (closes the tag) or `<!--`."""
    return code.replace("</", "<\\/").replace("<!--", "<\\!--")


@lru_cache(maxsize=1)
def _vendor_js() -> str:
    vendor = ASSETS / "vendor"
    for name in ("d3-5.7.0.min.js", "jquery-2.2.4.min.js", "require-2.3.6.js"):
        check_asset(vendor / name)
    d3 = (vendor / "d3-5.7.0.min.js").read_text(encoding="utf-8")
    jquery = (vendor / "jquery-2.2.4.min.js").read_text(encoding="utf-8")
    require = (vendor / "require-2.3.6.js").read_text(encoding="utf-8")
    # d3 and jQuery load first, as plain globals; then require.js, and the two are registered as named modules
    # so bertviz's requirejs(['jquery', 'd3'], …) finds them without fetching anything.
    shim = "define('d3', [], function () { return window.d3; }); define('jquery', [], function () { return window.jQuery; });"
    return "".join(f"<script>{script_safe(js)}</script>\n" for js in (d3, jquery, require, shim))


REQUIRE_TAG = '<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js"></script>'
SCRIPT_OPEN = '\n<script type="text/javascript">\n'


def bertviz_offline(view_html: str) -> str:
    """bertviz's returned HTML with the CDN scripts inlined from assets/vendor and its params made script-safe."""
    if REQUIRE_TAG not in view_html or SCRIPT_OPEN not in view_html:
        raise ValueError("unexpected bertviz HTML layout: cannot make it work offline")
    head, script = view_html.replace(REQUIRE_TAG, "").split(SCRIPT_OPEN, 1)
    body = script.rsplit("</script>", 1)[0]
    body = body.replace("https://cdnjs.cloudflare.com/ajax/libs/d3/5.7.0/d3.min", "d3")
    body = body.replace("https://cdnjs.cloudflare.com/ajax/libs/jquery/2.0.0/jquery.min", "jquery")
    return (
        "<!doctype html><html><head><meta charset='utf-8'></head><body>"
        + _vendor_js() + head + "<script>" + script_safe(body) + "</script></body></html>"
    )



def model_view_height(n_layers: int, n_heads: int, n_tokens: int) -> int:
    """Pixels bertviz's model view needs (its own layout rules in model_view.js: a thumbnail row per layer of
    n_tokens × 7·12/n_heads px plus padding, or the enlarged head's token list if taller), plus its layer menu."""
    rows = n_layers * (n_tokens * 84 / n_heads + 10) + 38
    detail = n_tokens * 18 + 55
    return int(max(rows, detail)) + 90


SURPRISE_MAX = 10.0  # nats: −log p at which the colour is full (p ≈ 1 in 22,000)


def surprise_colour(nll: float) -> str:
    """White for 0 nats (certain) to a red at SURPRISE_MAX; grey where there is no number (the first token). The
    darkest red keeps the dark text readable (contrast ≥ 4.5:1)."""
    if nll != nll:  # NaN
        return "#e2e8f0"
    f = min(max(nll / SURPRISE_MAX, 0.0), 1.0)
    red, green, blue = 255 - round(16 * f), 255 - round(150 * f), 255 - round(150 * f)
    return f"#{red:02x}{green:02x}{blue:02x}"


def surprise_spans(tokens: list[str], nll: list[float], hovers: list[str]) -> str:
    """One span per token, its background by −log p (surprise_colour), its hover text given."""
    cells = []
    for tok, value, hover in zip(tokens, nll, hovers, strict=True):
        label = html.escape(visible(tok)) or "&nbsp;"
        cells.append(f'<span title="{html.escape(hover, quote=True)}" style="display:inline-block;margin:1px;'
                     f'padding:2px 3px;border-radius:3px;background:{surprise_colour(value)};color:#111827;'
                     f'font-family:monospace;white-space:pre;line-height:1.3">{label}</span>')
    return '<div data-gb-tokens style="line-height:2.0">' + "".join(cells) + "</div>"


def signed_spans(tokens: list[str], values: list[float], hovers: list[str]) -> str:
    """One span per token, blue for a positive value and red for a negative one (figures' convention), the strongest
    |value| fullest."""
    top = max((abs(v) for v in values), default=0.0) or 1.0
    cells = []
    for tok, value, hover in zip(tokens, values, hovers, strict=True):
        f = min(abs(value) / top, 1.0)
        red, green, blue = (round(255 - 150 * f), round(255 - 110 * f), 255) if value > 0 else \
            (255, round(255 - 150 * f), round(255 - 150 * f))
        label = html.escape(visible(tok)) or "&nbsp;"
        cells.append(f'<span title="{html.escape(hover, quote=True)}" style="display:inline-block;margin:1px;'
                     f'padding:2px 3px;border-radius:3px;background:#{red:02x}{green:02x}{blue:02x};color:#111827;'
                     f'font-family:monospace;white-space:pre;line-height:1.3">{label}</span>')
    return '<div data-gb-tokens style="line-height:2.0">' + "".join(cells) + "</div>"
