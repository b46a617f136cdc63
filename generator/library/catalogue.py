"""Sidecars -> index.html, a catalogue a curator can browse, over one or more batch folders.

The page holds the cards (text, links, players: ~2 KB a track) and inline CSS/JS; each track's
waveform and piano roll live in a small data file (catalogue_data.py) that the page loads when the
card comes into view. Nothing comes from the network. Everything the page shows comes from the JSON
sidecars that export wrote; audio is linked, not read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from generator import __version__
from generator.errors import InputError
from generator.files import atomic_write_text
from generator.library.catalogue_data import (
    DATA_FOLDER,
    data_key,
    instrument_colours,
    number,
    optional_number,
    roll_data,
    wave_data,
    write_data_files,
)
from generator.library.folders import check_library_folder
from generator.library.keys import parse_key
from generator.library.sidecar import is_safe_relative, read_sidecars

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
UNKNOWN_KEY_ORDER = 99  # after the 24 keys (tonic * 2 + minor)
SAMPLING_SHOWN = ("temperature", "top_p", "top_k")


Links = tuple[tuple[str, str], ...]  # (label, href)


@dataclass(frozen=True)
class Section:
    name: str
    start_s: float
    label: str  # 'A 0:07'


@dataclass(frozen=True)
class Card:
    """What one track's card shows; every string is raw text, escaped by the template.

    `facts` (provenance) and `graphics` (waveform, piano roll) go to the track's data file, not into the page:
    1,000 cards must stay under 3 MB."""

    track_id: str
    key: str  # the data file's name
    title: str
    genre: str
    duration_s: float
    duration_label: str
    bpm: float | None
    music_key: str
    key_order: int
    instruments: tuple[tuple[str, str | None], ...]  # (name, its colour in the piano roll)
    moods: tuple[str, ...]
    tags: tuple[str, ...]
    loudness_label: str
    reached_target: bool
    player: str | None
    downloads: tuple[tuple[str, Links], ...]  # (row label, links)
    sections: tuple[Section, ...]
    facts: tuple[tuple[str, str], ...]
    library: str
    licence: str
    graphics: dict[str, Any]


def format_duration(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def _href(target: Path, out_dir: Path) -> str:
    """URL of `target` relative to the page; quoted, so it can only ever be a relative path."""
    rel = os.path.relpath(target, out_dir)
    return quote(Path(rel).as_posix())


def _link(sidecar_dir: Path, rel: Any, out_dir: Path, sidecar: Path) -> str | None:
    if rel is None:
        return None
    if not is_safe_relative(rel):
        log.warning("%s: file path %r leaves the track folder; link left out", sidecar, rel)
        return None
    target = sidecar_dir / rel
    if not target.is_file():
        log.warning("%s: %s is missing; link left out", sidecar, target)
        return None
    return _href(target, out_dir)


def _texts(value: Any) -> tuple[str, ...]:
    """A string or a list of strings as a tuple of non-empty strings."""
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(str(v).strip() for v in values if isinstance(v, (str, int, float)) and str(v).strip())


def _sections(track: dict[str, Any], duration_s: float) -> tuple[Section, ...]:
    """track.sections ([{name, start_bar, bars, start_s, end_s}]), those that lie inside the track."""
    found = []
    for entry in track.get("sections") or []:
        if not isinstance(entry, dict):
            continue
        start = number(entry.get("start_s"), -1.0)
        if 0 <= start < max(duration_s, 1e-3):  # the page marks starts; ends are the next start
            name = str(entry.get("name") or len(found) + 1)
            found.append(Section(name, start, f"{name} {format_duration(start)}"))
    return tuple(found)


def _facts(data: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Provenance, shown on demand: id, seed, model, recipe, sampling, loudness, generator, licence."""
    track = data["track"]
    sampling = track.get("sampling") if isinstance(track.get("sampling"), dict) else {}
    shown = ", ".join(f"{k} {sampling[k]:g}" for k in SAMPLING_SHOWN if optional_number(sampling.get(k)) is not None)
    rows = [("Track ID", track["track_id"]), ("Seed", track.get("seed")), ("Model", track.get("model")),
            ("Recipe", track.get("recipe")), ("Sampling", shown), ("Loudness", data["loudness"].get("note")),
            ("Made by", data.get("generator")), ("Licence", track.get("licence_note"))]
    return tuple((label, str(value)) for label, value in rows if value not in (None, ""))


