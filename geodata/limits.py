"""Bounds on the work one user's file may cause, checked before the work is done.

Zip archives (zipped shapefiles, XLSX workbooks) are checked from their central directory
before anything is inflated: member count, each member's size, the total unzipped size and the
compression ratio. Members are then read through a capped stream, so an archive whose headers
lie about a size cannot get past either. Coordinates are counted per geometry and per file.
Every refusal is a :class:`~geodata.errors.GeodataError` naming the file and the member,
feature or row.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from geodata.errors import GeodataError, InputTooLarge

__all__ = [
    "DEFAULT_LIMITS",
    "InputLimits",
    "check_coordinates",
    "check_geojson_text",
    "check_json_depth",
    "check_zip",
    "copy_member",
    "read_member",
]

KIB = 1024
MIB = 1024 * KIB
#: Members smaller than this are not judged by their compression ratio (tiny files of
#: repeated bytes compress extremely well and harm nobody).
_RATIO_FLOOR_BYTES = 1 * MIB


@dataclass(frozen=True)
class InputLimits:
    """Limits on one input file; gridsvc fills them from its settings (``GRIDSVC_MAX_*``)."""

    #: Sum of the declared sizes of every member of a zip archive, unzipped.
    max_unzipped_bytes: int = 512 * MIB
    #: One member of a zip archive, unzipped.
    max_zip_member_bytes: int = 256 * MIB
    #: Unzipped size over compressed size of a member (of 1 MiB or more).
    max_zip_ratio: float = 100.0
    #: Entries in a zip archive.
    max_zip_members: int = 1000
    #: A shapefile's small sidecar files (.prj, .cpg).
    max_sidecar_bytes: int = 64 * KIB
    #: One XML part of an XLSX workbook (a sheet, the shared strings), unzipped.
    max_workbook_part_bytes: int = 16 * MIB
    #: Coordinates of one geometry, and of all the geometries of one file.
    max_geometry_coordinates: int = 100_000
    max_file_coordinates: int = 5_000_000
    #: Nesting of arrays and objects in a JSON document.
    max_json_depth: int = 64


DEFAULT_LIMITS = InputLimits()


def _mib(size: float) -> str:
    return f"{size / MIB:.1f} MiB" if size >= MIB else f"{size / KIB:.0f} KiB"


def check_zip(
    path: Path,
    limits: InputLimits,
    *,
    part_limits: Sequence[tuple[str, int]] = (),
) -> list[zipfile.ZipInfo]:
    """The entries of a zip archive, refused (InputTooLarge) when its central directory
    declares more than ``limits`` allow; nothing is inflated.

    ``part_limits`` are (name suffix, bytes) pairs giving some members a tighter size limit
    (e.g. ``(".prj", 64 KiB)``); the first suffix that matches applies.
    """
    name = path.name
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise GeodataError(f"{name} is not a readable zip archive ({exc})") from exc
    if len(infos) > limits.max_zip_members:
        raise InputTooLarge(
            f"{name}: the archive holds {len(infos)} entries; the limit is {limits.max_zip_members}"
        )
    total = 0
    for info in infos:
        member = info.filename
        size = info.file_size
        cap = limits.max_zip_member_bytes
        for suffix, part_cap in part_limits:
            if member.lower().endswith(suffix):
                cap = min(cap, part_cap)
                break
        if size > cap:
            raise InputTooLarge(
                f"{name}: {member} unzips to {_mib(size)}; the limit for it is {_mib(cap)}"
            )
        if size >= _RATIO_FLOOR_BYTES and size > limits.max_zip_ratio * max(info.compress_size, 1):
            ratio = size / max(info.compress_size, 1)
            raise InputTooLarge(
                f"{name}: {member} is compressed {ratio:.0f}:1 ({_mib(info.compress_size)} → "
                f"{_mib(size)}); the limit is {limits.max_zip_ratio:.0f}:1"
            )
        total += size
        if total > limits.max_unzipped_bytes:
            raise InputTooLarge(
                f"{name}: the archive unzips to more than {_mib(limits.max_unzipped_bytes)} "
                "(the limit)"
            )
    return infos


def _capped_chunks(source: IO[bytes], cap: int, what: str) -> Iterable[bytes]:
    read = 0
    while chunk := source.read(MIB):
        read += len(chunk)
        if read > cap:
            raise InputTooLarge(f"{what} unzips to more than {_mib(cap)} (the limit)")
        yield chunk


_UNZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)


def read_member(path: Path, member: str, cap: int) -> bytes:
    """One member of a zip archive, read through a stream that stops at ``cap`` bytes."""
    what = f"{path.name}: {member}"
    try:
        with zipfile.ZipFile(path) as zf, zf.open(member) as source:
            return b"".join(_capped_chunks(source, cap, what))
    except InputTooLarge:
        raise
    except _UNZIP_ERRORS as exc:
        raise GeodataError(f"{what} cannot be unpacked ({exc})") from exc


def copy_member(path: Path, member: str, target: Path, cap: int) -> None:
    """Unzip one member to ``target`` through a stream that stops at ``cap`` bytes."""
    what = f"{path.name}: {member}"
    try:
        with zipfile.ZipFile(path) as zf, zf.open(member) as source, target.open("wb") as out:
            for chunk in _capped_chunks(source, cap, what):
                out.write(chunk)
    except InputTooLarge:
        target.unlink(missing_ok=True)
        raise
    except _UNZIP_ERRORS as exc:
        target.unlink(missing_ok=True)
        raise GeodataError(f"{what} cannot be unpacked ({exc})") from exc


def check_coordinates(
    geometries: Any,
    label: Callable[[int], str],
    limits: InputLimits,
    *,
    name: str | None = None,
) -> None:
    """Refuse a geometry with more than ``max_geometry_coordinates`` coordinates, or geometries
    with more than ``max_file_coordinates`` together; ``label(i)`` names geometry ``i``
    (e.g. "feature 3", "row 7") and ``name`` the file. The one coordinate rule of every
    import path (files and API payloads)."""
    import numpy as np  # here, not at the top: the settings import this module
    import shapely

    geoms = np.asarray(geometries, dtype=object)
    if len(geoms) == 0:
        return
    counts = shapely.get_num_coordinates(geoms)
    prefix = f"{name}: " if name else ""
    worst = int(np.argmax(counts))
    if counts[worst] > limits.max_geometry_coordinates:
        raise GeodataError(
            f"{prefix}{label(worst)}: {int(counts[worst])} coordinates; the limit per geometry "
            f"is {limits.max_geometry_coordinates}; simplify it (e.g. ST_Simplify, 0.1 m)"
        )
    total = int(counts.sum())
    if total > limits.max_file_coordinates:
        raise GeodataError(
            f"{prefix}{total} coordinates in all; the limit per file is "
            f"{limits.max_file_coordinates}; split the file or simplify its geometries"
        )


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: linear, no backtracking
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def check_json_depth(data: bytes, limits: InputLimits, *, name: str | None = None) -> None:
    """Refuse JSON nested deeper than ``max_json_depth`` (arrays and objects), before parsing.

    Python's parser fails with RecursionError near 1000 levels, and no GeoJSON needs more than
    a handful; the scan is linear (strings are skipped, so brackets inside text do not count).
    """
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limits.max_json_depth:
        return
    import numpy as np

    steps = np.frombuffer(brackets, dtype=np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1), dtype=np.int32)
    deepest = int(depth.max())
    if deepest > limits.max_json_depth:
        prefix = f"{name}: " if name else ""
        raise GeodataError(
            f"{prefix}the JSON is nested {deepest} levels deep; the limit is "
            f"{limits.max_json_depth} (GeoJSON needs fewer than 10)"
        )


#: A run of JSON text made only of numbers and arrays: the coordinates of one geometry (a
#: MultiPolygon's parts are one run; properties and keys interrupt runs).
_NUMERIC_RUN = re.compile(rb"[\[\]0-9.,eE+\- \t\r\n]{64,}")
_POSITION_ENDS = tuple(b"%d]" % d for d in range(10))


def _blank_strings(data: bytes) -> bytes:
    """The JSON text with every string's content blanked (offsets kept)."""
    return _JSON_STRING.sub(lambda m: b'"' + b" " * (len(m.group()) - 2) + b'"', data)


