"""Chart layout a learner reads: a title never sits on a legend, and in presenter mode (large type) a long title
wraps instead of running off its chart — checked on the figures the pages send."""

import html
import re

import pytest

from pages.common import figures, present
from tests.test_app import app, charts, open_page, title


def title_lines(layout: dict) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in title(layout_fig(layout)).split("<br>")]


def layout_fig(layout: dict) -> dict:
    return {"layout": layout}


def clears(layout: dict, font: float, title_font: float) -> bool:
    """The title's band (from the top of the figure) ends above the legend's band (just above the plot)."""
    lines = len(title(layout_fig(layout)).split("<br>"))
    title_bottom = figures.TITLE_PAD + lines * figures.LINE * title_font
    legend_top = layout["margin"]["t"] - figures.LINE * font
    return (layout["title"].get("yref") == "container" and layout["legend"]["yanchor"] == "bottom"
            and layout["legend"]["y"] == 1 and title_bottom <= legend_top)


@pytest.mark.parametrize("presenting", [False, True])
def test_the_forward_pass_title_clears_its_legend(presenting):
    at = app(**({"present": "1"} if presenting else {}))
    at = open_page(at, "pages/forward_pass.py")
    overview = next(c for c in charts(at) if "through the model" in title(c))
    font, title_font = (present.FONT, present.FONT + 6) if presenting else (14, 17)
    assert clears(overview["layout"], font, title_font), overview["layout"]


def test_presenter_mode_wraps_the_translation_pages_titles():
    at = open_page(app(model="translator-en-fr", present="1"), "pages/translation.py")
    titled = [c for c in charts(at) if title(c)]
    assert titled and any(len(title(c).split("<br>")) > 1 for c in titled)  # the long ones were wrapped
    for chart in titled:
        lines = title_lines(chart["layout"])
        assert all(len(line) <= present.TITLE_CHARS for line in lines), lines
        assert chart["layout"]["margin"]["t"] >= figures.TITLE_PAD + len(lines) * figures.LINE * (present.FONT + 6)


def test_a_title_wraps_at_spaces_and_keeps_its_breaks():
    wrapped = present.wrap_title("…and where it looked in the English (last layer, mean of 8 heads)<br>second", 30)
    assert wrapped.split("<br>") == ["…and where it looked in the", "English (last layer, mean of 8", "heads)",
                                     "second"]
    assert present.wrap_title("&lt;s&gt; token", 4) == "&lt;s&gt;<br>token"  # an entity is never cut


def test_the_frame_navigates_before_its_slow_imports():
    """On a fresh server's first page Streamlit shows the pages/ folder's raw file names until app.py's
    st.navigation replaces them: the call comes before every import but Streamlit's own and the page list's."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parent.parent / "app.py").read_text())
    body = [node for node in tree.body if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Constant)]
    first_call = next(i for i, node in enumerate(body) if "st.navigation" in ast.unparse(node))
    before = [ast.unparse(node) for node in body[:first_call]]
    assert all(line.startswith(("import importlib", "import streamlit", "from pages.common import nav"))
               for line in before), before
