"""The upload sheet: library.csv and library.json, one row per deliverable file, from the sidecars alone.

Stock-music stores and asset managers import a spreadsheet of this shape: a file name and the facts
to file it under. A row per full WAV, full MP3, MIDI file, cut-down (WAV and MP3), loop (WAV and MP3) and
stem, in track order; the columns are documented in docs/delivery.md. Paths are relative to the sheet's folder, so
`gen catalogue A B --out C` lists merged shards. CSV: UTF-8 without a BOM, a header row, RFC 4180
quoting and CRLF line ends.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generator import __version__
from generator.errors import InputError
from generator.files import atomic_write_text
from generator.library.folders import check_library_folder
from generator.library.sidecar import is_safe_relative, read_sidecars

log = logging.getLogger(__name__)

CSV_NAME, JSON_NAME = "library.csv", "library.json"
SCHEMA = "gen.library_sheet"
SCHEMA_VERSION = 1
COLUMNS = ("track_id", "file", "version", "format", "title", "description", "keywords", "genre", "mood", "bpm",
           "key", "duration_s", "instruments", "artist", "album", "composer", "publisher", "copyright", "year",
           "track_number", "licence", "licence_url", "isrc", "sha256")
FORMATS = {".wav": "wav", ".mp3": "mp3", ".mid": "midi", ".flac": "flac"}


def build_sheet(folders: Sequence[Path], out_dir: Path) -> tuple[Path, Path]:
    """Write out_dir/library.csv and library.json over the tracks under `folders`; returns both paths."""
    out_dir = check_library_folder(Path(out_dir), "upload sheet's output folder")
    listed = [check_library_folder(Path(f), "sheet folder") for f in folders]
    for folder in listed:
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder; pass the batch folders that hold the track sidecars")
    rows = [row for data, sidecar in sorted(read_sidecars(listed), key=lambda item: _order(item[0]))
            for row in sheet_rows(data, sidecar, out_dir)]
    if not rows:
        raise InputError(f"{', '.join(map(str, folders))}: no delivered files in the track sidecars; "
                         "pass the folders that `gen` exported tracks into")
    csv_path, json_path = out_dir / CSV_NAME, out_dir / JSON_NAME
    atomic_write_text(csv_path, to_csv(rows))
    document = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "generator": f"gen {__version__}",
                "columns": list(COLUMNS), "rows": rows}
    atomic_write_text(json_path, json.dumps(document, ensure_ascii=False, indent=1, allow_nan=False) + "\n")
    log.info("upload sheet of %d files written to %s and %s", len(rows), csv_path, json_path)
    return csv_path, json_path


def to_csv(rows: list[dict[str, Any]]) -> str:
    """RFC 4180 text: a header, then one line per row; None is an empty field."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def _order(data: dict[str, Any]) -> tuple:
    track = data["track"]
    index = track.get("index")
    return (index if isinstance(index, int) else 1 << 62, track["track_id"])


def sheet_rows(data: dict[str, Any], sidecar: Path, out_dir: Path) -> list[dict[str, Any]]:
    """The rows of one track: full WAV, full MP3, MIDI, cut-downs longest first, the loop, stems."""
    track, files = data["track"], data["files"]
    full_s = float(data["audio"]["duration_s"])
    entries: list[tuple[str, Any, float, str]] = [  # (version, path in the track folder, seconds, title)
        ("full", files.get("wav"), full_s, track["title"]), ("full", files.get("mp3"), full_s, track["title"]),
        ("full", files.get("midi"), full_s, track["title"])]
    cutdowns = files.get("cutdowns") if isinstance(files.get("cutdowns"), dict) else {}
    for length, entry in cutdowns.items():
        if isinstance(entry, dict):
            entries += [(str(length), entry.get(fmt), float(entry.get("duration_s") or length),
                         f"{track['title']} ({length}s)") for fmt in ("wav", "mp3")]
    loop = files.get("loop") if isinstance(files.get("loop"), dict) else {}
    entries += [("loop", loop.get(fmt), float(loop.get("duration_s") or 0.0), f"{track['title']} (loop)")
                for fmt in ("wav", "mp3") if loop]
    stems = files.get("stems") if isinstance(files.get("stems"), dict) else {}
    entries += [(f"stem:{role}", rel, full_s, f"{track['title']} (stem: {role})") for role, rel in stems.items()]
    shared = _track_columns(data)
    checksums = data.get("checksums") if isinstance(data.get("checksums"), dict) else {}
    rows = []
    for version, rel, seconds, title in entries:
        path = _file(sidecar, rel)
        if path is None:
            continue
        digest = checksums.get(rel, {}).get("sha256") if isinstance(checksums.get(rel), dict) else None
        stem_role = version.removeprefix("stem:") if version.startswith("stem:") else None
        rows.append({**shared, "file": Path(os.path.relpath(path, out_dir)).as_posix(), "version": version,
                     "format": FORMATS.get(path.suffix.lower(), path.suffix.lstrip(".")), "title": title,
                     "duration_s": round(seconds, 3), "sha256": digest,
                     "instruments": stem_role if stem_role is not None else shared["instruments"]})
    return [{column: row.get(column) for column in COLUMNS} for row in rows]


def _file(sidecar: Path, rel: Any) -> Path | None:
    """The file a sidecar names, if it is a safe relative path to a file that exists."""
    if rel is None:
        return None
    if not is_safe_relative(rel):
        log.warning("%s: file path %r leaves the track folder; left out of the sheet", sidecar, rel)
        return None
    path = sidecar.parent / rel
    if not path.is_file():
        log.warning("%s: %s is missing; left out of the sheet", sidecar, path)
        return None
    return path


def _track_columns(data: dict[str, Any]) -> dict[str, Any]:
    """The columns every file of a track shares; blank where an older sidecar lacks the field."""
    track = data["track"]
    library = track.get("library") if isinstance(track.get("library"), dict) else {}
    roll = data.get("piano_roll") if isinstance(data.get("piano_roll"), dict) else {}
    instruments = [i.get("name") for i in roll.get("instruments") or [] if isinstance(i, dict)]
    index = track.get("index")
    return {
        "track_id": track["track_id"], "description": track.get("description") or None,
        "keywords": ", ".join(map(str, track["tags"])), "genre": track["genre"],
        "mood": ", ".join(map(str, track.get("mood") or [])) or None, "bpm": track.get("bpm"), "key": track.get("key"),
        "instruments": ", ".join(map(str, instruments)) or None,
        **{name: library.get(name) for name in ("artist", "album", "composer", "publisher", "copyright", "year",
                                                "licence_url")},
        "track_number": index + 1 if isinstance(index, int) else None, "licence": track.get("licence_note"),
        "isrc": None,  # left blank to fill in: an ISRC is issued by the label's national agency, not by gen
    }
