"""Maps for evidence packages that open offline: an SVG drawing for the report and a pydeck
page whose scripts travel inside the package (pydeck's HTML points at CDNs by default)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from pathlib import Path

import numpy as np
import pydeck
import pydeck.io.html as pydeck_html

from gis.coords import LonLat, to_local_metres

_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_SCRIPT = "map/index.js"
_CSS = "map/empty.css"


def svg_map(
    tracks: dict[str, list[tuple[float, float]]], incident: tuple[float, float], size: int = 640
) -> str:
    """The tracks as polylines and the incident as a ring, scaled to fit, north up."""
    points = [p for line in tracks.values() for p in line] + [incident]
    origin = LonLat(float(np.mean([p[0] for p in points])), float(np.mean([p[1] for p in points])))
    plane = {
        name: to_local_metres(np.array(line, dtype=float).reshape(-1, 2), origin)
        for name, line in tracks.items()
    }
    spot = to_local_metres(np.array([incident], dtype=float), origin)[0]
    every = np.vstack([*plane.values(), spot[None, :]])
    low, high = every.min(axis=0), every.max(axis=0)
    span = max(float((high - low).max()), 50.0)
    scale = (size - 40) / span

    def xy(p: np.ndarray) -> str:
        return f"{20 + (p[0] - low[0]) * scale:.1f},{size - 20 - (p[1] - low[1]) * scale:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" height="{size}" style="background:#f7f7f2;border:1px solid #ccc">'
    ]
    for n, (name, line) in enumerate(plane.items()):
        colour = _COLOURS[n % len(_COLOURS)]
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(xy(p) for p in line)}"><title>{escape(name)}</title></polyline>'
        )
        if len(line):
            parts.append(
                f'<circle cx="{xy(line[-1]).split(",")[0]}" cy="{xy(line[-1]).split(",")[1]}" r="4" fill="{colour}"/>'
            )
    cx, cy = xy(spot).split(",")
    parts.append(
        f'<circle cx="{cx}" cy="{cy}" r="9" fill="none" stroke="#000" stroke-width="2"><title>incident</title></circle>'
    )
    parts.append(
        f'<text x="20" y="16" font-size="12" fill="#555">{span:.0f} m across · north up</text></svg>'
    )
    return "\n".join(parts)


@contextmanager
def _local_scripts() -> Iterator[None]:
    saved = pydeck_html.CDN_URL, pydeck_html.CDN_CSS_URL
    pydeck_html.CDN_URL, pydeck_html.CDN_CSS_URL = _SCRIPT, _CSS
    try:
        yield
    finally:
        pydeck_html.CDN_URL, pydeck_html.CDN_CSS_URL = saved


def pydeck_page(
    tracks: dict[str, list[tuple[float, float]]], incident: tuple[float, float]
) -> dict[str, bytes]:
    """`map.html` and the scripts it needs, for a package that is opened with no network."""
    paths = [
        {"name": name, "path": [list(p) for p in line]} for name, line in tracks.items() if line
    ]
    layers = [
        pydeck.Layer("PathLayer", paths, get_path="path", get_color=[214, 39, 40], width_min_pixels=3, pickable=True),
        pydeck.Layer("ScatterplotLayer", [{"position": list(incident)}], get_position="position",
                     get_radius=30, get_fill_color=[0, 0, 0, 160]),
    ]  # fmt: skip
    view = pydeck.ViewState(longitude=incident[0], latitude=incident[1], zoom=14)
    deck = pydeck.Deck(
        layers=layers,
        initial_view_state=view,
        map_provider=None,
        map_style=None,
        tooltip={"text": "{name}"},
    )
    with _local_scripts():
        html = deck.to_html(as_string=True, notebook_display=False)
    # The template also hard-codes a map library script and stylesheets from CDNs.
    html = re.sub(r'<script src="https://[^"]*"></script>', "", html)
    html = re.sub(r'<link rel="stylesheet" href="https://[^"]*" ?/>', "", html)
    bundle = Path(pydeck.__file__).parent / "nbextension" / "static" / "index.js"
    return {"map.html": html.encode(), _SCRIPT: bundle.read_bytes(), _CSS: b""}
