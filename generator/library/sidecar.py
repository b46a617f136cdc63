"""The per-track JSON sidecar: what export writes last and the catalogue reads alone.

Schema (version 1), all paths relative to the sidecar's folder, POSIX separators:
{
  "schema": "gen.track", "schema_version": 1, "generator": "gen 0.1.0",
  "track": {track_id, title, genre, index, seed, bpm, key, duration_s (requested), model, recipe,
            licence_note, tags: [..] (keywords), sampling: {..}, extra: {..}, mood: [..], description,
            library: {name, artist, album, composer, publisher, copyright, year, licence_url},
            sections: [{name, start_bar, bars, start_s, end_s}] (a track with a form, else [])},
  "loudness": {integrated_lufs, true_peak_dbtp, gain_db, reached_target, note,
               mp3_true_peak_dbtp, mp3_peak_trim_db, mp3_integrated_lufs},  # the decoded MP3's; its peak trim
  "audio": {duration_s, frames, wav_sample_rate, wav_bits, mp3_sample_rate, mp3_kbps},
  "files": {midi, wav, mp3, sidecar: paths or null, stems: {role: path},
            cutdowns: {"60": {"duration_s": 61.23, "nominal_s": 60.0, "bars": 24 or null, "frames",
                              "length_rule", "integrated_lufs", "true_peak_dbtp", "reached_target",
                              "wav": path, "mp3": path, "mp3_true_peak_dbtp": -1.1, "mp3_peak_trim_db": 0.0,
                              "mp3_integrated_lufs": -14.02,
                              with bars also "segments", "bar_s", "music_s", "ring_out_s"}, ...},
            loop: null or {"bars", "start_bar", "frames", "sample_rate", "duration_s", "bar_s",
                           "tail_folded_s", "length_rule", the loudness keys, "wav", "mp3", ...}},
  "piano_roll": {duration_s, instruments: [{name, program, is_drum}], notes: [[pitch, start_s, end_s, i]]},
  "waveform": {points, min: [..], max: [..]},    # per-bucket min/max over both channels, 3 decimals
  "checksums": {path: {size, sha256}}           # every other file of the track folder (not the sidecar)
}
track.extra.fingerprint ({version, sha256, parts}) says what made the track (library/fingerprint.py).
track.library (the recipe's name, the catalogue's title) is absent from sidecars written before it
existed. The catalogue also reads, when present: track.instruments and track.mood (a string or a
list of strings; else the roll's instrument names and track.extra.mood) and track.sections
([{name, start_bar, bars, start_s, end_s}], drawn on the waveform).
Non-finite numbers (a silent stem's -inf LUFS) are stored as null so the file is strict JSON.
mood, description, library, the mp3_* keys, files.loop and the cut-downs' keys but duration_s,
wav and mp3 came later within schema version 1: readers take them as missing (blank) in older
sidecars. docs/delivery.md "Loops and cut-downs" says what the edits' keys mean.
A MIDI-only track (a recipe with wav, mp3 and stems off) was never rendered: every loudness value
but the note is null, audio holds only duration_s (of the music), the rest null, and the waveform
has no points.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from generator.files import FileRefused, atomic_write_text, read_bytes_bounded

log = logging.getLogger(__name__)

SCHEMA = "gen.track"
SCHEMA_VERSION = 1
MAX_ROLL_NOTES = 6000
MAX_SIDECAR_BYTES = 16 << 20  # ours stay under 1 MiB (the roll is capped); read no more than this


class SidecarError(ValueError):
    """A sidecar that is not ours, not readable or not of a schema we understand."""


def finite_or_none(value: Any) -> Any:
    """Floats that JSON cannot hold (nan, inf) become None; containers are cleaned recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Strict JSON (allow_nan=False), written atomically (files.atomic_write_text)."""
    text = json.dumps(finite_or_none(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    atomic_write_text(path, text)


def is_safe_relative(path: str) -> bool:
    """A relative POSIX path that stays inside its folder (no absolute path, no '..', no drive, no scheme)."""
    if not isinstance(path, str) or not path or "\\" in path or ":" in path:
        return False
    pure = PurePosixPath(path)
    return not pure.is_absolute() and ".." not in pure.parts


def refuse_constant(name: str) -> None:
    """json.loads accepts NaN and Infinity, which export never writes (strict JSON): damage."""
    raise ValueError(f"{name} is not strict JSON; export writes no such number, so the file is damaged")


def load_sidecar(path: Path) -> dict[str, Any]:
    """Read and check one sidecar; raises SidecarError naming the file and what is wrong.

    Only a regular file is read, never through a link (a catalogue lists what lives in its folders),
    and at most MAX_SIDECAR_BYTES of it."""
    try:
        data = json.loads(read_bytes_bounded(path, MAX_SIDECAR_BYTES, "sidecar", follow_links=False),
                          parse_constant=refuse_constant)
    except FileRefused as error:
        raise SidecarError(f"{path}: {error.problem}") from error
    except (OSError, UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise SidecarError(f"{path}: not readable JSON ({error})") from error
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SidecarError(f"{path}: no 'schema': '{SCHEMA}' marker")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise SidecarError(f"{path}: schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    for key, kind in (("track", dict), ("loudness", dict), ("audio", dict), ("files", dict)):
        if not isinstance(data.get(key), kind):
            raise SidecarError(f"{path}: key '{key}' missing or not an object")
    track = data["track"]
    for key, kinds in (("track_id", str), ("title", str), ("genre", str), ("tags", list)):
        if not isinstance(track.get(key), kinds):
            raise SidecarError(f"{path}: key 'track.{key}' missing or of the wrong type")
    duration = data["audio"].get("duration_s")
    if not isinstance(duration, (int, float)) or not duration >= 0:
        raise SidecarError(f"{path}: key 'audio.duration_s' = {duration!r} is not a duration")
    return data


def find_sidecars(folder: Path) -> list[Path]:
    """Every *.json under `folder`, skipping hidden entries (staging folders of unfinished exports)."""
    return [path for path in sorted(folder.rglob("*.json"))
            if not any(part.startswith(".") for part in path.relative_to(folder).parts)]


def read_sidecars(folders: Iterable[Path]) -> Iterator[tuple[dict[str, Any], Path]]:
    """(data, path) of every readable sidecar under `folders`, in folder order; a track_id seen
    twice is kept once (the first). Other JSON files are passed over, damaged sidecars with a warning."""
    seen: set[str] = set()
    for folder in folders:
        for path in find_sidecars(Path(folder)):
            try:
                data = load_sidecar(path)
            except SidecarError as error:
                if "marker" not in str(error):  # other JSON files (reports, configs) are not worth a warning
                    log.warning("skipping sidecar: %s", error)
                continue
            if data["track"]["track_id"] not in seen:
                seen.add(data["track"]["track_id"])
                yield data, path


def piano_roll(midi: Any, notes: Iterable[Sequence[Any]] | None, duration_s: float) -> dict[str, Any]:
    """Compact roll for the catalogue: notes as [pitch, start_s, end_s, instrument index].

    `notes` (pitch, start_s, end_s, instrument name) overrides the MIDI when the caller knows roles.
    Only the first MAX_ROLL_NOTES notes by start time are kept so a sidecar stays small.
    """
    instruments: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    if notes is not None:
        names: dict[str, int] = {}
        for pitch, start, end, name in notes:
            idx = names.setdefault(str(name), len(names))
            if idx == len(instruments):
                instruments.append({"name": str(name), "program": None, "is_drum": "drum" in str(name).lower()})
            rows.append([int(pitch), round(float(start), 3), round(float(end), 3), idx])
    elif midi is not None:
        for idx, inst in enumerate(midi.instruments):
            name = inst.name.strip() or ("Drums" if inst.is_drum else f"Program {inst.program}")
            instruments.append({"name": name, "program": int(inst.program), "is_drum": bool(inst.is_drum)})
            rows.extend([n.pitch, round(n.start, 3), round(n.end, 3), idx] for n in inst.notes)
    rows.sort(key=lambda r: (r[1], r[0]))
    return {"duration_s": round(duration_s, 3), "instruments": instruments,
            "notes": rows[:MAX_ROLL_NOTES], "truncated": len(rows) > MAX_ROLL_NOTES}
