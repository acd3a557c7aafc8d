"""`yiwang demo` as a newcomer runs it: it serves moving officers and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from dispatch.services import free_port
from tests.integration.helpers import wait_until


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.load(response)


def test_demo_serves_officers_on_patrol_and_stops_on_ctrl_c(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "YIWANG_HTTP_PORT": str(port), "YIWANG_DATA_DIR": str(tmp_path)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "dispatch.cli", "demo", "--officers", "6"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def officers() -> list[dict]:
        try:
            return get_json(f"{base}/api/devices")
        except OSError:
            return []

    try:
        wait_until(lambda: len(officers()) == 6, timeout_s=60, what="six officers on the map")
        first = {d["user"]: (d["lon"], d["lat"]) for d in officers()}
        wait_until(
            lambda: all((d["lon"], d["lat"]) != first[d["user"]] for d in officers()),
            timeout_s=30,
            what="every officer to move",
        )
        assert {d["status"] for d in officers()} == {"online"}
        assert get_json(f"{base}/api/health")["status"] == "ok"
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, output
    assert "Ctrl-C stops everything" in output
    assert not processes_mentioning(str(tmp_path)), "managed redis or mosquitto outlived the demo"


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found
