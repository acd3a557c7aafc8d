"""Verifying an evidence package with nothing but its bytes (and, if given, a trusted key).

`verify_package` checks the signature, every digest, every chain link from its start to the
manifest's head, and every track file against the chain, value for value; each problem names
the file and the record.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

from dispatch.core.track import DeviceKey
from dispatch.evidence.formats import (
    MANIFEST,
    SIGNATURE,
    TRACK_FORMATS,
    ZIP_SIGNATURE_HEX,
    Point,
)
from dispatch.evidence.records import ChainRecord, check_chain
from dispatch.evidence.signing import canonical_json, signature_valid


@dataclass
class Verdict:
    problems: list[str]
    summary: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_package(data: bytes, trusted_key: str | None = None) -> Verdict:
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return Verdict([f"package: not a readable zip ({exc})"], [])
    contents: dict[str, bytes] = {}
    for name in names:
        try:
            contents[name] = archive.read(name)
        # NotImplementedError: a flipped byte can name a compression method zipfile lacks.
        except (
            zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error, NotImplementedError
        ) as exc:  # fmt: skip
            problems.append(f"{name}: cannot be read from the zip ({exc})")
    try:
        manifest = json.loads(contents[MANIFEST])
        signature = contents[SIGNATURE].decode("ascii").strip()
    except (KeyError, ValueError) as exc:
        return Verdict([*problems, f"{MANIFEST} or {SIGNATURE}: missing or unreadable ({exc})"], [])
    signed, whole = (
        data[:-ZIP_SIGNATURE_HEX],
        data[-ZIP_SIGNATURE_HEX:].decode("ascii", "replace"),
    )
    if not signature_valid(str(manifest.get("public_key", "")), signed, whole):
        problems.append("package: the zip's bytes changed after signing (whole-package signature)")
    if not re.fullmatch("[0-9a-f]{128}", signature):
        problems.append(f"{SIGNATURE}: not the lower-case hex Ed25519 signature written at export")
    elif not signature_valid(
        str(manifest.get("public_key", "")), canonical_json(manifest), signature
    ):
        problems.append(f"{MANIFEST}: the signature does not match (changed after signing)")
    if trusted_key is not None and manifest.get("public_key") != trusted_key:
        problems.append(f"{MANIFEST}: signed by key {manifest.get('key_id')}, not the trusted key")
    listed: dict[str, str] = manifest.get("files", {})
    for name, digest in listed.items():
        if name not in contents:
            if not any(p.startswith(f"{name}:") for p in problems):
                problems.append(f"{name}: listed in the manifest, missing from the package")
        elif hashlib.sha256(contents[name]).hexdigest() != digest:
            problems.append(f"{name}: sha256 differs from the manifest (the file was changed)")
    for name in names:
        if name not in listed and name not in (MANIFEST, SIGNATURE):
            problems.append(f"{name}: in the package but not in the manifest")
    summary = [f"incident {manifest.get('incident')}, signed by key {manifest.get('key_id')}"]
    for device, chain in manifest.get("chains", {}).items():
        try:
            problems += _check_device(DeviceKey(device), chain, contents)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(f"{MANIFEST}: the chain entry of {device} is unusable ({exc!r})")
        summary.append(
            f"{device} ({chain.get('officer')}): {chain.get('count')} fixes, head {str(chain.get('head'))[:16]}…"
        )
    return Verdict(problems, summary)


def _check_device(
    device: DeviceKey, chain: dict[str, Any], contents: dict[str, bytes]
) -> list[str]:
    problems: list[str] = []
    name = chain["chain"]
    records = []
    for number, line in enumerate(contents.get(name, b"").splitlines(), start=1):
        try:
            records.append(ChainRecord.from_json(json.loads(line)))
        except (ValueError, KeyError) as exc:
            problems.append(f"{name}: line {number} is not a chain record ({exc})")
            return problems
    head, chain_problems = check_chain(records, chain["start"], name, device)
    problems += chain_problems
    if not chain_problems and head != chain["head"]:
        problems.append(
            f"{name}: the chain ends on {head[:16]}…, the manifest says {str(chain['head'])[:16]}… (records missing at the end)"
        )
    if len(records) != chain["count"]:
        problems.append(f"{name}: {len(records)} records, the manifest says {chain['count']}")
    if chain_problems:
        return problems  # the tracks cannot be compared with a chain that does not hold
    expected = [(r.fix["fix_at"], float(r.fix["lon"]), float(r.fix["lat"])) for r in records]
    for kind, track_format in TRACK_FORMATS.items():
        file = chain[kind]
        if file not in contents:
            continue
        try:
            found = track_format.read(contents[file])
        # Decoders of untrusted bytes (pyarrow, pyproj, shapely) raise errors of their own.
        except Exception as exc:
            problems.append(f"{file}: unreadable ({exc})")
            continue
        problems += _compare(file, found, expected)
    return problems


def _compare(file: str, found: list[Point], expected: list[Point]) -> list[str]:
    for index, (got, want) in enumerate(zip(found, expected, strict=False)):
        if got[0] != want[0] or abs(got[1] - want[1]) > 1e-9 or abs(got[2] - want[2]) > 1e-9:
            return [f"{file}: point {index} is {got}, the chain says {want}"]
    if len(found) != len(expected):
        return [f"{file}: {len(found)} points, the chain has {len(expected)}"]
    return []
