"""The HA cluster (issue 17): `gridsvc cluster up` (etcd, three Patroni members, PgBouncer from
the Debian packages), gridsvc served against it with its replicas, and the failures it must
survive — the primary's postmaster killed, a replica killed, the primary cut off from etcd —
under a bounded load on loopback, with every acknowledged write checked afterwards.

One cluster for the module. Figures (seconds without writes/reads, write latency) go to
test-artifacts/cluster_failover.json; they are reported, not asserted."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import TWO_CELLS_ORIGIN, TWO_CELLS_SIZE, seed_two_cells

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not all(
            shutil.which(t) or Path(f"/usr/sbin/{t}").exists()
            for t in ("etcd", "patroni", "pgbouncer")
        ),
        reason="needs the Debian packages etcd-server, patroni and pgbouncer (scripts/dev setup)",
    ),
]

PASSWORD = "cluster-test-password"
COMMUNITY = "320102779001"
X, Y = TWO_CELLS_ORIGIN[0] + TWO_CELLS_SIZE / 2, TWO_CELLS_ORIGIN[1] + TWO_CELLS_SIZE / 2
LOOKUP = f"/api/v1/lookup?lon={X}&lat={Y}"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIGURES: dict[str, Any] = {}


def _free_base_port() -> int:
    """A base port whose 41 following ports are free on loopback."""
    for base in range(27000 + (os.getpid() % 50) * 100, 60000, 100):
        ports = [
            base + off for off in (*range(3), *range(10, 13), *range(20, 23), *range(30, 33), 40)
        ]
        free = True
        for port in ports:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    free = False
                    break
        if free:
            return base
    raise RuntimeError("no free port range")


def _gridsvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridsvc.cli", "cluster", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A cluster started with `gridsvc cluster up` in var/, stopped and deleted afterwards."""
    from gridsvc.cluster import LocalCluster
    from gridsvc.settings import PROJECT_ROOT

    base = _free_base_port()
    folder = PROJECT_ROOT / "var" / f"cluster-test-{os.getpid()}"
    args = ("--folder", str(folder), "--base-port", str(base))
    started = _gridsvc("up", *args)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "GRIDSVC_DATABASE_URL=" in started.stdout
        yield LocalCluster(folder, base)
    finally:
        stopped = _gridsvc("down", *args, "--delete")
        assert stopped.returncode == 0, stopped.stderr
        assert not folder.exists()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "cluster_failover.json").write_text(json.dumps(FIGURES, indent=2))


@pytest.fixture(scope="module")
def served(cluster: Any) -> Iterator[str]:
    """gridsvc (one uvicorn worker) on the cluster: the primary by the multi-host URL, the
    three members as replicas; signed in as `boss`. Yields the base URL."""
    from gridsvc.testing import serve_in_subprocess

    seed_two_cells(cluster.primary_url(), "320102779", COMMUNITY, PASSWORD)
    replicas = " ".join(cluster.member_url(i) for i in range(3))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDSVC_REPLICA_URLS", replicas)
        with serve_in_subprocess(cluster.primary_url()) as base:
            yield base


