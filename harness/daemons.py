"""Project-managed redis-server and mosquitto on private loopback ports.

`yiwang demo` and the test suite run the same configuration: Redis with an append-only file,
so acknowledged data survives a kill -9, and Mosquitto with a sized queue, so a lagging
subscriber is never acknowledged-then-dropped (the stock `max_queued_messages 1000` silently
discards QoS 1 messages once a subscriber falls behind). Mosquitto refuses anonymous clients:
its dynamic-security plugin holds the accounts, starting with an admin whose password is kept
beside the broker's files; `dispatch.broker_accounts` creates every other account through it.
With a certificate and key it also listens with TLS.
"""

from __future__ import annotations

import getpass
import glob
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devices.broker import BrokerLogin

# Shared with deploy/mosquitto.conf (docker-compose); a test keeps the two in step.
MOSQUITTO_QUEUE_SETTINGS = """\
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 0
persistent_client_expiration 7d
"""
# Shared with deploy/mosquitto.conf too: no anonymous client, one set of rules for all listeners.
MOSQUITTO_SECURITY_SETTINGS = """\
per_listener_settings false
allow_anonymous false
"""
# Shared with deploy/mosquitto.conf too: when the broker writes its sessions and queues to
# disk. A kill -9 loses what changed since the last write: every 5 s, that was all a
# session had queued meanwhile; after every 1,000 changes it is at most 999 messages, at the
# same publish rate (every 100 changes lost 50 of 2,550 but published 20-40 % slower).
# `yiwang bench persistence` measures it.
MOSQUITTO_PERSISTENCE_SETTINGS = """\
persistence true
autosave_on_changes true
autosave_interval 1000
"""
# Debian and Ubuntu put the plugin under the multiarch folder, the eclipse-mosquitto image not.
_DYNSEC_PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)


class ServiceError(RuntimeError):
    """A managed service that could not start; the message says what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require(binary: str, package: str) -> str:
    # Debian installs mosquitto in /usr/sbin, which is not on an ordinary user's PATH.
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        raise ServiceError(f"{binary} not found; install it with `apt-get install {package}`")
    return path


class ManagedService:
    """One daemon process on 127.0.0.1:port, with its files under `workdir`."""

    name = "service"
    binary = package = "service"  # the executable, and the Debian package that installs it
    ready_timeout_s = 15.0

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir.resolve()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def config(self) -> str:
        """The daemon's configuration file, written to `<name>.conf` before each start."""
        raise NotImplementedError

    def command(self, conf: Path) -> list[str]:
        raise NotImplementedError

    def executable(self) -> str:
        return _require(self.binary, self.package)

    def run_as(self) -> str | None:
        """The user the daemon runs as; None for whoever started us."""
        return None

    def start(self) -> None:
        conf = self.workdir / f"{self.name}.conf"
        conf.write_text(self.config())
        log = self.log_path.open("ab")
        # A session of its own: Ctrl-C in a terminal signals the whole foreground group, and the
        # daemons must outlive the workers that still write to them until we stop them in order.
        self.process = subprocess.Popen(
            [self.executable(), *self.command(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
            user=self.run_as(),
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise ServiceError(f"{self.name} exited with {self.process.returncode}:\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if self.ready(sock):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise ServiceError(
            f"{self.name} was not ready on port {self.port} in {self.ready_timeout_s:.0f} s"
        )

    def ready(self, sock: socket.socket) -> bool:
        """Whether the service answers on `sock`; an open port is enough by default."""
        return True

    def kill(self) -> None:
        """kill -9: the crash case, no chance to flush or say goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()


class ManagedRedis(ManagedService):
    name = "redis"
    binary = "redis-server"
    package = "redis-server"
    ready_timeout_s = 60.0  # replaying a large append-only file takes a while

    def __init__(
        self, workdir: Path, port: int | None = None, *, replica_of: int | None = None
    ) -> None:
        super().__init__(workdir, port)
        self.replica_of = replica_of  # the loopback port of the primary this one copies

    def ready(self, sock: socket.socket) -> bool:
        # Redis accepts connections while it replays its append-only file, answering -LOADING.
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def config(self) -> str:
        return (
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.workdir}\n"
            "appendonly yes\n"
            # Redis write()s the AOF before replying, so a kill -9 of Redis loses nothing it
            # acknowledged; everysec bounds what an OS crash could lose to one second.
            "appendfsync everysec\n"
            'save ""\n'
            "daemonize no\n"
            # A replica's first copy starts at once, not after 5 s of waiting for company.
            "repl-diskless-sync-delay 0\n"
            + (f"replicaof 127.0.0.1 {self.replica_of}\n" if self.replica_of else "")
        )

    def command(self, conf: Path) -> list[str]:
        return [str(conf)]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A server certificate (PEM, chain included) and its private key."""

    cert: Path
    key: Path


class ManagedMosquitto(ManagedService):
    name = binary = package = "mosquitto"
    admin_username = "admin"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        tls: TlsFiles | None = None,
        tls_port: int | None = None,
        persistence: str = MOSQUITTO_PERSISTENCE_SETTINGS,
    ) -> None:
        super().__init__(workdir, port)
        self.tls = tls
        self.persistence = persistence
        self.tls_port = (tls_port or free_port()) if tls else None

    @property
    def dynsec_file(self) -> Path:
        return self.workdir / "dynamic-security.json"

    @property
    def admin_password(self) -> str:
        """The dynamic-security admin's password, made on the first start and kept (0600)."""
        path = self.workdir / "admin.password"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def admin(self) -> BrokerLogin:
        return BrokerLogin("127.0.0.1", self.port, self.admin_username, self.admin_password)

    def start(self) -> None:
        if not self.dynsec_file.exists():
            subprocess.run(
                [
                    _require("mosquitto_ctrl", "mosquitto"),
                    "dynsec",
                    "init",
                    str(self.dynsec_file),
                    self.admin_username,
                    self.admin_password,
                ],
                check=True,
                capture_output=True,
            )
        super().start()

    def config(self) -> str:
        listeners = f"listener {self.port} 127.0.0.1\n"
        if self.tls is not None:
            listeners += (
                f"listener {self.tls_port} 127.0.0.1\n"
                f"certfile {self.tls.cert}\n"
                f"keyfile {self.tls.key}\n"
            )
        return (
            listeners
            + MOSQUITTO_SECURITY_SETTINGS
            + f"plugin {_dynsec_plugin()}\n"
            + f"plugin_opt_config_file {self.dynsec_file}\n"
            # Run as whoever started us: mosquitto started as root would switch to the
            # `mosquitto` user and could not write its persistence file in our directory.
            + f"user {getpass.getuser()}\n"
            + self.persistence
            + f"persistence_location {self.workdir}/\n"
            "sys_interval 2\n"
            "set_tcp_nodelay true\n" + MOSQUITTO_QUEUE_SETTINGS
        )

    def command(self, conf: Path) -> list[str]:
        return ["-c", str(conf)]


def _dynsec_plugin() -> str:
    for pattern in _DYNSEC_PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise ServiceError(
        "mosquitto_dynamic_security.so not found; install Mosquitto 2 with its plugins "
        "(`apt-get install mosquitto`)"
    )
