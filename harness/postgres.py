"""A project-managed PostgreSQL on a private loopback port, for the demo and the tests.

The cluster is created with initdb on first start and kept in `workdir/data`, so a kill -9 and
a restart find what was committed. PostgreSQL refuses to run as root; started by root, the
cluster belongs to the `postgres` account, in a folder of its own that account can reach (a
test's temporary folders are private to root).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

from harness.daemons import ManagedService, ServiceError

SUPERUSER = "yiwang"


def _bindir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "postgres").exists():
            return Path(candidate)
    found = shutil.which("postgres")
    if found is None:
        raise ServiceError("PostgreSQL not found; install it with `apt-get install postgresql`")
    return Path(found).parent


class ManagedPostgres(ManagedService):
    name = "postgres"
    ready_timeout_s = 60.0  # crash recovery replays the WAL before accepting connections

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.password = self._password()
        self.data_dir = self._data_dir()

    def _password(self) -> str:
        stored = self.workdir / "superuser.password"
        if not stored.exists():
            stored.write_text(secrets.token_urlsafe(18))
            stored.chmod(0o600)
        return stored.read_text().strip()

    def _data_dir(self) -> Path:
        if os.geteuid() != 0:
            return self.workdir / "data"
        pointer = self.workdir / "data.path"
        if pointer.exists():
            return Path(pointer.read_text().strip())
        home = Path(tempfile.mkdtemp(prefix="yiwang-postgres-"))
        account = pwd.getpwnam("postgres")
        os.chown(home, account.pw_uid, account.pw_gid)
        pointer.write_text(str(home / "data"))
        return home / "data"

    def run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def executable(self) -> str:
        return str(_bindir() / "postgres")

    def config(self) -> str:
        return "# settings are passed on the command line; the cluster lives in data/\n"

    def command(self, conf: Path) -> list[str]:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        return [
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=on",  # what the center committed must survive a kill -9
            "-c",
            "max_connections=200",
        ]

    def _initdb(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        pwfile = self.data_dir.parent / "initdb.pw"
        pwfile.write_text(self.password + "\n")
        user = self.run_as()
        if user is not None:
            account = pwd.getpwnam(user)
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        result = subprocess.run(
            [
                str(_bindir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            check=False,
            capture_output=True,
            text=True,
            user=user,
            cwd=self.data_dir.parent,
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise ServiceError(f"initdb failed:\n{result.stderr[-2000:]}")

    def ready(self, sock: socket.socket) -> bool:
        # The port opens while the server still recovers; only a real login says it is ready.
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database (copied from `template` if given); returns its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            clause = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{clause}')
        return self.database_url(name)

    def remove(self) -> None:
        """Stop and delete the cluster (the demo and tests keep nothing between runs)."""
        self.stop()
        shutil.rmtree(self.data_dir.parent if os.geteuid() == 0 else self.data_dir, True)
