"""A small PNG made in code, for the multimedia probe (no files, no imaging library).

The encoding follows the PNG specification (https://www.w3.org/TR/png-3/): the signature,
an IHDR chunk (8-bit truecolour), one IDAT chunk holding the zlib-compressed scanlines
(each prefixed with filter type 0), and IEND; every chunk carries its CRC-32.
"""

from __future__ import annotations

import base64
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A `width`×`height` PNG of one colour."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    row = b"\x00" + bytes(rgb) * width
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * height))
        + _chunk(b"IEND", b"")
    )


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


RED_SQUARE = solid_png(32, 32, (220, 20, 20))
