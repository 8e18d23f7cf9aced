"""A short run of the bench's load mix (bench/bench_load.py) against a live server: cell map
data, point lookup and incident intake at once, with zero errors and zero 5xx (no latency
asserted here; the figures live in bench/README.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from bench.bench_load import MIX, Site, prepare, run_mix, sign_in
from tests.conftest import scratch_database

SECONDS = 10
CONNECTIONS = 4


@pytest.fixture
def loaded_site(database_url: str) -> Iterator[tuple[str, str, Site]]:
    """The generated demo street in a scratch database, served by gridsvc."""
    from gridsvc.testing import serve_in_subprocess

    with scratch_database("gridsvc_load_smoke") as url:
        site = prepare(url)
        with serve_in_subprocess(url) as base:
            yield base, url, site


def test_load_mix_runs_without_errors(loaded_site: tuple[str, str, Site]) -> None:
    base, url, site = loaded_site
    engine = create_engine(url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM incident")).scalar_one()
    result = run_mix(base, sign_in(base), site, CONNECTIONS, SECONDS)
    print(f"\n{result.tool}, {result.connections} connections, {result.seconds:.0f} s")
    print(result.table())
    with engine.connect() as conn:
        after = conn.execute(text("SELECT count(*) FROM incident")).scalar_one()
    engine.dispose()
    # Every kind of the mix was exercised, and every request answered as expected.
    assert all(result.kinds[kind].latencies_ms for kind, _, _ in MIX)
    assert result.server_errors == 0
    assert result.errors == 0
    # Each accepted report was stored: the table grew by the answered intakes, plus at most
    # one per connection still in flight when the load stopped (answered after it).
    answered = len(result.kinds["intake"].latencies_ms)
    assert answered <= after - before <= answered + CONNECTIONS