def check_geojson_text(data: bytes, limits: InputLimits, *, name: str | None = None) -> None:
    """Refuse GeoJSON text nested too deeply or with too many coordinates, before a parser
    builds it in memory (GDAL needs some 20 bytes of memory per byte of coordinates).

    Positions are counted in the text: a position ends with a digit and ``]``; one geometry's
    coordinates are one run of numbers and brackets. The count is exact for ordinary GeoJSON
    and only ever too low otherwise (then the count after reading still applies).
    """
    check_json_depth(data, limits, name=name)
    prefix = f"{name}: " if name else ""
    text = _blank_strings(data)
    total = 0
    for run in _NUMERIC_RUN.finditer(text):
        compact = run.group().translate(None, b" \t\r\n")
        count = sum(compact.count(end) for end in _POSITION_ENDS)
        if count > limits.max_geometry_coordinates:
            feature = data.count(b'"Feature"', 0, run.start()) - 1
            where = f"feature #{feature}" if feature >= 0 else "a geometry"
            raise GeodataError(
                f"{prefix}{where}: {count} coordinates; the limit per geometry is "
                f"{limits.max_geometry_coordinates}; simplify it (e.g. ST_Simplify, 0.1 m)"
            )
        total += count
    if total > limits.max_file_coordinates:
        raise GeodataError(
            f"{prefix}{total} coordinates in all; the limit per file is "
            f"{limits.max_file_coordinates}; split the file or simplify its geometries"
        )
