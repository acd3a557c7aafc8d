"""A body camera that records real clips: H.264 test-pattern video with the time and the
badge number burned in, as 执法记录仪 overlay them, and the clip's metadata on `/clip`.

The overlay uses a built-in 5×7 pixel font (digits, a few letters and punctuation), so no
font file or text-rendering library is needed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# 5×7 glyphs, one string of 7 rows of 5 bits per character.
_FONT = {
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    "-": "00000 00000 00000 11111 00000 00000 00000", ":": "00000 01100 01100 00000 01100 01100 00000",
    " ": "00000 00000 00000 00000 00000 00000 00000", "I": "01110 00100 00100 00100 00100 00100 01110",
    "D": "11110 10001 10001 10001 10001 10001 11110",
}  # fmt: skip
_BEIJING = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class RecordedClip:
    path: Path
    clip_id: str
    start: float
    end: float
    sha256: str
    size: int
    codec: str
    resolution: str


def _text(frame: np.ndarray, text: str, x: int, y: int, scale: int = 2) -> None:
    for n, char in enumerate(text):
        rows = _FONT.get(char, _FONT[" "]).split()
        for r, row in enumerate(rows):
            for c, bit in enumerate(row):
                if bit == "1":
                    top, left = y + r * scale, x + (n * 6 + c) * scale
                    frame[top : top + scale, left : left + scale] = 255


def _pattern(width: int, height: int, n: int) -> np.ndarray:
    """Colour bars that drift a little every frame, so the encoder has motion to code."""
    bars = np.array([[192, 192, 192], [192, 192, 0], [0, 192, 192], [0, 192, 0],
                     [192, 0, 192], [192, 0, 0], [0, 0, 192]], dtype=np.uint8)  # fmt: skip
    columns = ((np.arange(width) + n * 2) * len(bars) // width) % len(bars)
    return np.repeat(bars[columns][None, :, :], height, axis=0).copy()


def record_clip(
    folder: Path,
    *,
    badge: str,
    start: float,
    seconds: float,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
) -> RecordedClip:
    """Encode an MP4 clip starting at `start` (UTC epoch s) with the overlay of a body cam."""
    width, height = size
    clip_id = f"CLIP-{uuid.uuid4().hex[:10].upper()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{badge}_{datetime.fromtimestamp(start, _BEIJING):%Y%m%d%H%M%S}_{clip_id}.mp4"
    with av.open(str(path), "w") as container:
        container.metadata["creation_time"] = datetime.fromtimestamp(start, UTC).isoformat()
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        frames = int(seconds * fps)
        for n in range(frames):
            image = _pattern(width, height, n)
            at = datetime.fromtimestamp(start + n / fps, _BEIJING)
            _text(image, f"{at:%Y-%m-%d %H:%M:%S}", 6, 6)
            _text(image, f"ID {badge}", 6, height - 22)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = path.read_bytes()
    return RecordedClip(path, clip_id, start, start + frames / fps, hashlib.sha256(data).hexdigest(),
                        len(data), "h264", f"{width}x{height}")  # fmt: skip


def clip_message(clip: RecordedClip, *, device: str, badge: str) -> dict[str, object]:
    """The `/clip` payload announcing a recorded clip."""
    return {
        "_type": "clip",
        "clip_id": clip.clip_id,
        "start": round(clip.start, 3),
        "end": round(clip.end, 3),
        "devid": device,
        "badge": badge,
        "tz_offset_s": 8 * 3600,
        "duration_s": round(clip.end - clip.start, 3),
        "file_name": clip.path.name,
        "size": clip.size,
        "sha256": clip.sha256,
        "codec": clip.codec,
        "resolution": clip.resolution,
        "osd_badge": badge,
        "state": "on_device",
    }
