"""Building an incident's evidence package: its files, the manifest that lists their digests,
and two signatures, one over the manifest and one over the zip's own bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

from dispatch.evidence.formats import (
    KIND,
    MANIFEST,
    SIGNATURE,
    TRACK_FORMATS,
    ZIP_SIGNATURE_HEX,
    PackageContent,
    encode_json,
    photo_file,
    track_files,
    write_chain,
    write_file_geojson,
)
from dispatch.evidence.records import check_chain
from dispatch.evidence.report import render_report
from dispatch.evidence.signing import Signer, canonical_json
from dispatch.evidence.staticmap import pydeck_page, svg_map


def build_package(
    content: PackageContent, signer: Signer, created_at: float, *, with_map: bool = True
) -> bytes:
    files: dict[str, bytes] = {
        "incident.json": encode_json(content.incident),
        "timeline.json": encode_json({"milestones": content.incident.get("milestones", []), "audit": content.audit}),
        "clips.json": encode_json(content.clips),
        "photos.json": encode_json(content.photos),
    }  # fmt: skip
    for sha256, data in content.photo_files.items():
        files[photo_file(sha256)] = data
    chains: dict[str, Any] = {}
    for track in content.tracks:
        head, problems = check_chain(track.records, track.chain_start, track.device, track.device)
        if problems:
            raise ValueError(
                f"the stored chain is broken, no package can vouch for it: {problems[0]}"
            )
        names = track_files(track)
        files[names["chain"]] = write_chain(track.records)
        for kind, track_format in TRACK_FORMATS.items():
            files[names[kind]] = track_format.write(track)
        chains[track.device] = {
            **names,
            "officer": track.officer,
            "start": track.chain_start,
            "head": head,
            "count": len(track.records),
        }
    for clip_id, from_file in content.file_tracks.items():
        files[f"tracks/files/{clip_id}.geojson"] = write_file_geojson(clip_id, from_file)
    lines = {t.device: [(r.fix["lon"], r.fix["lat"]) for r in t.records] for t in content.tracks}
    spot = tuple(content.incident["location"])
    files["report.html"] = render_report(content, chains, svg_map(lines, spot)).encode()
    if with_map:
        files.update(pydeck_page(lines, spot))
    manifest = {
        "kind": KIND,
        "incident": content.incident["id"],
        "window": list(content.window),
        "created_at": round(created_at, 3),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "chains": chains,
        "key_id": signer.key_id,
        "public_key": signer.public_hex,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
        archive.writestr(SIGNATURE, signer.sign(canonical_json(manifest)))
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
        archive.comment = b"0" * ZIP_SIGNATURE_HEX
    # The zip's own bytes are signed too, the signature being its comment (the last bytes of
    # the file): even a header byte that changes no content fails verification.
    signed = buffer.getvalue()[:-ZIP_SIGNATURE_HEX]
    return signed + signer.sign(signed).encode()
