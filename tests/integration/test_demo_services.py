"""A command run beside a demo uses the demo's Redis, broker and PostgreSQL, found in its
services file, and says so; the user's own settings still win."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dispatch.cli.services import services_path, write_services
from dispatch.db import AccountStore, Database
from dispatch.settings import Settings
from harness.daemons import ManagedMosquitto, ManagedRedis

REPO = Path(__file__).resolve().parents[2]


def yiwang(*argv: str, cwd: Path, stdin: str = "", **settings: str) -> subprocess.CompletedProcess:
    """The CLI as a newcomer runs it: no YIWANG_* variable but those given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIWANG_")}
    env.update(settings, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "dispatch.cli", *argv],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_command_beside_the_demo_uses_its_services_and_says_so(
    tmp_path: Path,
    redis_service: ManagedRedis,
    broker: ManagedMosquitto,
    database_url: str,
    prefix: str,
) -> None:
    demo = Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_service.url,
        key_prefix=prefix,
        database_url=database_url,
        mqtt_port=broker.port,
    )
    write_services(services_path(tmp_path / "var"), demo, "http://127.0.0.1:1")

    added = yiwang("users", "add", "newcomer", "--role", "auditor", "--password-stdin",
                   cwd=tmp_path, stdin="a long enough password\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert (
        f"yiwang: Redis {redis_service.url} (the running demo's), "
        f"broker 127.0.0.1:{broker.port} (the running demo's), PostgreSQL "
    ) in added.stderr
    db = Database(database_url, max_size=1)
    try:
        account = AccountStore(db).get("newcomer")
    finally:
        db.close()
    assert account is not None and account.role.value == "auditor"

    # A database given by the user wins: this one does not answer, and the command says so.
    elsewhere = "postgresql://yiwang@127.0.0.1:9/none"
    refused = yiwang("users", "list", cwd=tmp_path, YIWANG_DATABASE_URL=elsewhere)
    assert refused.returncode == 2
    assert f"PostgreSQL {elsewhere} (YIWANG_DATABASE_URL)" in refused.stderr
    assert "newcomer" not in refused.stdout
