"""Metadata chunks of a RIFF WAVE file: LIST/INFO, BWF `bext` (EBU Tech 3285 v2) and any other.

soundfile writes the audio; `put_chunks` then rebuilds the file around its `data` chunk, which it
copies byte for byte: chunks of the ids given are replaced (a LIST of type INFO counts as id
'INFO'), the new ones go before `data` (readers that stream stop at it), and the RIFF size is set
anew. Every chunk is padded to an even size, as RIFF wants. Files over 4 GiB (RF64) are refused:
a library's WAV is at most 10 minutes.
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

Chunk = tuple[bytes, bytes]  # (4-byte id, payload)
BEXT_SIZE = 602  # the fixed part, before CodingHistory
BEXT_TEXT = (("description", 256), ("originator", 32), ("originator_reference", 32),
             ("origination_date", 10), ("origination_time", 8))
LOUDNESS_FIELDS = ("loudness_value", "loudness_range", "max_true_peak_level", "max_momentary_loudness",
                   "max_short_term_loudness")
NOT_SET = 0x7FFF  # a bext v2 loudness field that was not measured


class RiffError(ValueError):
    """Bytes that are not a RIFF WAVE file gen can rewrite."""


def read_chunks(data: bytes) -> list[Chunk]:
    """The top-level chunks of a WAVE file, in order; a LIST chunk keeps its type in the payload."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RiffError("not a RIFF WAVE file")
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        ident, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if pos + 8 + size > len(data):
            raise RiffError(f"chunk {ident!r} runs past the end of the file")
        chunks.append((ident, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def _key(chunk: Chunk) -> bytes:
    ident, payload = chunk
    return payload[:4] if ident == b"LIST" else ident


def with_chunks(data: bytes, new: Iterable[Chunk]) -> bytes:
    """`data` (a WAVE file) with `new` in place of the chunks of the same ids, just before `data`."""
    new = list(new)
    replaced = {_key(c) for c in new}
    kept = [c for c in read_chunks(data) if _key(c) not in replaced]
    at = next((i for i, (ident, _) in enumerate(kept) if ident == b"data"), None)
    if at is None:
        raise RiffError("no data chunk")
    body = b"WAVE" + b"".join(_pack(c) for c in [*kept[:at], *new, *kept[at:]])
    if len(body) > 0xFFFFFFFF:
        raise RiffError("over 4 GiB: RF64 is not written")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def put_chunks(path: Path, new: Iterable[Chunk]) -> None:
    """Rewrite the WAVE file `path` in place with `new` (see with_chunks); callers write to a temp."""
    path = Path(path)
    path.write_bytes(with_chunks(path.read_bytes(), new))


def _pack(chunk: Chunk) -> bytes:
    ident, payload = chunk
    assert len(ident) == 4, ident
    return ident + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)


def info_chunk(fields: Mapping[str, str]) -> Chunk:
    """LIST/INFO from {'INAM': 'title', ...}: UTF-8, NUL-terminated; empty values left out."""
    parts = [_pack((key.encode("ascii"), value.encode("utf-8") + b"\0")) for key, value in fields.items() if value]
    return b"LIST", b"INFO" + b"".join(parts)


def read_info(payload: bytes) -> dict[str, str]:
    """A LIST/INFO payload back to {'INAM': 'title', ...}."""
    assert payload[:4] == b"INFO", payload[:4]
    found, pos = {}, 4
    while pos + 8 <= len(payload):
        ident, size = payload[pos:pos + 4].decode("ascii"), struct.unpack_from("<I", payload, pos + 4)[0]
        found[ident] = payload[pos + 8:pos + 8 + size].rstrip(b"\0").decode("utf-8")
        pos += 8 + size + (size & 1)
    return found


def bext_chunk(text: Mapping[str, str], loudness: Mapping[str, float | None], coding_history: str) -> Chunk:
    """A version 2 `bext`: ASCII text fields cut to their sizes, time reference 0, no UMID, loudness
    values in 1/100 units (NOT_SET where None or missing)."""
    head = b"".join(_ascii(text.get(name, ""), size) for name, size in BEXT_TEXT)
    levels = []
    for name in LOUDNESS_FIELDS:
        value = loudness.get(name)
        levels.append(NOT_SET if value is None else max(-32767, min(32766, round(value * 100))))
    fixed = head + struct.pack("<QH", 0, 2) + b"\0" * 64 + struct.pack("<5h", *levels) + b"\0" * 180
    assert len(fixed) == BEXT_SIZE, len(fixed)
    return b"bext", fixed + unicodedata.normalize("NFKD", coding_history).encode("ascii", "ignore")


def read_bext(payload: bytes) -> dict[str, object]:
    """A `bext` payload back to its fields (loudness values in dB/LU, None where not set)."""
    found: dict[str, object] = {}
    pos = 0
    for name, size in BEXT_TEXT:
        found[name] = payload[pos:pos + size].split(b"\0")[0].decode("ascii")
        pos += size
    found["time_reference"], found["version"] = struct.unpack_from("<QH", payload, pos)
    levels = struct.unpack_from("<5h", payload, pos + 10 + 64)
    found.update((name, None if v == NOT_SET else v / 100) for name, v in zip(LOUDNESS_FIELDS, levels))
    found["coding_history"] = payload[BEXT_SIZE:].split(b"\0")[0].decode("ascii")
    return found


def _ascii(value: str, size: int) -> bytes:
    """bext text is ASCII (accents folded: Café -> Cafe; other letters dropped), NUL-padded to its size."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore")
    return folded[:size].ljust(size, b"\0")
