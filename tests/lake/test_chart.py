"""A chart of a real series: a valid, non-empty PNG of the expected size."""

from __future__ import annotations

import struct
import zlib
from datetime import date
from pathlib import Path

from lake.chart import HEIGHT_PX, WIDTH_PX, chart
from lake.local_engine import LocalEngine

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the signature and its CRC."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert zlib.crc32(kind + body) == crc
    width, height = struct.unpack(">II", body[:8])
    return width, height


def test_chart_of_a_real_series(real_engine: LocalEngine, tmp_path: Path) -> None:
    output = tmp_path / "aapl.png"
    data = chart(real_engine, "AAPL", date(2012, 1, 1), date(2012, 12, 31), output)
    assert len(data.ts) > 200
    assert data.crosses and data.anomalies, "2012 AAPL has crosses and > 5 % moves to mark"
    raw = output.read_bytes()
    assert png_size(raw) == (WIDTH_PX, HEIGHT_PX)
    assert raw.endswith(b"IEND\xaeB`\x82")
    assert len(raw) > 20_000, "a plot with lines and markers, not a blank canvas"
