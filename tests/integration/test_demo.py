"""`yiwang demo` as a newcomer runs it: a simulated city whose officers move and whose
incidents run through the 1/3/15 clock, served on one port, and stopped cleanly by Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from harness.daemons import free_port
from harness.split import pinned_anchor
from tests.integration.helpers import wait_until


def get_json(url: str, token: str = ""):
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def log_in(base: str, name: str, password: str) -> dict:
    request = urllib.request.Request(
        f"{base}/api/session",
        json.dumps({"name": name, "password": password}).encode(),
        {"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_demo_city_moves_handles_incidents_and_stops_on_ctrl_c(tmp_path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "YIWANG_HTTP_PORT": str(port),
        "YIWANG_DATA_DIR": str(tmp_path),
        # The city's day starts at 10:00 whatever the hour: its reports follow the day.
        "YIWANG_CLOCK_ANCHOR": str(pinned_anchor(10, 10, "Asia/Shanghai", time.time())),
    }
    # Ten times faster so the 15-minute handling clock plays out within the test.
    demo = subprocess.Popen(
        [sys.executable, "-m", "dispatch.cli", "demo", "--speed", "10"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    token = ""

    def devices() -> list[dict]:
        try:
            return get_json(f"{base}/api/devices", token)
        except OSError:
            return []

    def incidents() -> list[dict]:
        try:
            return get_json(f"{base}/api/incidents?open_only=false", token)
        except OSError:
            return []

    try:
        wait_until(lambda: any("Ctrl-C stops everything" in line for line in lines), 120, "ready")
        ready = next(line for line in lines if "demo ready in" in line)
        assert int(re.search(r"ready in (\d+) s", ready).group(1)) < 120
        # The printed credentials work: a token on its own line, and a login per role.
        token = next(line.split()[1] for line in lines if line.startswith("token: "))
        logins = dict(
            re.findall(r"^  (admin|dispatcher|officer)\s+(\S+ / \S+)$", "".join(lines), re.M)
        )
        assert set(logins) == {"admin", "dispatcher", "officer"}, lines
        name, password = logins["dispatcher"].split(" / ")
        assert log_in(base, name, password)["role"] == "dispatcher"
        wait_until(lambda: len(devices()) >= 51, 30, "all 51 officers on the map")
        first = {d["user"]: (d["lon"], d["lat"]) for d in devices()}
        wait_until(
            lambda: sum((d["lon"], d["lat"]) != first[d["user"]] for d in devices()) >= 20,
            30,
            "at least 20 officers moving",
        )
        assert {d["status"] for d in devices()} == {"online"}

        def handled() -> list[dict]:
            return [
                i
                for i in incidents()
                if {"respond", "turn_out", "handle"} <= {m["milestone"] for m in i["milestones"]}
            ]

        wait_until(
            lambda: len(handled()) >= 1, 240, "an incident through respond, turn-out, handle"
        )
        phases = {i["phase"] for i in incidents()}
        assert len(phases) >= 3, phases
        incident = handled()[0]
        assert incident["phase"] in ("resolved", "closed")
        assert get_json(f"{base}/api/incidents/{incident['id']}/recommendations", token)
        assert get_json(f"{base}/api/health")["status"] == "ok"
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    assert demo.returncode == 0, "".join(lines[-40:])
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
