"""Start-up of the `gridsvc` command, as a user runs it (a fresh interpreter every time):
`gridsvc --help`, the help of sub-commands, `gridsvc users list` and `gridsvc cells validate`
of the demo's first community, each beside the floor a user compares it to, `python -c pass`
(interpreter start). Best and median of BENCH_REPEAT (10) runs; the ratio is median over the
floor's median.

The database is the embedded cluster's (a fresh `gridsvc_bench_cli` database holding the demo
street), reached the way a user's command reaches it: GRIDSVC_DATABASE_URL unset, so every
command checks that the cluster runs and the database exists and is migrated.
`--old PATH` also times another checkout of gridsvc (e.g. one made with
``git archive COMMIT | tar -x -C PATH``) with the same Python, database and secrets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import fresh_database, machine
from gridsvc.settings import PROJECT_ROOT, get_settings

REPEAT = int(os.environ.get("BENCH_REPEAT", "10"))
DATABASE = "gridsvc_bench_cli"


def _load_demo(url: str) -> str:
    """The demo street (as `gridsvc serve` loads it) in the database; its first community."""
    from gridsvc.bootstrap import ensure_demo

    engine = create_engine(url)
    with Session(engine) as session:
        ensure_demo(session, say=lambda *_: None)
        session.commit()
        first = session.scalar(text("SELECT code FROM community ORDER BY code LIMIT 1"))
        cells = session.scalar(
            text(
                "SELECT count(*) FROM cell JOIN community m ON m.id = cell.community_id "
                "WHERE m.code = :c AND cell.kind = 'general'"
            ),
            {"c": first},
        )
    engine.dispose()
    print(f"demo street loaded; first community {first}, {cells} cells")
    return str(first)


def _environment(root: Path) -> dict[str, str]:
    """The environment of one checkout's commands: this checkout's cluster, bench database
    and secrets, whichever code runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDSVC_")}
    settings = get_settings()
    env.update(
        PYTHONPATH=str(root),
        COLUMNS="100",
        GRIDSVC_VAR_DIR=str(settings.app.var_dir),
        GRIDSVC_EMBEDDED_DIR=str(settings.db.embedded_dir),
        GRIDSVC_EMBEDDED_DB_NAME=DATABASE,
    )
    bench_url = os.environ.get("GRIDSVC_BENCH_DATABASE_URL")
    if bench_url:
        env["GRIDSVC_DATABASE_URL"] = bench_url
    return env


def _times(argv: list[str], env: dict[str, str], cwd: Path) -> list[float]:
    """Wall-clock seconds of REPEAT runs of a command (after one unmeasured run)."""
    out = []
    for i in range(REPEAT + 1):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
        took = time.perf_counter() - start
        if done.returncode not in (0, 2):  # 2: `cells validate` found problems
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
        if i:
            out.append(took)
    return out


def main() -> None:
    """Load the demo into the bench database and time the commands."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="another gridsvc checkout to time as well")
    args = parser.parse_args()
    url = fresh_database(DATABASE)
    community = _load_demo(url)
    print(machine(), f"load average {os.getloadavg()[0]:.1f}, {REPEAT} runs each")
    python = sys.executable
    floor = _times([python, "-c", "pass"], dict(os.environ), PROJECT_ROOT)
    print(
        f"{'python -c pass':42s} best {min(floor) * 1000:5.0f} ms, median "
        f"{statistics.median(floor) * 1000:5.0f} ms"
    )
    commands = [
        ["--help"],
        ["users", "--help"],
        ["users", "list", "--help"],
        ["cells", "validate", "--help"],
        ["users", "list"],
        ["cells", "validate", community],
    ]
    checkouts = [("new", PROJECT_ROOT)] + ([("old", args.old.resolve())] if args.old else [])
    for label, root in checkouts:
        env = _environment(root)
        where = subprocess.run(
            [python, "-c", "import gridsvc; print(gridsvc.__file__)"],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"-- {label}: {where}")
        for command in commands:
            seconds = _times([python, "-m", "gridsvc.cli", *command], env, root)
            ratio = statistics.median(seconds) / statistics.median(floor)
            print(
                f"{'gridsvc ' + ' '.join(command):42s} best {min(seconds) * 1000:5.0f} ms, "
                f"median {statistics.median(seconds) * 1000:5.0f} ms, {ratio:5.1f} × python -c pass"
            )


if __name__ == "__main__":
    main()