def _loudness(data: dict[str, Any]) -> str:
    loud = data["loudness"]
    lufs, peak = optional_number(loud.get("integrated_lufs")), optional_number(loud.get("true_peak_dbtp"))
    if lufs is not None and peak is not None:
        return f"{lufs:.1f} LUFS, {peak:.1f} dBTP"
    return "loudness unknown" if data["audio"].get("frames") is not None else "MIDI only"


def _labels(track: dict[str, Any], roll: Any) -> tuple[tuple[Any, ...], ...]:
    """Instruments (name, colour in the roll), moods, and the tags that say more than the genre, library or mood.

    track.instruments wins over the roll's instrument names; each keeps the colour of its namesake in the roll."""
    legend = instrument_colours(roll.get("instruments") if isinstance(roll, dict) else None)
    colours = {name.lower(): colour for name, colour in reversed(legend)}
    names = _texts(track.get("instruments")) or tuple(name for name, _ in legend)
    instruments = tuple((name, colours.get(name.lower())) for name in dict.fromkeys(names))
    extra = track.get("extra") if isinstance(track.get("extra"), dict) else {}
    moods = _texts(track.get("mood")) or _texts(extra.get("mood"))
    said = {str(track["genre"]).lower(), library_name(track).lower(), *(m.lower() for m in moods)}
    return instruments, moods, tuple(str(t) for t in track["tags"] if str(t).lower() not in said)


def library_name(track: dict[str, Any]) -> str:
    """track.library's name: the facts export writes ({name, artist, ...}), or a bare name."""
    library = track.get("library")
    return str((library.get("name") if isinstance(library, dict) else library) or "")


def card_from_sidecar(data: dict[str, Any], sidecar: Path, out_dir: Path) -> Card:
    """View model of one track; links are relative to `out_dir`, missing or unsafe ones are left out."""
    track, folder = data["track"], sidecar.parent
    duration_s = float(data["audio"]["duration_s"])
    files, roll = data["files"], data.get("piano_roll")
    music_key = str(track.get("key") or "")
    parsed = parse_key(music_key)
    instruments, moods, tags = _labels(track, roll)
    return Card(
        track_id=track["track_id"], key=data_key(track["track_id"]), title=track["title"], genre=track["genre"],
        duration_s=duration_s, duration_label=format_duration(duration_s), bpm=optional_number(track.get("bpm")),
        music_key=music_key, key_order=parsed.tonic * 2 + parsed.minor if parsed else UNKNOWN_KEY_ORDER,
        instruments=instruments, moods=moods, tags=tags, loudness_label=_loudness(data),
        reached_target=data["loudness"].get("reached_target") is True or data["audio"].get("frames") is None,
        player=_link(folder, files.get("mp3"), out_dir, sidecar) or _link(folder, files.get("wav"), out_dir, sidecar),
        downloads=tuple(_downloads(data, folder, out_dir, sidecar)),
        sections=_sections(track, duration_s), facts=_facts(data),
        library=library_name(track), licence=str(track.get("licence_note") or ""),
        graphics={"wave": wave_data(data.get("waveform")), "roll": roll_data(roll, duration_s)},
    )


