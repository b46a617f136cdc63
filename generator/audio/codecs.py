"""File formats of export: PCM WAV/FLAC via soundfile, CBR MP3 via pedalboard, ID3 tags via mutagen."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generator import __version__
from generator.audio.dsp import quantise

if TYPE_CHECKING:
    from generator.library.export import TrackInfo


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, bits: int, rng: np.random.Generator) -> None:
    import soundfile as sf

    fmt = "FLAC" if path.suffix == ".flac" else "WAV"
    sf.write(str(path), quantise(audio, bits, rng), sample_rate, subtype=f"PCM_{bits}", format=fmt)


def write_mp3(path: Path, audio: np.ndarray, sample_rate: int, kbps: int) -> None:
    """CBR MP3 via pedalboard's bundled LAME.

    Why not the ffmpeg CLI: measured here on a 2-minute 48 kHz stereo mix at 320 kbps CBR (3 runs),
    pedalboard took 1.45-1.57 s, ffmpeg (raw float piped to libmp3lame) 1.90-1.99 s. ffprobe reads
    the same duration back from both (120.024 s: it counts whole frames and does not subtract the
    encoder delay, so it over-reads by at most 47 ms at 48 kHz), both decode to exactly the input
    length, and pedalboard's LAME header gives mutagen the exact length (ffmpeg's: +24 ms). It needs
    no subprocess and no external binary.
    """
    from pedalboard.io import AudioFile

    with AudioFile(str(path), "w", sample_rate, audio.shape[1], quality=str(kbps)) as handle:
        handle.write(np.clip(audio, -1.0, 1.0).T)  # pedalboard takes (channels, frames)


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
