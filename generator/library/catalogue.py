"""Sidecars -> one self-contained index.html (inline CSS/JS/SVG, no network) over one or more batch folders.

Everything the page shows comes from the JSON sidecars that export wrote; audio is linked, not read.
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
from generator.library.folders import check_library_folder
from generator.library.sidecar import SidecarError, is_safe_relative, load_sidecar

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
ROLL_W, ROLL_H, WAVE_W, WAVE_H = 1000.0, 120.0, 1000.0, 60.0
# Colour-blind-friendly (Okabe-Ito, then Tol) so instruments stay distinguishable; drums are grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#882255", "#44AA99",
           "#999933")
DRUM_COLOUR = "#777777"


@dataclass(frozen=True)
class Card:
    """What one track's card shows; every string is raw text, escaped by the template."""

    track_id: str
    title: str
    genre: str
    duration_s: float
    duration_label: str
    loudness_label: str
    reached_target: bool
    loudness_note: str
    tags: tuple[str, ...]
    details: tuple[tuple[str, str], ...]
    player: str | None
    downloads: tuple[tuple[str, str], ...]
    legend: tuple[tuple[str, str], ...]
    roll_paths: tuple[tuple[str, str], ...]  # (colour, SVG path d)
    wave_path: str
    search_text: str


def find_sidecars(folder: Path) -> list[Path]:
    """Every *.json under `folder`, skipping hidden entries (staging folders of unfinished exports)."""
    found = []
    for path in sorted(folder.rglob("*.json")):
        if not any(part.startswith(".") for part in path.relative_to(folder).parts):
            found.append(path)
    return found


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


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def roll_svg_paths(roll: Any, duration_s: float) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """Piano roll as one SVG path per instrument (a rectangle per note) in a ROLL_W x ROLL_H box."""
    if not isinstance(roll, dict):
        return (), ()
    instruments = roll.get("instruments") or []
    notes = [n for n in roll.get("notes") or [] if isinstance(n, list) and len(n) == 4]
    span = max(_number(roll.get("duration_s"), duration_s), duration_s, 1e-3)
    pitches = [int(_number(n[0])) for n in notes] or [60]
    low, high = min(pitches) - 1, max(pitches) + 1
    row_h = ROLL_H / (high - low + 1)
    colours = []
    for i, inst in enumerate(instruments):
        drum = isinstance(inst, dict) and inst.get("is_drum") is True
        colours.append(DRUM_COLOUR if drum else PALETTE[i % len(PALETTE)])
    parts: dict[int, list[str]] = {}
    for pitch, start, end, idx in notes:
        idx = int(_number(idx))
        x, w = _number(start) / span * ROLL_W, max(0.8, (_number(end) - _number(start)) / span * ROLL_W)
        y = (high - _number(pitch)) * row_h
        parts.setdefault(idx, []).append(f"M{x:.1f} {y:.1f}h{w:.1f}v{max(row_h, 1.0):.1f}h{-w:.1f}z")
    paths = tuple((colours[i] if 0 <= i < len(colours) else PALETTE[0], "".join(p)) for i, p in sorted(parts.items()))
    legend = tuple((str(inst.get("name", "?")) if isinstance(inst, dict) else "?", colours[i])
                   for i, inst in enumerate(instruments))
    return paths, legend


def wave_svg_path(waveform: Any) -> str:
    """Filled outline: the max curve left to right, then the min curve back, in a WAVE_W x WAVE_H box."""
    if not isinstance(waveform, dict):
        return ""
    highs = [_number(v) for v in waveform.get("max") or []]
    lows = [_number(v) for v in waveform.get("min") or []]
    n = min(len(highs), len(lows))
    if n == 0:
        return ""
    step = WAVE_W / max(n - 1, 1)
    mid = WAVE_H / 2

    def y(v: float) -> float:
        return mid - max(-1.0, min(1.0, v)) * mid

    top = [f"{i * step:.1f} {y(highs[i]):.1f}" for i in range(n)]
    bottom = [f"{i * step:.1f} {y(lows[i]):.1f}" for i in reversed(range(n))]
    return "M" + "L".join(top + bottom) + "Z"


def _downloads(data: dict[str, Any], folder: Path, out_dir: Path, sidecar: Path) -> list[tuple[str, str]]:
    files = data["files"]
    links: list[tuple[str, str]] = []

    def add(label: str, rel: Any) -> None:
        href = _link(folder, rel, out_dir, sidecar)
        if href:
            links.append((label, href))

    for key, label in (("midi", "MIDI"), ("wav", "WAV"), ("mp3", "MP3")):
        add(label, files.get(key))
    stems = files.get("stems") if isinstance(files.get("stems"), dict) else {}
    for role, rel in stems.items():
        add(f"Stem: {role}", rel)
    cutdowns = files.get("cutdowns") if isinstance(files.get("cutdowns"), dict) else {}
    for length, entry in cutdowns.items():  # export writes them longest first
        if isinstance(entry, dict):
            for fmt in ("wav", "mp3"):
                add(f"{length} s {fmt.upper()}", entry.get(fmt))
    return links


