"""Tags of every delivered audio file, from one list of fields (`fields`), so they all agree.

- MP3: ID3v2.4 (UTF-8 text, TMOO and TDRC, which v2.3 lacks; every current player, DAW and stock
  site reads v2.4).
- WAV: RIFF LIST/INFO (what Windows, ffmpeg and most DAWs show), a BWF `bext` chunk (what broadcast
  and library tools read: description, originator, reference, date, loudness), an iXML chunk (BPM,
  key, mood, licence for asset managers) and the same ID3v2.4 tag as the MP3 in an `id3 ` chunk.
- FLAC stems: Vorbis comments and the picture block.

Every file carries the cover art and a version: full, 60/30/15 (cut-downs), loop, or stem:<role>.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from generator import __version__
from generator.audio.riff import bext_chunk, info_chunk, put_chunks


class TrackInfo(Protocol):
    """What tagging reads of export.TrackInfo; a protocol, so this module needs no import of export."""

    track_id: str
    title: str
    genre: str
    index: int
    seed: int
    bpm: float | None
    key: str | None
    model: str
    recipe: str
    licence_note: str
    tags: tuple[str, ...]
    mood: tuple[str, ...]
    description: str
    library: dict


@dataclass(frozen=True)
class FileTags:
    """What differs between the files of one track."""

    title: str  # 'Morning Light (30s)'
    version: str  # full | 60 | 30 | 15 | loop | stem:<role>
    duration_s: float
    integrated_lufs: float | None = None  # measured: the full mix, each cut-down and the loop (not stems)
    true_peak_dbtp: float | None = None  # of this file (an MP3's after decoding)


_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*(#|b|♯|♭)?\s*(m|min|minor|maj|major)?\s*$")
# Where each field goes in LIST/INFO (the ids ffmpeg, Windows and DAWs read).
INFO_IDS = {"title": "INAM", "artist": "IART", "album": "IPRD", "comment": "ICMT", "copyright": "ICOP",
            "genre": "IGNR", "year": "ICRD", "track_number": "ITRK", "keywords": "IKEY", "software": "ISFT",
            "description": "ISBJ"}


def id3_key(key: str) -> str | None:
    """'A minor' -> 'Am', 'C# major' -> 'C#', as TKEY wants (at most 3 characters); None if unparsable."""
    match = _KEY_RE.match(key)
    if not match:
        return None
    note, accidental, mode = match.groups()
    accidental = {"♯": "#", "♭": "b"}.get(accidental or "", accidental or "")
    minor = (mode or "").lower() in ("m", "min", "minor")
    return f"{note.upper()}{accidental}{'m' if minor else ''}"


def _decibels(value: float | None) -> str:
    """'-14.02', or '' (tag left out) for None and the -inf/NaN that silence or a too-short track measures."""
    return f"{float(value):.2f}" if value is not None and math.isfinite(float(value)) else ""


def fields(info: TrackInfo, file: FileTags) -> dict[str, str]:
    """Every tag of one file as text, '' where unknown (left out of the file)."""
    lib = info.library or {}
    keywords = ", ".join(info.tags)
    licence = info.licence_note + (f" ({lib['licence_url']})" if lib.get("licence_url") else "")
    comment = ". ".join(p.rstrip(".") for p in (info.description, f"Keywords: {keywords}" if keywords else "",
                                                f"Licence: {licence}") if p) + "."
    return {
        "title": file.title, "version": file.version, "artist": lib.get("artist") or "",
        "album": lib.get("album") or "", "composer": lib.get("composer") or "",
        "publisher": lib.get("publisher") or "", "copyright": lib.get("copyright") or "",
        "year": str(lib["year"]) if lib.get("year") else "", "genre": info.genre,
        "track_number": str(info.index + 1),
        "bpm": str(round(info.bpm)) if info.bpm is not None and math.isfinite(info.bpm) else "",
        "key": info.key or "", "mood": ", ".join(info.mood), "keywords": keywords,
        "description": info.description, "comment": comment, "licence": info.licence_note,
        "licence_url": lib.get("licence_url") or "", "track_id": info.track_id, "model": info.model,
        "recipe": info.recipe, "seed": str(info.seed), "software": f"gen {__version__}",
        "length_ms": str(round(file.duration_s * 1000)),
        "integrated_lufs": _decibels(file.integrated_lufs), "true_peak_dbtp": _decibels(file.true_peak_dbtp),
    }


def tag_file(path: Path, info: TrackInfo, file: FileTags, cover_png: bytes | None) -> None:
    """Write the tags of `path` by its suffix (.mp3, .wav, .flac); the audio stays as it is."""
    values = fields(info, file)
    suffix = Path(path).suffix.lower()
    if suffix == ".mp3":
        id3_tag(values, cover_png).save(str(path), v2_version=4)
    elif suffix == ".wav":
        put_chunks(path, wav_chunks(path, values, cover_png))
    elif suffix == ".flac":
        _tag_flac(path, values, cover_png)
    else:
        raise ValueError(f"{path}: no tags for {suffix!r} files")


def id3_tag(values: dict[str, str], cover_png: bytes | None) -> Any:
    """The ID3v2.4 tag: standard frames where one exists, TXXX for the rest."""
    from mutagen.id3 import (
        APIC,
        COMM,
        ID3,
        TALB,
        TBPM,
        TCOM,
        TCON,
        TCOP,
        TDRC,
        TIT2,
        TIT3,
        TKEY,
        TLEN,
        TMOO,
        TPE1,
        TPE2,
        TPUB,
        TRCK,
        TSSE,
        TXXX,
        USER,
        WCOP,
    )

    frames = {TIT2: "title", TPE1: "artist", TPE2: "artist", TALB: "album", TCOM: "composer",
              TPUB: "publisher", TCOP: "copyright", TDRC: "year", TCON: "genre", TBPM: "bpm", TMOO: "mood",
              TLEN: "length_ms", TSSE: "software"}
    tag = ID3()
    for frame, name in frames.items():
        if values[name]:
            tag.add(frame(encoding=3, text=values[name]))
    if values["version"] != "full":
        tag.add(TIT3(encoding=3, text=values["version"]))  # the subtitle players show: 30, stem:piano
    tag.add(TRCK(encoding=3, text=values["track_number"]))  # no total: adding tracks must not change finished ones
    if values["key"] and id3_key(values["key"]):
        tag.add(TKEY(encoding=3, text=id3_key(values["key"])))
    tag.add(COMM(encoding=3, lang="eng", desc="", text=values["comment"]))
    tag.add(USER(encoding=3, lang="eng", text=values["licence"]))
    if values["licence_url"]:
        tag.add(WCOP(url=values["licence_url"]))
    custom = {"TRACK_ID": "track_id", "VERSION": "version", "MODEL": "model", "RECIPE": "recipe", "SEED": "seed",
              "LICENCE": "licence", "KEYWORDS": "keywords", "KEY": "key", "MOOD": "mood",
              "INTEGRATED_LUFS": "integrated_lufs", "TRUE_PEAK_DBTP": "true_peak_dbtp"}
    for desc, name in custom.items():
        if values[name]:
            tag.add(TXXX(encoding=3, desc=desc, text=values[name]))
    if cover_png:
        tag.add(APIC(encoding=3, mime="image/png", type=3, desc="Cover", data=cover_png))
    return tag


def wav_chunks(path: Path, values: dict[str, str], cover_png: bytes | None) -> list[tuple[bytes, bytes]]:
    """LIST/INFO, bext, iXML and id3 chunks of one WAV (its format is read for bext's coding history)."""
    import soundfile as sf

    fmt = sf.info(str(path))
    bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}.get(fmt.subtype, 0)
    mode = {1: "mono", 2: "stereo"}.get(fmt.channels, "multichannel")
    info = {INFO_IDS[name]: values[name] for name in INFO_IDS}
    year = values["year"]
    bext_text = {
        "description": f"{values['title']} - {values['album']} - {values['artist']}. "
                       f"{values['description']} {values['licence']}",
        "originator": values["artist"], "originator_reference": _reference(values["track_id"], values["version"]),
        "origination_date": f"{year}-01-01" if year else "", "origination_time": "00:00:00" if year else "",
    }
    loudness = {"loudness_value": _number(values["integrated_lufs"]),
                "max_true_peak_level": _number(values["true_peak_dbtp"])}
    history = f"A=PCM,F={fmt.samplerate},W={bits},M={mode},T={values['software']}\r\n"
    buffer = io.BytesIO()
    id3_tag(values, cover_png).save(buffer, v2_version=4, padding=lambda _: 0)
    return [info_chunk(info), bext_chunk(bext_text, loudness, history), (b"iXML", ixml(values)),
            (b"id3 ", buffer.getvalue())]


