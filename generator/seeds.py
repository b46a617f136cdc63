"""Stable seeds from text: the one place that turns names and numbers into seeds.

Never Python's hash() (salted per process). Each caller keeps its own text, separator, hash and
bits, because its seeds are pinned: a change would change every library's MIDI and WAV bytes.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np


def stable_seed(*parts: object, sep: str = "/", bits: int = 63, byteorder: Literal["big", "little"] = "big",
                algorithm: str = "sha256") -> int:
    """The first 64 bits of hash(sep.join(parts)), shifted down to `bits` bits."""
    assert 1 <= bits <= 64, bits
    text = sep.join(map(str, parts))
    digest = hashlib.new(algorithm, text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], byteorder) >> (64 - bits)


def stable_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from text, so dither is identical on every re-run of the same track."""
    return np.random.default_rng(stable_seed(*parts, sep="\x1f", bits=64, byteorder="little"))
