"""The catalogue's per-track graphics and provenance as compact data files that the page loads only when a card
comes into view.

Each track gets `index-data/<key>.js`, a script that hands its data to the page:

    genCatalogueTrack("<key>", {"wave": {"hi": "...", "lo": "..."}, "roll": {...}, "facts": [[label, text], ...]})

A script, not JSON read with fetch(): fetch() of a local file fails under file://, while a <script>
loads from disk and from a web server alike. The page draws the data into <canvas> elements and
writes the facts (seed, model, recipe, ...) into the card's "Details" as text.

- wave: per-bucket max and min of the waveform, one character each from WAVE_LEVELS (62 levels
  from -1 to +1), so 400 points cost 800 bytes.
- roll: the piano roll on a grid of ROLL_COLUMNS columns: per instrument, its colour and the notes
  as runs [pitch, dx, width, ...] (dx: columns from the previous run's start; overlapping notes of
  one pitch merge), so a 2,000-note roll costs ~10 KB instead of ~60 KB of SVG.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from generator.errors import InputError
from generator.files import atomic_write_text, remove_temps

DATA_FOLDER = "index-data"
CALLBACK = "genCatalogueTrack"
WAVE_LEVELS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ROLL_COLUMNS = 600
# Colour-blind-friendly (Okabe-Ito, then Tol) so instruments stay distinguishable; drums are grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#882255", "#44AA99",
           "#999933")
DRUM_COLOUR = "#777777"


def optional_number(value: Any) -> float | None:
    """A finite int or float as float; anything else (None, bool, text, nan) is None."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def number(value: Any, default: float = 0.0) -> float:
    """A finite int or float as float; anything else is `default`."""
    found = optional_number(value)
    return default if found is None else found


def data_key(track_id: str) -> str:
    """Stable file name of a track's data: the same track keeps its file across rebuilds and merges."""
    return hashlib.sha1(track_id.encode("utf-8")).hexdigest()[:12]


def instrument_colours(instruments: Any) -> list[tuple[str, str]]:
    """(name, colour) of each piano-roll instrument, in the roll's order."""
    found = []
    for i, inst in enumerate(instruments if isinstance(instruments, list) else []):
        inst = inst if isinstance(inst, dict) else {}
        colour = DRUM_COLOUR if inst.get("is_drum") is True else PALETTE[i % len(PALETTE)]
        found.append((str(inst.get("name") or "?"), colour))
    return found


def wave_data(waveform: Any) -> dict[str, str] | None:
    """{'hi': ..., 'lo': ...}: the max and min curves, a character per point; None without points."""
    if not isinstance(waveform, dict):
        return None
    highs, lows = waveform.get("max") or [], waveform.get("min") or []
    n = min(len(highs), len(lows))
    if n == 0:
        return None
    top = len(WAVE_LEVELS) - 1

    def encode(values: list[Any]) -> str:
        return "".join(WAVE_LEVELS[round((max(-1.0, min(1.0, number(v))) + 1) / 2 * top)] for v in values[:n])

    return {"hi": encode(highs), "lo": encode(lows)}


def _runs(cells: dict[int, list[tuple[int, int]]]) -> list[tuple[int, int, int]]:
    """(start column, pitch, width) of each run, overlapping cells of one pitch merged."""
    runs = []
    for pitch, spans in cells.items():
        spans.sort()
        start, end = spans[0]
        for x0, x1 in spans[1:]:
            if x0 < end:
                end = max(end, x1)
            else:
                runs.append((start, pitch, end - start))
                start, end = x0, x1
        runs.append((start, pitch, end - start))
    return sorted(runs)


def roll_data(roll: Any, duration_s: float) -> dict[str, Any] | None:
    """The piano roll on the column grid (see the module docstring); None when it has no notes."""
    if not isinstance(roll, dict):
        return None
    notes = [n for n in roll.get("notes") or [] if isinstance(n, list) and len(n) == 4]
    if not notes:
        return None
    span = max(number(roll.get("duration_s"), duration_s), duration_s, 1e-3)
    colours = instrument_colours(roll.get("instruments"))
    cells: dict[int, dict[int, list[tuple[int, int]]]] = {}
    pitches = []
    for pitch, start, end, idx in notes:
        pitch, idx = int(number(pitch)), int(number(idx))
        x0 = min(ROLL_COLUMNS - 1, max(0, int(number(start) / span * ROLL_COLUMNS)))
        x1 = max(x0 + 1, min(ROLL_COLUMNS, math.ceil(number(end) / span * ROLL_COLUMNS)))
        cells.setdefault(idx, {}).setdefault(pitch, []).append((x0, x1))
        pitches.append(pitch)
    parts = []
    for idx, by_pitch in sorted(cells.items()):
        flat, last = [], 0
        for x0, pitch, width in _runs(by_pitch):
            flat += [pitch, x0 - last, width]
            last = x0
        colour = colours[idx][1] if 0 <= idx < len(colours) else PALETTE[0]
        parts.append([colour, flat])
    return {"cols": ROLL_COLUMNS, "low": min(pitches) - 1, "high": max(pitches) + 1, "parts": parts}


def script_text(key: str, data: dict[str, Any]) -> str:
    """One data file: a call of the page's callback. JSON is valid JavaScript, and nothing here is HTML."""
    return f"{CALLBACK}({json.dumps(key)},{json.dumps(data, separators=(',', ':'), allow_nan=False)});\n"


def write_data_files(out_dir: Path, tracks: dict[str, dict[str, Any]]) -> Path:
    """Write `out_dir/index-data/<key>.js` for each track; unchanged files are left as they are, and
    data files of tracks no longer listed are removed. Returns the folder."""
    folder = out_dir / DATA_FOLDER
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise InputError(f"{folder}: is a link or a file where the catalogue's data folder goes; "
                         "move it away and run again")
    folder.mkdir(parents=True, exist_ok=True)
    remove_temps(folder)
    for key, data in tracks.items():
        target, text = folder / f"{key}.js", script_text(key, data)
        try:
            if target.read_text(encoding="utf-8") == text:
                continue
        except (OSError, UnicodeDecodeError):
            pass
        atomic_write_text(target, text)
    for entry in os.scandir(folder):
        stale = entry.name.endswith(".js") and entry.name[:-3] not in tracks
        if stale and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
    return folder