@pytest.fixture(scope="module")
def token(served: str) -> str:
    answer = httpx.post(
        f"{served}/api/v1/auth/token", data={"username": "boss", "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _on_primary(cluster: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    leader = cluster.leader()
    with psycopg.connect(cluster.dsn(leader)) as conn:
        return conn.execute(sql, params).fetchall()


def test_status_names_one_leader_and_a_synchronous_standby(cluster: Any) -> None:
    status = _gridsvc(
        "status", "--folder", str(cluster.root), "--base-port", str(cluster.base_port)
    )
    assert status.returncode == 0, status.stderr
    roles = sorted(m["role"] for m in cluster.members())
    assert roles == ["leader", "replica", "sync_standby"], roles
    assert "leader" in status.stdout and "sync_standby" in status.stdout
    # PgBouncer reaches the primary.
    with psycopg.connect(
        f"host=127.0.0.1 port={cluster.pgbouncer_port} user=gridsvc "
        f"password={cluster.password()} dbname=gridsvc"
    ) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)


def test_a_write_is_seen_at_once_by_its_writer_though_the_replicas_lag(
    cluster: Any, served: str, token: str
) -> None:
    """Replay paused on both replicas (their WAL still arrives, so synchronous commits go
    on): a new person is missing there, yet the writer, who carries the commit position,
    reads it at once; without the position the read lands on a lagging replica. Patroni is
    in maintenance mode meanwhile: it would resume a paused replay otherwise."""
    from gridsvc.db.engine import LSN_HEADER

    leader = cluster.leader()
    standbys = [i for i in range(3) if i != leader]
    cluster.patch_config({"pause": True})
    _wait_for("maintenance mode", lambda: all(m.get("pause") for m in _patroni_states(cluster)))
    for i in standbys:
        with psycopg.connect(cluster.dsn(i), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
    try:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=served, headers=auth, timeout=10) as client:
            made = client.post(
                "/api/v1/people",
                json={"name": "刚写入", "community": COMMUNITY, "phone": "13900000001"},
            )
            assert made.status_code == 201, made.text
            path = f"/api/v1/people/{made.json()['id']}"
            position = made.headers[LSN_HEADER]
            assert client.get(path).status_code == 200  # the cookie from the POST
        for i in standbys:  # the replicas really lack it
            with psycopg.connect(cluster.dsn(i)) as conn:
                row = conn.execute(
                    "SELECT 1 FROM person WHERE id = %s", (made.json()["id"],)
                ).fetchone()
                assert row is None, f"replica pg{i} is not behind"
        with httpx.Client(base_url=served, headers=auth, timeout=10) as fresh:
            # With the position: always the write (from the primary, or a replica that has it).
            pinned = [fresh.get(path, headers={LSN_HEADER: position}).status_code for _ in range(6)]
            assert pinned == [200] * 6, pinned
            # Without it, reads do land on the lagging replicas (a replica left out a few
            # seconds after a slow connection comes back), which do not have the person yet.
            deadline, unpinned = time.monotonic() + 15, []
            while 404 not in unpinned and time.monotonic() < deadline:
                unpinned.append(fresh.get(path).status_code)
                time.sleep(0.2)
            assert 404 in unpinned, unpinned
    finally:
        for i in standbys:
            with psycopg.connect(cluster.dsn(i), autocommit=True) as conn:
                conn.execute("SELECT pg_wal_replay_resume()")
        cluster.patch_config({"pause": False})
        _wait_for(
            "the end of maintenance",
            lambda: not any(m.get("pause") for m in _patroni_states(cluster)),
        )


def _patroni_states(cluster: Any) -> list[dict[str, Any]]:
    states = []
    for i in range(3):
        with urllib.request.urlopen(
            f"http://127.0.0.1:{cluster.rest_port(i)}/patroni", timeout=5
        ) as r:
            states.append(json.loads(r.read()))
    return states


@dataclass
class Load:
    """A writer and a reader against gridsvc, each recording (start, end, status)."""

    base: str
    token: str
    tag: str
    writes: list[tuple[float, float, int, str]] = field(default_factory=list)
    reads: list[tuple[float, float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _write(self) -> None:
        with httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=15
        ) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                name = f"{self.tag}-{n}"
                start = time.monotonic()
                try:
                    status = client.post(
                        "/api/v1/people",
                        json={"name": name, "community": COMMUNITY, "phone": f"139{n:08d}"},
                    ).status_code
                except httpx.TransportError:
                    status = 0
                self.writes.append((start, time.monotonic(), status, name))
                if status != 201:
                    time.sleep(0.05)

    def _read(self) -> None:
        with httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=15
        ) as client:
            while not self.stop.is_set():
                start = time.monotonic()
                try:
                    status = client.get(LOOKUP).status_code
                except httpx.TransportError:
                    status = 0
                self.reads.append((start, time.monotonic(), status))
                if status != 200:
                    time.sleep(0.05)

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        threads = [threading.Thread(target=self._write), threading.Thread(target=self._read)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(30)

    def acknowledged(self) -> list[str]:
        return [name for _, _, status, name in self.writes if status == 201]


def _longest_gap(ops: list[tuple[Any, ...]], ok: int, after: float) -> float:
    """Seconds of the longest stretch without a successful answer, from `after` on."""
    done = sorted(end for start, end, status, *_ in ops if status == ok and end >= after)
    marks = [after, *done]
    return max((b - a for a, b in itertools.pairwise(marks)), default=0.0)


def _wait_for(what: str, check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def _check_exactly_once(cluster: Any, load: Load) -> None:
    acknowledged = load.acknowledged()
    stored = dict(
        _on_primary(
            cluster,
            "SELECT name, count(*) FROM person WHERE name LIKE %s GROUP BY name",
            (f"{load.tag}-%",),
        )
    )
    missing = [name for name in acknowledged if stored.get(name) != 1]
    assert not missing, f"acknowledged but not stored exactly once: {missing[:10]}"
    assert len(acknowledged) > 10, len(acknowledged)


def test_the_primary_killed_fails_over_and_loses_no_acknowledged_write(
    cluster: Any, served: str, token: str
) -> None:
    old = cluster.wait_healthy()
    postmaster = int((cluster.root / f"pg{old}" / "postmaster.pid").read_text().split()[0])
    load = Load(served, token, "failover")
    with load.running():
        time.sleep(2)
        killed_at = time.monotonic()
        os.kill(postmaster, signal.SIGKILL)
        _wait_for("a new primary", lambda: cluster.leader() not in (None, old))
        _wait_for(
            "a write after the failover",
            lambda: any(s == 201 and t0 > killed_at for t0, _, s, _ in load.writes),
        )
        time.sleep(2)
    new = cluster.leader()
    assert new != old
    _check_exactly_once(cluster, load)
    before = [end - start for start, end, s, _ in load.writes if s == 201 and end < killed_at]
    FIGURES["primary_killed"] = {
        "writes_acknowledged": len(load.acknowledged()),
        "writes_refused": sum(1 for w in load.writes if w[2] != 201),
        "seconds_without_writes": round(_longest_gap(load.writes, 201, killed_at), 2),
        "seconds_without_reads": round(_longest_gap(load.reads, 200, killed_at), 2),
        "median_write_ms_before": round(1000 * sorted(before)[len(before) // 2], 1),
    }
    # The old primary comes back as a replica of the new one.
    cluster.wait_healthy()
    assert cluster.leader() == new


def test_a_replica_killed_costs_a_reader_at_most_one_retry(
    cluster: Any, served: str, token: str
) -> None:
    cluster.wait_healthy()
    leader = cluster.leader()
    victim = next(i for i in range(3) if i != leader)
    postmaster = int((cluster.root / f"pg{victim}" / "postmaster.pid").read_text().split()[0])
    load = Load(served, token, "replica-killed")
    with load.running():
        time.sleep(1.5)
        killed_at = time.monotonic()
        os.kill(postmaster, signal.SIGKILL)
        time.sleep(4)
    statuses = [status for _, _, status in load.reads]
    twice = [i for i in range(1, len(statuses)) if statuses[i] != 200 and statuses[i - 1] != 200]
    assert not twice, f"a reader failed twice in a row: {statuses}"
    assert statuses[-5:] == [200] * 5, statuses[-5:]
    _check_exactly_once(cluster, load)
    FIGURES["replica_killed"] = {
        "reads": len(statuses),
        "reads_refused": sum(1 for s in statuses if s != 200),
        "seconds_without_reads": round(_longest_gap(load.reads, 200, killed_at), 2),
    }
    cluster.wait_healthy()


def test_a_primary_cut_off_from_etcd_is_fenced_and_writes_move(
    cluster: Any, served: str, token: str
) -> None:
    """The primary's Patroni loses its etcd member (SIGSTOP: a network partition of that
    host). It demotes its PostgreSQL before its leader key expires; a synchronous standby
    takes over; the old primary accepts no write; gridsvc's writes go on, none lost."""
    old = cluster.wait_healthy()
    etcd = cluster.pid(f"etcd{old}")
    load = Load(served, token, "partition")
    try:
        with load.running():
            time.sleep(1.5)
            cut_at = time.monotonic()
            os.kill(etcd, signal.SIGSTOP)
            _wait_for("a new primary", lambda: cluster.leader() not in (None, old), 90)
            _wait_for(
                "a write on the new primary",
                lambda: any(s == 201 and t0 > cut_at + 1 for t0, _, s, _ in load.writes),
            )

            # Fenced: the old primary is a read-only standby now (or down), never a second
            # writer (a write there would wait for a synchronous standby that left it).
            def fenced() -> bool:
                try:
                    with psycopg.connect(cluster.dsn(old), autocommit=True) as conn:
                        return conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
                except psycopg.OperationalError:
                    return True

            _wait_for("the old primary fenced", fenced, 30)
            time.sleep(1)
        FIGURES["primary_partitioned"] = {
            "writes_acknowledged": len(load.acknowledged()),
            "seconds_without_writes": round(_longest_gap(load.writes, 201, cut_at), 2),
            "seconds_without_reads": round(_longest_gap(load.reads, 200, cut_at), 2),
        }
    finally:
        os.kill(etcd, signal.SIGCONT)
    _check_exactly_once(cluster, load)
    cluster.wait_healthy(120)
