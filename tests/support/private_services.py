"""A RabbitMQ node and a PostgreSQL cluster of the test session's own, to stop and restart at will.

The machine's shared broker and database are never touched: these run on free loopback
ports from temporary directories and are stopped by their own PIDs.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.processes import free_port, wait_for_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT_S = 90.0


@dataclass
class PrivateBroker:
    """One isolated RabbitMQ node: its own node name, ports, cookie, mnesia and no plugins."""

    base: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    nodename: str = field(default_factory=lambda: f"herald-faults-{secrets.token_hex(3)}@localhost")
    # Nodes of one cluster share their cookie; a lone node has one of its own.
    cookie: str = field(default_factory=lambda: secrets.token_hex(16))
    # Where AMQP clients reach it: loopback, and the test hosts' bridge for a cluster.
    addresses: tuple[str, ...] = ("127.0.0.1",)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def __post_init__(self) -> None:
        home = self.base / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)
        (self.base / "enabled_plugins").write_text("[].\n")
        # An empty env file, so /etc/rabbitmq/rabbitmq-env.conf cannot rename this node.
        (self.base / "rabbitmq-env.conf").write_text("")
        listeners = "".join(
            f"listeners.tcp.{i} = {address}:{self.port}\n"
            for i, address in enumerate(self.addresses, start=1)
        )
        # guest may log in only over loopback unless told otherwise: the test hosts are not.
        remote = any(a != "127.0.0.1" for a in self.addresses)
        (self.base / "rabbitmq.conf").write_text(
            listeners + ("loopback_users = none\n" if remote else "")
        )

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.base / "home"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self) -> None:
        """Start the node (again, on the same mnesia directory) and wait until it serves."""
        self._log = open(self.base / "server.log", "ab")  # noqa: SIM115
        # A session of its own, so the whole node (shell, beam, helpers) dies with one signal.
        self.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env(),
            cwd=self.base,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, START_TIMEOUT_S, alive=lambda: self.is_running)
        self.ctl("await_startup", "--timeout", str(int(START_TIMEOUT_S)))

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Crash the node: SIGKILL to its process group, as a power cut would."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """Shut the node down cleanly."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # The node's helpers share its process group; make sure none outlives it.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self._log:
            self._log.close()
            self._log = None

    def ctl(self, *args: str) -> str:
        """Run rabbitmqctl against this node; returns its output."""
        done = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.nodename, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def fresh_vhost(self, vhost: str) -> str:
        """An empty virtual host for guest; returns its AMQP URL."""
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return self.amqp_url(vhost)

    def amqp_url(self, vhost: str, host: str = "127.0.0.1") -> str:
        return f"amqp://guest:guest@{host}:{self.port}/{vhost}"


def _postgres_user() -> str | None:
    """PostgreSQL refuses to run as root; as root, run it as the postgres account."""
    return "postgres" if os.geteuid() == 0 else None


@dataclass
class PrivatePostgres:
    """One PostgreSQL 15 cluster in a temporary directory, trust auth on a loopback port."""

    base: Path
    port: int = field(default_factory=free_port)
    # Listen addresses, and the network trusted besides loopback (the test hosts' bridge).
    addresses: tuple[str, ...] = ("127.0.0.1",)
    trusted_network: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def _run(self, *args: str) -> None:
        user = _postgres_user()
        command = [*(("runuser", "-u", user, "--") if user else ()), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {done.stdout}{done.stderr}")

    def init(self) -> None:
        user = _postgres_user()
        if user:
            account = pwd.getpwnam(user)
            os.chown(self.base, account.pw_uid, account.pw_gid)
        initdb = str(POSTGRES_BIN / "initdb")
        self._run(initdb, "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-N")
        if self.trusted_network:
            with open(self.data_dir / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {self.trusted_network} trust\n")

    def start(self) -> None:
        """Start the cluster (crash recovery included) and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses={','.join(self.addresses)} "
            # fsync only matters when the machine dies; a killed server loses nothing without it.
            "-c fsync=off -c max_connections=200"
        )
        pg_ctl = str(POSTGRES_BIN / "pg_ctl")
        log = str(self.base / "server.log")
        self._run(pg_ctl, "-D", str(self.data_dir), "-o", options, "-l", log, "-w", "start")

    def crash(self) -> None:
        """Stop at once without a checkpoint: the next start runs crash recovery."""
        self._stop("immediate")

    def stop(self) -> None:
        self._stop("fast")

    def _stop(self, mode: str) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        pg_ctl = str(POSTGRES_BIN / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def url(self, database: str, host: str = "127.0.0.1") -> str:
        return f"postgresql://postgres@{host}:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create a database, optionally as a copy of a template; returns its URL."""
        admin = create_engine(
            make_url(self.url("postgres")).set(drivername="postgresql+psycopg2"),
            isolation_level="AUTOCOMMIT",
        )
        try:
            with admin.connect() as conn:
                suffix = f' TEMPLATE "{template}"' if template else ""
                conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
        finally:
            admin.dispose()
        return self.url(name)


def _scratch_dir(prefix: str) -> Path:
    # Not under pytest's tmp dirs: those are private to root, and postgres must enter this one.
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def private_broker() -> Iterator[PrivateBroker]:
    """A RabbitMQ node owned by this test session, for scenarios that stop the broker."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        pytest.skip("rabbitmq-server is not installed")
    base = _scratch_dir("herald-faults-rabbitmq-")
    broker = PrivateBroker(base)
    try:
        broker.start()
        yield broker
    finally:
        broker.kill()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def running_postgres(prefix: str, **options: Any) -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster, initialised and started, crashed and removed after."""
    base = _scratch_dir(prefix)
    postgres = PrivatePostgres(base, **options)
    try:
        postgres.init()
        postgres.start()
        yield postgres
    finally:
        try:
            postgres.crash()
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster owned by this test session, for scenarios that stop the database."""
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    with running_postgres("herald-faults-postgres-") as postgres:
        yield postgres