def _number(text: str) -> float | None:
    return float(text) if text else None


def _reference(track_id: str, version: str) -> str:
    """bext's OriginatorReference (32 ASCII characters): the track id and version, hashed when longer."""
    ref = f"{track_id}:{version}"
    return ref if len(ref) <= 32 and ref.isascii() else f"{ref[:23]}-{hashlib.sha1(ref.encode()).hexdigest()[:8]}"


# iXML: the spec's own elements, then every field under USER (as NAME=value lines, which asset
# managers show) and GEN (one element per field, for programs).
IXML_FIELDS = ("title", "version", "artist", "album", "composer", "publisher", "copyright", "year", "genre",
               "track_number", "bpm", "key", "mood", "keywords", "licence", "licence_url",
               "track_id")


def ixml(values: dict[str, str]) -> bytes:
    """The iXML document (UTF-8) of one file."""
    root = ET.Element("BWFXML")
    for tag, text in (("IXML_VERSION", "2.10"), ("PROJECT", values["album"]), ("NOTE", values["description"]),
                      ("FILE_UID", _reference(values["track_id"], values["version"]))):
        ET.SubElement(root, tag).text = text
    ET.SubElement(root, "USER").text = "\n".join(f"{n.upper()}={values[n]}" for n in IXML_FIELDS if values[n])
    gen = ET.SubElement(root, "GEN")
    for name in IXML_FIELDS:
        if values[name]:
            ET.SubElement(gen, name.upper()).text = values[name]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")).encode("utf-8")


def _tag_flac(path: Path, values: dict[str, str], cover_png: bytes | None) -> None:
    from mutagen.flac import FLAC, Picture

    audio = FLAC(str(path))
    for name in ("title", "version", "artist", "album", "composer", "publisher", "copyright", "genre", "bpm",
                 "key", "mood", "keywords", "description", "licence", "track_id"):
        if values[name]:
            audio[name.upper()] = values[name]
    audio["TRACKNUMBER"] = values["track_number"]
    if values["year"]:
        audio["DATE"] = values["year"]
    if cover_png:
        picture = Picture()
        picture.type, picture.mime, picture.data = 3, "image/png", cover_png
        audio.add_picture(picture)
    audio.save()