def card_from_sidecar(data: dict[str, Any], sidecar: Path, out_dir: Path) -> Card:
    """View model of one track; links are relative to `out_dir`, missing or unsafe ones are left out."""
    track, loud, folder = data["track"], data["loudness"], sidecar.parent
    duration_s = float(data["audio"]["duration_s"])
    lufs, peak = loud.get("integrated_lufs"), loud.get("true_peak_dbtp")
    rendered = data["audio"].get("frames") is not None  # a MIDI-only track has no audio to measure
    loudness = (f"{_number(lufs):.1f} LUFS, {_number(peak):.1f} dBTP"
                if isinstance(lufs, (int, float)) and isinstance(peak, (int, float))
                else "loudness unknown" if rendered else "MIDI only")
    tags = tuple(str(t) for t in track["tags"])
    files = data["files"]
    player = _link(folder, files.get("mp3"), out_dir, sidecar) or _link(folder, files.get("wav"), out_dir, sidecar)
    details = []
    for key, label in (("bpm", "BPM"), ("key", "Key"), ("model", "Model"), ("seed", "Seed"),
                       ("recipe", "Recipe"), ("licence_note", "Licence")):
        value = track.get(key)
        if value not in (None, ""):
            details.append((label, f"{value:g}" if isinstance(value, float) else str(value)))
    roll_paths, legend = roll_svg_paths(data.get("piano_roll"), duration_s)
    return Card(
        track_id=track["track_id"], title=track["title"], genre=track["genre"], duration_s=duration_s,
        duration_label=format_duration(duration_s), loudness_label=loudness,
        reached_target=loud.get("reached_target") is True or not rendered,
        loudness_note=str(loud.get("note") or ""),
        tags=tags, details=tuple(details), player=player,
        downloads=tuple(_downloads(data, folder, out_dir, sidecar)), legend=legend, roll_paths=roll_paths,
        wave_path=wave_svg_path(data.get("waveform")),
        search_text=" ".join([track["title"], *tags]).lower(),
    )


def collect_cards(folders: Sequence[Path], out_dir: Path) -> list[Card]:
    """Cards of every readable sidecar, in folder order; a track_id seen twice is kept once (the first)."""
    cards: list[Card] = []
    seen: dict[str, Path] = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder; pass the batch folders that hold the track sidecars")
        for path in find_sidecars(folder):
            try:
                data = load_sidecar(path)
            except SidecarError as error:
                if "marker" not in str(error):  # other JSON files (reports, configs) are not worth a warning
                    log.warning("skipping sidecar: %s", error)
                continue
            track_id = data["track"]["track_id"]
            if track_id in seen:
                log.info("%s: track %s already listed from %s", path, track_id, seen[track_id])
                continue
            try:
                cards.append(card_from_sidecar(data, path, out_dir))
            except (AttributeError, KeyError, TypeError, ValueError) as error:
                log.warning("skipping sidecar: %s: unexpected content (%r)", path, error)
                continue
            seen[track_id] = path
    return cards


def render(cards: Sequence[Card]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    genres = sorted({c.genre for c in cards}, key=str.lower)
    total_s = sum(c.duration_s for c in cards)
    return env.get_template("index.html").render(
        cards=cards, genres=genres, total_label=format_duration(total_s), version=__version__,
        max_duration_s=int(max((c.duration_s for c in cards), default=0) + 1),
        roll_box=(ROLL_W, ROLL_H), wave_box=(WAVE_W, WAVE_H),
    )


def build_catalogue(folders: Sequence[Path], out_dir: Path) -> Path:
    """Write out_dir/index.html from the sidecars under `folders`; returns its path."""
    out_dir = Path(out_dir)
    listed = [check_library_folder(f, "catalogue folder") for f in folders]
    cards = collect_cards(listed, check_library_folder(out_dir, "catalogue's output folder"))
    if not cards:
        names = ", ".join(str(f) for f in folders)
        raise InputError(f"{names}: no track sidecars (*.json with schema 'gen.track') found; "
                         "pass the folders that `gen` exported tracks into")
    html = render(cards)
    target = out_dir / "index.html"
    atomic_write_text(target, html)
    log.info("catalogue of %d tracks written to %s", len(cards), target)
    return target
