"""Real clip files decoded with PyAV: container facts, the ISO 6709 tag and GPMF positions."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devices.telemetry.points import TelemetryError
from devices.video import probe


def test_gopro_gps5_track_and_container_facts(shared_data) -> None:
    clip = probe(shared_data / "video-telemetry" / "gopro_max_heromode_gps5.mp4")
    assert clip.duration_s == pytest.approx(10.5, abs=0.1)
    assert [(s.kind, s.codec) for s in clip.streams][:2] == [("video", "h264"), ("audio", "aac")]
    assert clip.location == (33.1268, -117.3273, None)
    assert clip.created_at is not None
    assert clip.telemetry == "gpmf" and len(clip.gps) == 191
    lats, lons = [p.lat for p in clip.gps], [p.lon for p in clip.gps]
    assert (min(lats), max(lats)) == pytest.approx((33.1266674, 33.12677))
    assert (min(lons), max(lons)) == pytest.approx((-117.3273436, -117.3272734))
    # The GPS agrees with the container's location tag to within 20 m.
    assert abs(lats[0] - 33.1268) < 2e-4 and abs(lons[0] + 117.3273) < 2e-4
    times = [p.at for p in clip.gps]
    assert times == sorted(times) and times[-1] - times[0] == pytest.approx(11.9, abs=0.2)


def test_karma_has_telemetry_but_no_position_and_garbage_is_refused(shared_data, tmp_path) -> None:
    clip = probe(shared_data / "video-telemetry" / "gopro_karma_imu_no_gps.mp4")
    assert clip.telemetry == "gpmf, no position" and clip.gps == []
    assert clip.location is None
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"not a video at all" * 10)
    with pytest.raises(TelemetryError, match="not a readable media file"):
        probe(fake)


def test_video_probe_command(shared_data) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dispatch.cli", "video", "probe",
         str(shared_data / "video-telemetry" / "gopro_max_heromode_gps5.mp4")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "GPS: 191 points" in result.stdout
    assert "+33.1268-117.3273" in result.stdout or "33.1268, -117.3273" in result.stdout


def test_video_import_keeps_the_gps_track_of_a_clip(
    shared_data, redis_service, store, prefix
) -> None:
    env = {**os.environ, "YIWANG_REDIS_URL": redis_service.url, "YIWANG_KEY_PREFIX": prefix}
    folder = shared_data / "video-telemetry"

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dispatch.cli", "video", "import", str(folder / name), "--clip", "CLIP-7"],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip

    done = run("gopro_max_heromode_gps5.mp4")
    assert done.returncode == 0, done.stderr
    track = store.clips.file_track("CLIP-7")
    assert track["source"] == "file" and len(track["points"]) == 191
    refused = run("gopro_karma_imu_no_gps.mp4")
    assert refused.returncode == 1 and "has no GPS telemetry (gpmf, no position)" in refused.stderr


def test_an_srt_file_alone_and_as_a_sidecar(shared_data, tmp_path) -> None:
    srt = shared_data / "video-telemetry" / "dji_srt" / "mavic_pro.SRT"
    result = subprocess.run(
        [sys.executable, "-m", "dispatch.cli", "video", "probe", str(srt)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "telemetry: srt\n" in result.stdout
    assert "GPS: 468 points" in result.stdout
    assert "aircraft clock 2017.08.05 14:11:51 …" in result.stdout
    # A video without GPS of its own takes the SRT lying beside it under the same name.
    video = tmp_path / "DJI_0001.mp4"
    video.symlink_to(shared_data / "video-telemetry" / "gopro_karma_imu_no_gps.mp4")
    (tmp_path / "DJI_0001.SRT").symlink_to(srt)
    clip = probe(video)
    assert clip.telemetry == "srt sidecar DJI_0001.SRT" and len(clip.gps) == 468
    assert clip.streams[0].kind == "video"


def test_importing_an_srt_needs_the_aircraft_clock_zone(
    shared_data, redis_service, store, prefix, tmp_path
) -> None:
    env = {**os.environ, "YIWANG_REDIS_URL": redis_service.url, "YIWANG_KEY_PREFIX": prefix}
    srt = shared_data / "video-telemetry" / "dji_srt" / "mavic_pro.SRT"

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dispatch.cli", "video", "import", str(srt), "--clip", "CLIP-8", *extra],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip

    refused = run()
    assert refused.returncode == 1 and "--srt-zone Asia/Shanghai" in refused.stderr
    assert store.clips.file_track("CLIP-8") is None
    done = run("--srt-zone", "Australia/Brisbane")
    assert done.returncode == 0, done.stderr
    points = store.clips.file_track("CLIP-8")["points"]
    assert len(points) == 468
    # 2017-08-05 14:11:51 in Brisbane (UTC+10) is 04:11:51 UTC.
    assert points[0][0] == 1501906311.0
    assert points[0][1:] == [149.0251, -20.2533, 1.9]
    truncated = tmp_path / "cut.SRT"
    truncated.symlink_to(shared_data / "video-telemetry" / "dji_srt" / "broken_incomplete.SRT")
    strict = subprocess.run(
        [sys.executable, "-m", "dispatch.cli", "video", "probe", str(truncated), "--strict"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert strict.returncode == 1 and "cue 20" in strict.stderr
    lenient = subprocess.run(
        [sys.executable, "-m", "dispatch.cli", "video", "probe", str(truncated)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert lenient.returncode == 0 and "GPS: 19 points" in lenient.stdout
    assert "problem: cut.SRT: cue 20" in lenient.stdout
