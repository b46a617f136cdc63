"""A library's cover art: a PNG drawn from its name and seed alone, the same bytes on every run.

Flat colour bands (a posterised field of soft circles over a diagonal gradient, in two hues picked
from the hash of the name and seed) keep the PNG small enough to embed in every MP3 and WAV. The
PNG is encoded here (zlib at a fixed level, no timestamps) so no imaging library is needed.
"""

from __future__ import annotations

import colorsys
import struct
import zlib

import numpy as np

from generator.seeds import stable_rng

COVER_PX = 1400  # cover.png at the library's root: the smallest square most stores take
EMBED_PX = 600  # the copy inside every audio file
LEVELS = 7  # colour bands: few enough that rows compress to almost nothing


def cover_png(name: str, seed: int, size_px: int = COVER_PX) -> bytes:
    """The cover of library `name` with recipe seed `seed`, size_px square, as PNG bytes."""
    return png_bytes(cover_pixels(name, seed, size_px))


def cover_pixels(name: str, seed: int, size_px: int) -> np.ndarray:
    """(size_px, size_px, 3) uint8; any size draws the same picture."""
    rng = stable_rng("cover", name, int(seed))
    hue = rng.random()
    dark, light = (_rgb(hue, 0.55, 0.22), _rgb((hue + 0.08 + 0.15 * rng.random()) % 1.0, 0.45, 0.92))
    yy, xx = np.mgrid[0:size_px, 0:size_px] / max(size_px - 1, 1)  # (S, S) each, 0..1
    field = 0.55 * (xx + yy) / 2  # the diagonal gradient
    for _ in range(5):  # soft circles at drawn places
        cx, cy, radius, weight = rng.random(), rng.random(), 0.15 + 0.3 * rng.random(), 0.25 + 0.3 * rng.random()
        field += weight * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius ** 2))
    field = np.floor(np.clip(field / field.max(), 0, 1) * (LEVELS - 1) + 0.5) / (LEVELS - 1)  # (S, S) bands
    pixels = dark[None, None, :] + field[..., None] * (light - dark)[None, None, :]
    return np.round(pixels).astype(np.uint8)


def _rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value)) * 255.0


def png_bytes(pixels: np.ndarray) -> bytes:
    """8-bit RGB PNG of (H, W, 3) uint8 pixels: each row filtered 'Sub', one IDAT, no ancillary chunks."""
    height, width, channels = pixels.shape
    assert channels == 3 and pixels.dtype == np.uint8, (pixels.shape, pixels.dtype)
    sub = pixels.astype(np.int16)
    sub[:, 1:] -= pixels[:, :-1]  # 'Sub': each byte minus the one a pixel to its left
    rows = np.concatenate([np.ones((height, 1), np.uint8), (sub % 256).astype(np.uint8).reshape(height, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
            + chunk(b"IEND", b""))
