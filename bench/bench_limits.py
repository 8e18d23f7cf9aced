"""Bounded work for hostile uploads: time and peak memory over idle of each refusal.

Each case runs in a fresh subprocess: the readers are imported and the file is written, the
peak RSS is reset (``/proc/self/clear_refs``), then the file is read as the upload routes read
it; the figure is the peak RSS (VmHWM) minus the RSS just before the read. ``--old`` runs the
same cases against another checkout (``--old PATH``) to compare.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "shapefile zip, 1 GiB .prj (1 MB upload)": "prj_bomb",
    "shapefile zip, .dbf header lies (200 MiB)": "dbf_liar",
    "XLSX, 300 MB shared string (0.3 MB upload)": "xlsx_bomb",
    "XLSX, shared strings just under the part limit": "xlsx_at_limit",
    "GeoJSON, 10^6-vertex building": "million_vertices",
    "GeoJSON, 200k nested arrays": "nested",
}

_CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests import bombs
from geodata.readers import read_features, read_table
import geopandas, openpyxl  # noqa: F401  (imported before the idle figure)

case, folder = sys.argv[2], Path(sys.argv[3])
MIB, GIB = 1024 ** 2, 1024 ** 3
def polygon(n):
    import math
    ring = [[round(118.9 + 0.002 * math.cos(2 * math.pi * k / n), 7),
             round(32.1 + 0.002 * math.sin(2 * math.pi * k / n), 7)] for k in range(n)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
if case in ("prj_bomb", "dbf_liar"):
    parts = bombs.shapefile_members(folder)
    if case == "prj_bomb":
        parts.append(bombs.repeated("buildings.prj", GIB))
    else:
        liar = bombs.repeated("buildings.dbf", 200 * MIB)
        liar.declared_size = 100
        parts = [m for m in parts if not m.name.endswith(".dbf")] + [liar]
    path = folder / "upload.zip"
    path.write_bytes(bombs.write_zip(parts))
    read = lambda: read_features(path)
elif case == "xlsx_bomb":
    path = folder / "roster.xlsx"
    path.write_bytes(bombs.shared_strings_bomb([["姓名"], ["张三"]], 300 * 1000 * 1000))
    read = lambda: read_table(path)
elif case == "xlsx_at_limit":
    # 16 MiB of shared strings that compress 1.3:1 (random letters), in 50-letter strings:
    # the largest workbook part accepted, parsed in full.
    import base64, os
    text = base64.b64encode(os.urandom(12 * MIB))
    head = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
    body = b"".join(b"<si><t>" + text[i:i + 50] + b"</t></si>" for i in range(0, len(text) - 50, 50))
    data = head + body[: 16 * MIB - 4096 - len(head)].rsplit(b"<si>", 1)[0] + b"</sst>"
    path = folder / "roster.xlsx"
    path.write_bytes(bombs.write_zip(
        [*bombs.workbook_parts([["姓名"], ["张三"]]), bombs.deflated(data, "xl/sharedStrings.xml")]))
    read = lambda: read_table(path)
elif case == "million_vertices":
    path = folder / "b.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "f1", "properties": {}, "geometry": polygon(1_000_000)}]}))
    read = lambda: read_features(path)
else:
    path = folder / "deep.geojson"
    path.write_bytes(bombs.nested_geojson(200_000))
    read = lambda: read_features(path)

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
idle = status("VmRSS:")
Path("/proc/self/clear_refs").write_text("5")
started = time.perf_counter()
try:
    read()
    outcome = "accepted"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {str(exc)[:140]}"
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_over_idle": status("VmHWM:") - idle,
                  "upload_bytes": path.stat().st_size, "outcome": outcome}))
"""


def run(case: str, root: Path, folder: Path) -> dict:
    """One case in a fresh interpreter, with the code of `root`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), case, str(folder)],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print one line per case."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old", type=Path, help="another checkout to measure as well")
    parser.add_argument("--only", help="run only cases whose key contains this")
    args = parser.parse_args()
    import tempfile

    roots = [("new", ROOT)] + ([("old", args.old)] if args.old else [])
    with tempfile.TemporaryDirectory() as tmp:
        for label, case in CASES.items():
            if args.only and args.only not in case:
                continue
            for name, root in roots:
                r = run(case, root, Path(tmp) / f"{name}-{case}")
                if "error" in r:
                    print(f"{name:3} | {label}: failed {r['error']}")
                    continue
                print(
                    f"{name:3} | {label}: {r['seconds']:.2f} s, peak "
                    f"{r['peak_over_idle'] / 2**20:.0f} MiB over idle, upload "
                    f"{r['upload_bytes'] / 2**20:.2f} MiB → {r['outcome']}"
                )


if __name__ == "__main__":
    main()
