"""A local highly available cluster from the Debian packages: etcd, Patroni and PgBouncer.

``gridsvc cluster up`` starts, on loopback ports from ``base_port``:

- three etcd members (the distributed configuration store Patroni elects its leader in);
- three Patroni members, each managing one PostgreSQL 15 + PostGIS server: one primary and two
  streaming replicas, ``synchronous_mode: true`` (a commit is acknowledged only once a replica
  has it, so a failover loses no acknowledged write);
- PgBouncer in front of the primary: Patroni's ``on_role_change`` callback points it at the new
  primary after a failover.

Each Patroni member talks only to its own etcd member (``use_proxies``), as if etcd ran on each
database host: cutting a member off its etcd is a network partition of that host.

Ports: etcd clients base+0..2, etcd peers base+10..12, PostgreSQL base+20..22, Patroni REST
base+30..32, PgBouncer base+40. Data, logs, configuration and pid files live in the folder
(var/cluster by default). Everything runs as the ``postgres`` user when started by root.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEMBERS = 3
SCOPE = "gridsvc"
DB_NAME = "gridsvc"
DB_USER = "gridsvc"
_SERVER_USER = "postgres"
DEFAULT_BASE_PORT = 25400


class ClusterError(RuntimeError):
    """The local cluster could not be started, reached or stopped."""


@dataclass
class LocalCluster:
    """The cluster in `root` (see the module docstring for the ports)."""

    root: Path
    base_port: int = DEFAULT_BASE_PORT
    pg_bin: Path = Path("/usr/lib/postgresql/15/bin")

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()  # the children run in it

    # -- layout --------------------------------------------------------------------------
    def etcd_port(self, i: int) -> int:
        """etcd member i's client port."""
        return self.base_port + i

    def pg_port(self, i: int) -> int:
        """PostgreSQL member i's port."""
        return self.base_port + 20 + i

    def rest_port(self, i: int) -> int:
        """Patroni member i's REST API port."""
        return self.base_port + 30 + i

    @property
    def pgbouncer_port(self) -> int:
        """PgBouncer's port (it always points at the primary)."""
        return self.base_port + 40

    @property
    def _secrets_file(self) -> Path:
        return self.root / "cluster.json"

    def password(self) -> str:
        """The database password of the gridsvc user (generated at the first `up`)."""
        if not self._secrets_file.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self._secrets_file.write_text(
                json.dumps({"password": secrets.token_urlsafe(18), "base_port": self.base_port})
            )
            self._secrets_file.chmod(0o600)
        return str(json.loads(self._secrets_file.read_text())["password"])

    # -- URLs for gridsvc ------------------------------------------------------------------
    def primary_url(self) -> str:
        """A libpq multi-host URL that finds whichever member is the primary now."""
        hosts = "&".join(f"host=127.0.0.1:{self.pg_port(i)}" for i in range(MEMBERS))
        return (
            f"postgresql+psycopg://{DB_USER}:{self.password()}@/{DB_NAME}"
            f"?{hosts}&target_session_attrs=read-write&connect_timeout=2"
        )

    def pgbouncer_url(self) -> str:
        """The primary through PgBouncer."""
        return (
            f"postgresql+psycopg://{DB_USER}:{self.password()}@127.0.0.1:{self.pgbouncer_port}"
            f"/{DB_NAME}?connect_timeout=2"
        )

    def member_url(self, i: int) -> str:
        """Member i directly (a replica, or the primary after a failover)."""
        return (
            f"postgresql+psycopg://{DB_USER}:{self.password()}@127.0.0.1:{self.pg_port(i)}"
            f"/{DB_NAME}?connect_timeout=2"
        )

    def dsn(self, i: int, dbname: str = DB_NAME) -> str:
        """A plain libpq DSN of member i (for psycopg)."""
        return (
            f"host=127.0.0.1 port={self.pg_port(i)} user={DB_USER} "
            f"password={self.password()} dbname={dbname} connect_timeout=2"
        )

    # -- processes ------------------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 (handed to the child)
        kwargs: dict[str, Any] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "ETCD"))}
        env["LC_ALL"] = "C.UTF-8"
        if os.geteuid() == 0:
            entry = pwd.getpwnam(_SERVER_USER)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            env["HOME"] = entry.pw_dir
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            env=env,
            start_new_session=True,
            **kwargs,
        )
        log.close()
        self._pid_file(name).write_text(str(proc.pid))

    def pid(self, name: str) -> int | None:
        """The pid of a started process (etcd0, patroni1, pgbouncer…) if it still runs."""
        try:
            pid = int(self._pid_file(name).read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        try:  # our own child (started in this process) that exited: reap it
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None
        except ChildProcessError:
            pass
        return pid

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(_SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- etcd ----------------------------------------------------------------------------
    def _start_etcd(self) -> None:
        peers = ",".join(f"e{i}=http://127.0.0.1:{self.base_port + 10 + i}" for i in range(MEMBERS))
        for i in range(MEMBERS):
            if self.pid(f"etcd{i}"):
                continue
            data = self.root / f"etcd{i}"
            data.mkdir(exist_ok=True)
            data.chmod(0o700)
            self._chown(data)
            peer = f"http://127.0.0.1:{self.base_port + 10 + i}"
            client = f"http://127.0.0.1:{self.etcd_port(i)}"
            self._spawn(
                f"etcd{i}",
                [
                    shutil.which("etcd") or "/usr/bin/etcd",
                    f"--name=e{i}",
                    f"--data-dir={data}",
                    f"--listen-client-urls={client}",
                    f"--advertise-client-urls={client}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster={peers}",
                    "--initial-cluster-state=new",
                    "--initial-cluster-token=gridsvc",
                    "--log-level=warn",
                ],
            )
        for i in range(MEMBERS):
            _wait(
                f"etcd member {i}", lambda i=i: _get(f"http://127.0.0.1:{self.etcd_port(i)}/health")
            )

    # -- Patroni ---------------------------------------------------------------------------
    def _patroni_config(self, i: int) -> dict[str, Any]:
        password = self.password()
        sock = self.root / "sock"
        # Patroni appends the action, the role and the scope.
        callback = f"/bin/sh {self.root / 'follow-primary.sh'} {self.pg_port(i)}"
        return {
            "scope": SCOPE,
            "name": f"pg{i}",
            "log": {"level": "WARNING"},
            "restapi": {
                "listen": f"127.0.0.1:{self.rest_port(i)}",
                "connect_address": f"127.0.0.1:{self.rest_port(i)}",
            },
            # Only this member's own etcd: losing it is losing the DCS (a partition).
            "etcd3": {"hosts": [f"127.0.0.1:{self.etcd_port(i)}"], "use_proxies": True},
            "bootstrap": {
                "dcs": {
                    "ttl": 10,
                    "loop_wait": 1,
                    "retry_timeout": 4,
                    "maximum_lag_on_failover": 1048576,
                    # A commit returns only once a replica has flushed it: nothing
                    # acknowledged is lost when the primary dies, and only a synchronous
                    # replica may be promoted.
                    "synchronous_mode": True,
                    # A primary whose PostgreSQL crashed is failed over at once instead of
                    # being restarted in place (it rejoins as a replica, rewound).
                    "primary_start_timeout": 0,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "wal_log_hints": "on",
                            "max_wal_senders": 10,
                            "max_replication_slots": 10,
                            "max_connections": 200,
                            "hot_standby_feedback": "on",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{self.pg_port(i)}",
                "connect_address": f"127.0.0.1:{self.pg_port(i)}",
                "data_dir": str(self.root / f"pg{i}"),
                "bin_dir": str(self.pg_bin),
                "pgpass": str(self.root / f"pg{i}.pgpass"),
                "authentication": {
                    "superuser": {"username": DB_USER, "password": password},
                    "replication": {"username": "replicator", "password": password},
                    "rewind": {"username": DB_USER, "password": password},
                },
                "parameters": {"unix_socket_directories": str(sock)},
                "pg_hba": [
                    "local all all trust",
                    "host replication replicator 127.0.0.1/32 scram-sha-256",
                    "host all all 127.0.0.1/32 scram-sha-256",
                ],
                "callbacks": {"on_role_change": callback, "on_start": callback},
            },
        }

    def _write_callback(self) -> None:
        """follow-primary.sh: Patroni's on_start/on_role_change callback. On the member that
        became the primary it points PgBouncer at that member's port and reloads PgBouncer,
        which closes its connections to the old primary. Shell, as Patroni runs it as the
        server user (who cannot run gridsvc's virtualenv)."""
        script = self.root / "follow-primary.sh"
        ini, pid = self.root / "pgbouncer.ini", self.root / "pgbouncer.pid"
        script.write_text(
            "#!/bin/sh\n"
            "# follow-primary.sh PORT ACTION ROLE SCOPE (written by gridsvc cluster up)\n"
            'case "$3" in master|primary) ;; *) exit 0 ;; esac\n'
            f'sed -i "s/^{DB_NAME} = .*/{DB_NAME} = host=127.0.0.1 port=$1 dbname={DB_NAME}/" '
            f"{ini}\n"
            f'[ -f {pid} ] && kill -HUP "$(cat {pid})" 2>/dev/null\n'
            "exit 0\n"
        )
        script.chmod(0o755)

    def _start_patroni(self) -> None:
        self._write_callback()
        (self.root / "sock").mkdir(exist_ok=True)
        self._chown(self.root / "sock")
        for i in range(MEMBERS):
            if self.pid(f"patroni{i}"):
                continue
            config = self.root / f"pg{i}.yml"
            config.write_text(json.dumps(self._patroni_config(i), indent=1))  # JSON is YAML
            config.chmod(0o600)
            self._chown(config)
            self._spawn(f"patroni{i}", [shutil.which("patroni") or "/usr/bin/patroni", str(config)])

    def members(self) -> list[dict[str, Any]]:
        """Patroni's view of the cluster (name, role, state, lag) from the first member that
        answers; [] when none does."""
        for i in range(MEMBERS):
            body = _get(f"http://127.0.0.1:{self.rest_port(i)}/cluster")
            if body:
                return list(json.loads(body).get("members", []))
        return []

    def leader(self) -> int | None:
        """The index of the member that is primary now (by its REST API), if any."""
        for i in range(MEMBERS):
            if _get(f"http://127.0.0.1:{self.rest_port(i)}/primary") is not None:
                return i
        return None

    def patch_config(self, change: dict[str, Any]) -> None:
        """Change the cluster-wide (DCS) settings through a member's REST API, as
        ``patronictl edit-config`` does: e.g. ``{"pause": True}`` (maintenance mode: Patroni
        leaves PostgreSQL alone) or ``{"synchronous_mode": False}``."""
        for i in range(MEMBERS):
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.rest_port(i)}/config",
                data=json.dumps(change).encode(),
                method="PATCH",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                continue
        raise ClusterError("no Patroni member accepted the configuration change")

    def wait_healthy(self, timeout: float = 120) -> int:
        """Wait for a primary and every replica streaming; returns the primary's index."""

        def ready() -> bool:
            for i in range(MEMBERS):
                if self.pid(f"patroni{i}") is None:
                    log = (self.root / f"patroni{i}.log").read_text(errors="replace")
                    raise ClusterError(f"Patroni member {i} stopped: {log[-1500:]}")
            states = self.members()
            return (
                len(states) == MEMBERS
                and all(m.get("state") in ("running", "streaming") for m in states)
                and any(m.get("role") == "sync_standby" for m in states)
                and self.leader() is not None
            )

        _wait("the Patroni cluster", ready, timeout)
        leader = self.leader()
        assert leader is not None
        return leader

    # -- PgBouncer -----------------------------------------------------------------------
    def point_pgbouncer_at(self, i: int) -> None:
        """Route PgBouncer's gridsvc database to member i (and reload it if it runs)."""
        ini = self.root / "pgbouncer.ini"
        userlist = self.root / "pgbouncer.users"
        userlist.write_text(f'"{DB_USER}" "{self.password()}"\n')
        userlist.chmod(0o600)
        tmp = ini.with_suffix(".tmp")
        tmp.write_text(
            "[databases]\n"
            f"{DB_NAME} = host=127.0.0.1 port={self.pg_port(i)} dbname={DB_NAME}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.pgbouncer_port}\n"
            f"unix_socket_dir = {self.root / 'sock'}\n"
            f"auth_type = scram-sha-256\nauth_file = {userlist}\n"
            "pool_mode = session\nmax_client_conn = 500\ndefault_pool_size = 40\n"
            "server_check_delay = 0\nserver_login_retry = 1\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        for path in (tmp, userlist):
            self._chown(path)
        tmp.replace(ini)
        pid = self.pid("pgbouncer")
        if pid:
            os.kill(pid, signal.SIGHUP)  # reload: connections to the old primary are closed

    def _start_pgbouncer(self, leader: int) -> None:
        self.point_pgbouncer_at(leader)
        if not self.pid("pgbouncer"):
            # In the foreground, logging to pgbouncer.log through _spawn.
            binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
            self._spawn("pgbouncer", [binary, str(self.root / "pgbouncer.ini")])
            _wait("PgBouncer", lambda: _listening(self.pgbouncer_port), 20)

    # -- the application database ------------------------------------------------------------
    def _ensure_database(self, leader: int) -> None:
        import psycopg

        with psycopg.connect(self.dsn(leader, "postgres"), autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)
            ).fetchone():
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        with psycopg.connect(self.dsn(leader), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        from gridsvc.db import migrate

        migrate.upgrade(self.member_url(leader))

    # -- commands --------------------------------------------------------------------------
    def up(self, timeout: float = 180) -> int:
        """Start whatever is not running, wait until healthy, create and migrate the
        database; returns the primary's index."""
        for tool in ("etcd", "patroni", "pgbouncer"):
            if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
                raise ClusterError(
                    f"{tool} is not installed: apt-get install patroni etcd-server pgbouncer"
                )
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        self.password()
        self._chown(self.root)
        self._chown(self._secrets_file)
        self._start_etcd()
        self._start_patroni()
        leader = self.wait_healthy(timeout)
        self._ensure_database(leader)
        self._start_pgbouncer(leader)
        return leader

    def down(self, *, delete: bool = False) -> None:
        """Stop PgBouncer, Patroni (which stops its PostgreSQL) and etcd; `delete` also
        removes the folder."""
        names = ["pgbouncer"] + [f"patroni{i}" for i in range(MEMBERS)]
        for name in names:
            self._signal(name, signal.SIGTERM)
        for name in names:
            self._wait_gone(name, 60)
        for i in range(MEMBERS):  # a postmaster Patroni did not get to stop
            pid_file = self.root / f"pg{i}" / "postmaster.pid"
            if pid_file.exists():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        for i in range(MEMBERS):
            self._signal(f"etcd{i}", signal.SIGCONT)  # a test may have paused one
            self._signal(f"etcd{i}", signal.SIGTERM)
        for i in range(MEMBERS):
            self._wait_gone(f"etcd{i}", 20)
        if delete:
            shutil.rmtree(self.root, ignore_errors=True)

    def _signal(self, name: str, sig: int) -> None:
        pid = self.pid(name)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)

    def _wait_gone(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pid(name) and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = self.pid(name)
        if pid:
            os.kill(pid, signal.SIGKILL)

    def status(self) -> dict[str, Any]:
        """Members, processes and the URLs to give gridsvc."""
        return {
            "folder": str(self.root),
            "members": self.members(),
            "processes": {
                name: self.pid(name)
                for name in [f"etcd{i}" for i in range(MEMBERS)]
                + [f"patroni{i}" for i in range(MEMBERS)]
                + ["pgbouncer"]
            },
            "GRIDSVC_DATABASE_URL": self.primary_url() if self._secrets_file.exists() else None,
            "GRIDSVC_REPLICA_URLS": " ".join(self.member_url(i) for i in range(MEMBERS))
            if self._secrets_file.exists()
            else None,
        }


def _get(url: str) -> str | None:
    """The body of a 200 answer, else None (no answer, another status)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode() if response.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _listening(port: int) -> bool:
    """True when something accepts TCP connections on the loopback port."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(what: str, check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise ClusterError(f"{what} did not become ready within {timeout:.0f} s")
