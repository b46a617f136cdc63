"""ID3 tags of a delivered MP3: the track's facts as players and libraries read them."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Protocol

from generator import __version__


class TrackInfo(Protocol):
    """What tagging reads of export.TrackInfo; a protocol, so this module needs no import of export."""

    track_id: str
    genre: str
    seed: int
    bpm: float | None
    key: str | None
    model: str
    recipe: str
    licence_note: str
    tags: tuple[str, ...]

_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*(#|b|♯|♭)?\s*(m|min|minor|maj|major)?\s*$")


def id3_key(key: str) -> str | None:
    """'A minor' -> 'Am', 'C# major' -> 'C#', as TKEY wants (at most 3 characters); None if unparsable."""
    match = _KEY_RE.match(key)
    if not match:
        return None
    note, accidental, mode = match.groups()
    accidental = {"♯": "#", "♭": "b"}.get(accidental or "", accidental or "")
    minor = (mode or "").lower() in ("m", "min", "minor")
    return f"{note.upper()}{accidental}{'m' if minor else ''}"


def _decibels(value: float) -> str:
    """'-14.02', or '' (tag left out) for the -inf/NaN that silence or a too-short track measures."""
    return f"{float(value):.2f}" if math.isfinite(float(value)) else ""


def tag_mp3(path: Path, info: TrackInfo, mastered: Any, duration_s: float, title: str) -> None:
    """ID3v2.3 tags (v2.4 is still unread by some desktop players); fields without a standard frame go to TXXX."""
    from mutagen.id3 import COMM, ID3, TBPM, TCON, TIT2, TKEY, TLEN, TSSE, TXXX

    tags = ID3()
    tags.add(TIT2(encoding=3, text=title))
    tags.add(TCON(encoding=3, text=info.genre))
    tags.add(TLEN(encoding=3, text=str(round(duration_s * 1000))))
    tags.add(TSSE(encoding=3, text=f"gen {__version__}"))
    if info.bpm is not None and math.isfinite(info.bpm):
        tags.add(TBPM(encoding=3, text=str(round(info.bpm))))
    if info.key:
        short = id3_key(info.key)
        if short:
            tags.add(TKEY(encoding=3, text=short))
    keywords = ", ".join(info.tags)
    tags.add(COMM(encoding=3, lang="eng", desc="", text=f"{keywords}. {info.licence_note}".strip(". ")))
    custom = {
        "TRACK_ID": info.track_id, "MODEL": info.model, "RECIPE": info.recipe, "SEED": str(info.seed),
        "LICENCE": info.licence_note, "KEYWORDS": keywords, "KEY": info.key or "",
        "INTEGRATED_LUFS": _decibels(mastered.integrated_lufs), "TRUE_PEAK_DBTP": _decibels(mastered.true_peak_dbtp),
    }
    for desc, text in custom.items():
        if text:
            tags.add(TXXX(encoding=3, desc=desc, text=text))
    tags.save(str(path), v2_version=3)
