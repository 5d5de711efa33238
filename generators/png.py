"""PNG files and data URIs from uint8 pixel arrays, written with zlib only (no imaging library),
for the self-contained HTML reports and image grids."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

__all__ = ["data_uri", "png"]


def png(pixels: np.ndarray) -> bytes:
    """A PNG file of uint8 pixels [H, W] (grey) or [H, W, 3] (RGB)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    rows = pixels.reshape(height, -1)
    raw = b"".join(b"\x00" + rows[r].tobytes() for r in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def data_uri(pixels: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png(pixels)).decode("ascii")