def _downloads(data: dict[str, Any], folder: Path, out_dir: Path, sidecar: Path) -> tuple[tuple[str, Links], ...]:
    """(row label, links) for the mix, the stems, the cut-downs and the loop; rows without a link are left out."""
    files = data["files"]

    def links(pairs: Any) -> Links:
        found = ((label, _link(folder, rel, out_dir, sidecar)) for label, rel in pairs)
        return tuple((label, href) for label, href in found if href)

    stems = files.get("stems") if isinstance(files.get("stems"), dict) else {}
    cutdowns = files.get("cutdowns") if isinstance(files.get("cutdowns"), dict) else {}
    loop = files.get("loop") if isinstance(files.get("loop"), dict) else {}
    rows = (
        ("Track", links((label, files.get(key)) for key, label in (("midi", "MIDI"), ("wav", "WAV"), ("mp3", "MP3")))),
        ("Stems", links(stems.items())),
        ("Cut-downs", links((f"{length} s {fmt.upper()}", entry.get(fmt))  # export writes them longest first
                           for length, entry in cutdowns.items() if isinstance(entry, dict) for fmt in ("wav", "mp3"))),
        ("Loop", links((f"{loop.get('bars')} bars {fmt.upper()}", loop.get(fmt)) for fmt in ("wav", "mp3"))),
    )
    return tuple((label, row) for label, row in rows if row)


def collect_cards(folders: Sequence[Path], out_dir: Path) -> list[Card]:
    """Cards of every readable sidecar, in folder order; a track_id seen twice is kept once (the first)."""
    for folder in folders:
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: not a folder; pass the batch folders that hold the track sidecars")
    cards: list[Card] = []
    for data, path in read_sidecars(Path(f) for f in folders):
        try:
            cards.append(card_from_sidecar(data, path, out_dir))
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            log.warning("skipping sidecar: %s: unexpected content (%r)", path, error)
    return cards


def library_title(cards: Sequence[Card]) -> str:
    """The libraries' names (track.library) as the page's title; older sidecars without one: 'Music catalogue'."""
    names = list(dict.fromkeys(c.library for c in cards if c.library))
    return " + ".join(names) if names else "Music catalogue"


def _distinct(values: Any, key: Any = str.lower) -> list[Any]:
    return sorted(set(values), key=key)


def render(cards: Sequence[Card]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    bpms = [c.bpm for c in cards if c.bpm is not None]
    facts = [dict(c.facts) for c in cards]
    keys = sorted({(c.key_order, c.music_key) for c in cards if c.music_key})
    return env.get_template("index.html").render(
        cards=cards, title=library_title(cards), version=__version__, data_folder=DATA_FOLDER,
        genres=_distinct(c.genre for c in cards), keys=[name for _, name in keys],
        instruments=_distinct(name for c in cards for name, _ in c.instruments),
        moods=_distinct(m for c in cards for m in c.moods),
        licences=list(dict.fromkeys(c.licence for c in cards if c.licence)),
        models=_distinct(f["Model"] for f in facts if "Model" in f),
        recipes=_distinct(f["Recipe"] for f in facts if "Recipe" in f),
        total_label=format_duration(sum(c.duration_s for c in cards)),
        bpm_range=(int(min(bpms, default=0)), int(max(bpms, default=0)) + 1),
        max_duration_s=int(max((c.duration_s for c in cards), default=0) + 1),
    )


def build_catalogue(folders: Sequence[Path], out_dir: Path) -> Path:
    """Write out_dir/index.html and its data files (out_dir/index-data/) from the sidecars under `folders`;
    returns the page's path."""
    out_dir = Path(out_dir)
    listed = [check_library_folder(f, "catalogue folder") for f in folders]
    cards = collect_cards(listed, check_library_folder(out_dir, "catalogue's output folder"))
    if not cards:
        names = ", ".join(str(f) for f in folders)
        raise InputError(f"{names}: no track sidecars (*.json with schema 'gen.track') found; "
                         "pass the folders that `gen` exported tracks into")
    html = render(cards)
    write_data_files(out_dir, {c.key: {**c.graphics, "facts": c.facts} for c in cards})
    target = out_dir / "index.html"
    atomic_write_text(target, html)  # last: the page names only data files that exist
    log.info("catalogue of %d tracks written to %s", len(cards), target)
    return target
