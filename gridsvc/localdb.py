"""The embedded default database: a private PostGIS cluster under ``var/pg``.

With no ``GRIDSVC_DATABASE_URL`` gridsvc creates, starts and stops its own PostgreSQL cluster
using the operating system's PostgreSQL + PostGIS binaries. It listens on 127.0.0.1 only, on a
free port, with a generated password. PostgreSQL refuses to run as root, so when gridsvc runs as
root the server processes run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gridsvc.errors import EmbeddedDatabaseError

log = logging.getLogger(__name__)

#: The Debian packages that provide what the embedded cluster needs.
DEBIAN_PACKAGES = "postgresql-15 postgresql-15-postgis-3"
_SERVER_USER = "postgres"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name) or [0])


def find_pg_bin(
    configured: Path | None = None,
    roots: tuple[Path, ...] = (Path("/usr/lib/postgresql"),),
    search_path: bool = True,
) -> Path:
    """The folder holding initdb, pg_ctl and postgres, or an error naming the package to install."""
    candidates: list[Path] = []
    if configured:
        candidates.append(Path(configured))
    pg_config = shutil.which("pg_config") if search_path else None
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
            candidates.append(Path(out))
    for root in roots:
        candidates += sorted(root.glob("*/bin"), key=_version_key, reverse=True)
    for folder in candidates:
        if all((folder / exe).exists() for exe in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise EmbeddedDatabaseError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. "
        f"Install them with: sudo apt-get install -y {DEBIAN_PACKAGES} "
        "(or set GRIDSVC_DATABASE_URL to an existing PostGIS database)."
    )


def check_postgis(bin_dir: Path) -> None:
    """Raise unless the PostGIS extension is installed for this PostgreSQL version."""
    share = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    major = re.search(r"(\d+)", share)
    version = major.group(1) if major else "15"
    controls = list(Path("/usr/share/postgresql").glob(f"{version}/extension/postgis.control"))
    if not controls:
        raise EmbeddedDatabaseError(
            f"PostGIS is not installed for PostgreSQL {version}. "
            f"Install it with: sudo apt-get install -y postgresql-{version}-postgis-3"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Credentials:
    """How to reach the embedded cluster; kept in var/pg.json (mode 600)."""

    user: str
    password: str
    port: int


class EmbeddedCluster:
    """A PostgreSQL + PostGIS cluster in a local folder, managed with initdb/pg_ctl."""

    def __init__(self, data_dir: Path, db_name: str = "gridsvc", bin_dir: Path | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.db_name = db_name
        self._bin_dir_setting = bin_dir
        self.credentials_file = self.data_dir.with_name(self.data_dir.name + ".json")
        self.lock_file = self.data_dir.with_name(self.data_dir.name + ".lock")
        self.log_file = self.data_dir.with_name(self.data_dir.name + ".log")

    # -- helpers -------------------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        """The PostgreSQL binaries in use."""
        return find_pg_bin(self._bin_dir_setting)

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program, as ``postgres`` when we are root."""
        kwargs: dict[str, object] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        if self._as_root:
            entry = pwd.getpwnam(_SERVER_USER)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            env["HOME"] = entry.pw_dir
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            env=env,
            cwd=str(self.data_dir.parent),
            **kwargs,  # type: ignore[arg-type]
        )
        if check and result.returncode != 0:
            raise EmbeddedDatabaseError(
                f"{Path(args[0]).name} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _chown_for_server(self, path: Path) -> None:
        if self._as_root:
            entry = pwd.getpwnam(_SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def credentials(self) -> Credentials:
        """The stored user, password and port (the cluster must have been initialised)."""
        if not self.credentials_file.exists():
            raise EmbeddedDatabaseError(
                f"the embedded database at {self.data_dir} is not initialised; run `gridsvc db up`"
            )
        return Credentials(**json.loads(self.credentials_file.read_text()))

    def _save_credentials(self, creds: Credentials) -> None:
        self.credentials_file.write_text(json.dumps(creds.__dict__))
        self.credentials_file.chmod(0o600)

    # -- state -----------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        """True once initdb has run here."""
        return (self.data_dir / "PG_VERSION").exists() and self.credentials_file.exists()

    def is_running(self) -> bool:
        """True when the cluster's postmaster is up."""
        if not self.initialised:
            return False
        status = self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"], False
        )
        return status.returncode == 0

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of a database in this cluster."""
        creds = self.credentials()
        return (
            f"postgresql+psycopg://{creds.user}:{creds.password}@127.0.0.1:{creds.port}/"
            f"{database or self.db_name}"
        )

    # -- lifecycle -------------------------------------------------------------------------
    def init(self) -> None:
        """Create the cluster folder with initdb (once)."""
        if self.initialised:
            return
        bin_dir = self.bin_dir
        check_postgis(bin_dir)
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedDatabaseError(
                f"{self.data_dir} exists but holds no gridsvc cluster; move it away or set "
                "GRIDSVC_EMBEDDED_DIR to another folder"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._chown_for_server(self.data_dir)
        if self._as_root:
            probe = self._run(["test", "-w", str(self.data_dir)], check=False)
            if probe.returncode != 0:
                raise EmbeddedDatabaseError(
                    f"the `postgres` user cannot reach {self.data_dir} (a parent folder is not "
                    "readable by other users); set GRIDSVC_EMBEDDED_DIR to a folder under /var/tmp"
                )
        creds = Credentials(user="gridsvc", password=secrets.token_urlsafe(24), port=_free_port())
        pwfile = self.data_dir.with_name(self.data_dir.name + ".pwfile")
        pwfile.write_text(creds.password + "\n")
        pwfile.chmod(0o600)
        self._chown_for_server(pwfile)
        try:
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    creds.user,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        except EmbeddedDatabaseError:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "fsync = on\n"
                "shared_buffers = '256MB'\n"
                "max_connections = 100\n"
                # JIT compiles for 0.2 s before big spatial queries and never pays back here.
                "jit = off\n"
            )
        self._save_credentials(creds)
        log.info("initialised embedded PostGIS cluster in %s", self.data_dir)

    def start(self) -> bool:
        """Initialise if needed and start; returns True when this call started the server."""
        with self._locked():
            self.init()
            if self.is_running():
                return False
            creds = self.credentials()
            if _port_in_use(creds.port):
                creds.port = _free_port()
                self._save_credentials(creds)
            self.log_file.touch()
            self._chown_for_server(self.log_file)
            self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    f"-p {creds.port}",
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            )
            log.info("embedded PostGIS started on 127.0.0.1:%s", creds.port)
            return True

    def stop(self) -> bool:
        """Stop the server (fast shutdown); returns True when it was running."""
        with self._locked():
            if not self.is_running():
                return False
            self._run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
            )
            log.info("embedded PostGIS stopped")
            return True

    def ensure_database(self, name: str | None = None) -> str:
        """Create the database (with PostGIS) if it does not exist; returns its URL."""
        import psycopg

        name = name or self.db_name
        creds = self.credentials()
        dsn = f"host=127.0.0.1 port={creds.port} user={creds.user} password={creds.password}"
        # Usually it is there already: one connection says so (every CLI command asks).
        with (
            contextlib.suppress(psycopg.OperationalError),
            psycopg.connect(dsn + f" dbname={name}", autocommit=True) as conn,
        ):
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone():
                return self.url(name)
        with psycopg.connect(dsn + " dbname=postgres", autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(dsn + f" dbname={name}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database of this cluster if it exists."""
        import psycopg

        creds = self.credentials()
        dsn = f"host=127.0.0.1 port={creds.port} user={creds.user} password={creds.password}"
        with psycopg.connect(dsn + " dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def status(self) -> dict[str, object]:
        """A summary for `gridsvc db status`."""
        info: dict[str, object] = {"data_dir": str(self.data_dir), "initialised": self.initialised}
        if self.initialised:
            info["running"] = self.is_running()
            info["port"] = self.credentials().port
            info["url"] = self.url().replace(self.credentials().password, "***")
        return info


def _reachable_by_server_user(folder: Path) -> bool:
    """True when the `postgres` user can reach (traverse into) the folder's nearest existing part."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    entry = pwd.getpwnam(_SERVER_USER)
    probe = subprocess.run(
        ["test", "-x", str(existing)],
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=[],
        check=False,
    )
    return probe.returncode == 0


def embedded_cluster() -> EmbeddedCluster:
    """The cluster configured by the settings.

    As root, when the configured folder lies somewhere the `postgres` user cannot enter (a
    checkout under /root, say), the cluster goes to /var/tmp/gridsvc-<hash>/pg instead.
    """
    import hashlib

    from gridsvc.settings import get_settings

    db = get_settings().db
    folder = Path(db.embedded_dir).resolve()
    if os.geteuid() == 0 and not (folder / "PG_VERSION").exists():
        try:
            reachable = _reachable_by_server_user(folder)
        except KeyError:  # no postgres user yet: find_pg_bin will say what to install
            reachable = True
        if not reachable:
            digest = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
            fallback = Path("/var/tmp") / f"gridsvc-{digest}" / folder.name
            log.warning("%s is not reachable by the postgres user; using %s", folder, fallback)
            folder = fallback
    return EmbeddedCluster(folder, db.embedded_db_name, db.pg_bin_dir)
