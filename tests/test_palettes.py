"""Colour-blind safety, checked by simulation: every palette the app draws with is simulated for protanopia,
deuteranopia and tritanopia (Machado, Oliveira & Fernandes 2009, severity 1, applied in linear RGB) and the colours
that must be told apart are compared in CIELAB (ΔE*ab, CIE76; about 2.3 is a just-noticeable difference)."""

import itertools
from pathlib import Path

import numpy as np
import pytest
from plotly.colors import sample_colorscale

from pages.common import figures, html

VISION = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def rgb(colour: str) -> np.ndarray:
    if colour.startswith("rgb"):
        return np.array([float(v) for v in colour[colour.index("(") + 1:-1].split(",")[:3]]) / 255
    h = colour.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)]) / 255


def linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(colours: list[str], vision: str) -> np.ndarray:
    lin = np.clip(linear(np.array([rgb(c) for c in colours])) @ VISION[vision].T, 0, 1)
    xyz = lin @ RGB_TO_XYZ.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], -1)


def closest_pair(colours: list[str], vision: str) -> float:
    points = lab(colours, vision)
    return min(float(np.linalg.norm(points[i] - points[j])) for i, j in itertools.combinations(range(len(points)), 2))


def contrast(colour: str, text: str = "#111827") -> float:
    y = [float(linear(rgb(c)) @ [0.2126, 0.7152, 0.0722]) for c in (colour, text)]
    return (max(y) + 0.05) / (min(y) + 0.05)


@pytest.mark.parametrize("vision", VISION)
def test_token_colours_stay_apart_for_every_colour_vision(vision):
    assert closest_pair(html.PALETTE, vision) >= 12, vision
    assert min(contrast(c) for c in html.PALETTE) >= 7  # the spans' dark text: WCAG AAA on every colour


def test_the_old_token_colours_failed_the_same_check():
    """The check can fail: the pastels used before had two colours a protanope sees as one."""
    old = ["#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe", "#fed7aa", "#a5f3fc", "#f5d0fe"]
    assert closest_pair(old, "protanopia") < 2.3


@pytest.mark.parametrize("vision", VISION)
def test_series_colours_stay_apart(vision):
    assert closest_pair(figures.SERIES, vision) >= 15, vision


@pytest.mark.parametrize("vision", VISION)
@pytest.mark.parametrize("scale", [figures.ATTENTION_COLORS, "Viridis"])
def test_sequential_scales_keep_their_order_in_lightness(vision, scale):
    """A weight scale must read low → high by lightness alone, whatever hues a viewer loses."""
    lightness = lab(sample_colorscale(scale, list(np.linspace(0, 1, 21))), vision)[:, 0]
    steps = np.diff(lightness)
    assert (steps < 0).all() or (steps > 0).all(), (scale, vision, lightness.round(1))


@pytest.mark.parametrize("vision", VISION)
@pytest.mark.parametrize("scale", [figures.DIVERGING, figures.DIVERGING + "_r"])
def test_diverging_scales_tell_their_two_sides_apart(vision, scale):
    colours = sample_colorscale(scale, list(np.linspace(0, 1, 21)))
    points = lab(colours, vision)
    assert np.linalg.norm(points[0] - points[-1]) >= 30  # the two signs
    for half in (points[:11, 0], points[10:, 0][::-1]):  # lightness rises from each end towards 0
        assert (np.diff(half) > 0).all(), (scale, vision, half.round(1))


@pytest.mark.parametrize("vision", VISION)
def test_colours_that_carry_meaning_alone_stay_apart(vision):
    pairs = {
        "masked cell vs zero weight": (figures.MASKED, sample_colorscale(figures.ATTENTION_COLORS, [0.0])[0]),
        "generation tree: path vs other": ("#dc2626", "#64748b"),
        "forward pass: attention vs feed-forward": ("#2563eb", "#f59e0b"),
        "two curves": ("#0068c9", "#e8590c"),
        "generation: computed vs cached": ("#cbd5e1", "#f59e0b"),
    }
    for what, pair in pairs.items():
        assert closest_pair(list(pair), vision) >= 8, (what, vision)


def test_every_page_colours_signs_one_way():
    """Blue = positive, red = negative everywhere (figures.DIVERGING, POSITIVE, NEGATIVE): no page reverses the
    diverging scale."""
    root = Path(__file__).resolve().parent.parent / "pages"
    for path in [*root.glob("*.py"), *(root / "common").glob("*.py")]:
        assert "RdBu_r" not in path.read_text(), path.name
    assert figures.DIVERGING == "RdBu"  # plotly's RdBu runs from red (low) to blue (high)


@pytest.mark.parametrize("vision", VISION)
def test_the_two_signs_stay_apart(vision):
    assert closest_pair([figures.POSITIVE, figures.NEGATIVE], vision) >= 8
