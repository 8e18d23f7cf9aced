"""Hostile files made in a fraction of a second: zip bombs, lying zip headers, XLSX workbooks
with a huge shared string, shapefiles with huge sidecars, deeply nested GeoJSON.

A highly compressible member is deflated once per 16 MiB block and the block is repeated (a
full flush between blocks makes every block's compressed bytes the same), so a 1 GiB member
costs one 16 MiB compression and a CRC pass. The zip is written by hand, so a header can lie.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

_BLOCK = 16 * 1024 * 1024


@dataclass
class Member:
    """One zip entry: its deflated bytes, CRC and the sizes its headers declare."""

    name: str
    deflated: bytes
    crc: int
    size: int
    declared_size: int | None = None  # what the headers claim (a lie when not None)


def deflated(data: bytes, name: str) -> Member:
    """A member holding `data`, honestly described."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return Member(name, c.compress(data) + c.flush(), zlib.crc32(data), len(data))


def repeated(
    name: str, size: int, *, byte: bytes = b" ", head: bytes = b"", tail: bytes = b""
) -> Member:
    """A member of `head`, then `size` bytes of `byte`, then `tail`, deflated by block repetition."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [c.compress(head), c.flush(zlib.Z_FULL_FLUSH)]
    block = byte * _BLOCK
    whole, rest = divmod(size, _BLOCK)
    if whole:
        compressed = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
        out.append(compressed * whole)
    crc = zlib.crc32(head)
    for _ in range(whole):
        crc = zlib.crc32(block, crc)
    tail_data = byte * rest + tail
    out.append(c.compress(tail_data) + c.flush())
    crc = zlib.crc32(tail_data, crc)
    return Member(name, b"".join(out), crc, len(head) + size + len(tail))


def write_zip(members: list[Member]) -> bytes:
    """A zip archive of deflated members (headers as each member declares them)."""
    buf = io.BytesIO()
    central = []
    for m in members:
        offset = buf.tell()
        name = m.name.encode()
        size = m.size if m.declared_size is None else m.declared_size
        buf.write(
            struct.pack(
                "<4s5H3L2H",
                b"PK\x03\x04",
                20,
                0x800,
                8,
                0,
                0x21,
                m.crc,
                len(m.deflated),
                size,
                len(name),
                0,
            )
        )
        buf.write(name)
        buf.write(m.deflated)
        central.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0x800,
                8,
                0,
                0x21,
                m.crc,
                len(m.deflated),
                size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    start = buf.tell()
    for entry in central:
        buf.write(entry)
    end = buf.tell()
    buf.write(
        struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), end - start, start, 0
        )
    )
    return buf.getvalue()


def shapefile_members(folder: Path, stem: str = "buildings") -> list[Member]:
    """The parts of a one-building shapefile (near 南京新街口) as honest zip members."""
    import geopandas as gpd
    import shapely

    gdf = gpd.GeoDataFrame(
        {"name": ["1栋"]},
        geometry=[shapely.box(118.7800, 32.0400, 118.7802, 32.0402)],
        crs="EPSG:4326",
    )
    path = folder / f"{stem}.shp"
    gdf.to_file(path, engine="pyogrio")
    return [
        deflated(p.read_bytes(), p.name)
        for p in sorted(folder.glob(f"{stem}.*"))
        if p.suffix in (".shp", ".shx", ".dbf", ".cpg")
    ]


def xlsx_members(rows: list[list[str]]) -> list[Member]:
    """The parts of a workbook of text cells (written by openpyxl) as honest zip members."""
    import zipfile

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    with zipfile.ZipFile(data) as zf:
        return [deflated(zf.read(name), name) for name in zf.namelist()]


def shared_strings_bomb(rows: list[list[str]], size: int) -> bytes:
    """An XLSX workbook of `rows` whose shared strings also hold one string of `size` bytes."""
    return write_zip([*workbook_parts(rows), shared_strings(size)])


def workbook_parts(rows: list[list[str]]) -> list[Member]:
    """The parts of a workbook of `rows` (openpyxl writes inline strings) that also declares a
    shared strings part, which openpyxl then parses whenever it opens the workbook."""
    out = []
    for m in xlsx_members(rows):
        if m.name == "[Content_Types].xml":
            text = zlib.decompress(m.deflated, -15).replace(
                b"</Types>",
                b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
            )
            m = deflated(text, m.name)
        out.append(m)
    return out


def shared_strings(size: int) -> Member:
    """A shared strings part holding one string of `size` bytes ("AAAA…")."""
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>'
    )
    return repeated("xl/sharedStrings.xml", size, byte=b"A", head=head, tail=b"</t></si></sst>")


def nested_geojson(depth: int) -> bytes:
    """A FeatureCollection whose one polygon's coordinates are nested `depth` arrays deep."""
    return (
        b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},'
        b'"geometry":{"type":"Polygon","coordinates":' + b"[" * depth + b"]" * depth + b"}}]}"
    )
