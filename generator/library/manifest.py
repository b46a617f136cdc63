"""The manifest of an output folder's finished tracks, so a re-run skips exactly what is complete.

A nightly build may be killed at any moment (SIGKILL included). The manifest is rewritten
atomically after each finished track, and a track counts as finished only once its sidecar (written
last by export) exists and its files check out (library/resume.py), so a re-run skips exactly what
is complete and redoes the rest.

Each record keeps the track's fingerprint (library/fingerprint.py) and its files with size, SHA-256
and mtime (library/integrity.py). The sidecars carry both too, so a missing or damaged manifest is
rebuilt from them and nothing finished is sampled again.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from generator.errors import InputError
from generator.files import FileRefused, atomic_write_text, read_bytes_bounded
from generator.library.integrity import track_files
from generator.library.sidecar import SidecarError, load_sidecar, refuse_constant

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 64 << 20  # 10,000 tracks take about 3 MiB


@dataclass
class Manifest:
    """Finished tracks of one output folder, keyed by track id."""

    path: Path
    recipe_name: str
    tracks: dict[str, dict] = field(default_factory=dict)
    _saved: str | None = None  # the text on disk, so an unchanged manifest is not rewritten

    @classmethod
    def load(cls, out_dir: Path, recipe_name: str) -> Manifest:
        path = out_dir / MANIFEST_NAME
        if path.is_symlink() or (path.exists() and not path.is_file()):
            # Never read through a link or from a pipe, and never write over a folder.
            raise InputError(f"{path} is not a regular file; move it out of the folder and run again "
                             "(the manifest is rebuilt from the track sidecars)")
        try:
            text = read_bytes_bounded(path, MAX_MANIFEST_BYTES, "manifest", follow_links=False).decode("utf-8")
            tracks = dict(json.loads(text, parse_constant=refuse_constant)["tracks"])  # strict, as written
            if not all(isinstance(r, dict) for r in tracks.values()):
                raise TypeError("a track record is not an object")
            return cls(path, recipe_name, tracks, _saved=text)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError, FileRefused) as error:
            # A manifest is only ever replaced atomically, so this is outside damage: rebuild it
            # from the sidecars, which are the ground truth.
            log.warning("%s is damaged (%s); rebuilding it from the sidecars", path, error)
        return cls(path, recipe_name, tracks_from_sidecars(out_dir))

    def add(self, track_id: str, record: dict) -> None:
        self.tracks[track_id] = record
        self.save()

    def save(self) -> None:
        payload = {
            "version": MANIFEST_VERSION,
            "recipe": self.recipe_name,
            "tracks": dict(sorted(self.tracks.items(), key=lambda kv: _index(kv[1]))),
        }
        text = json.dumps(payload, indent=1, sort_keys=True)
        if text != self._saved:
            atomic_write_text(self.path, text)
            self._saved = text


def _index(record: dict) -> int:
    index = record.get("index")
    return index if isinstance(index, int) else 0


def tracks_from_sidecars(out_dir: Path) -> dict[str, dict]:
    """The manifest's records, read back from the track folders' sidecars (`<folder>/<folder>.json`)."""
    tracks: dict[str, dict] = {}
    folders = sorted(p for p in out_dir.iterdir() if not p.name.startswith(".")) if out_dir.is_dir() else []
    for folder in folders:
        sidecar = folder / f"{folder.name}.json"
        if folder.is_symlink() or not folder.is_dir() or sidecar.is_symlink() or not sidecar.is_file():
            continue
        try:
            record = _record(out_dir, folder.name, load_sidecar(sidecar))
        except (SidecarError, OSError, ValueError, TypeError, AttributeError) as error:
            log.warning("%s: not a finished track (%s); it will be made again", folder, error)
            continue
        if record["track_id"] in tracks:
            log.warning("%s: track %s is also in %s; keeping that one", folder, record["track_id"],
                        tracks[record["track_id"]]["folder"])
            continue
        tracks[record.pop("track_id")] = record
    return tracks


def _record(out_dir: Path, folder: str, data: dict) -> dict:
    track, loudness = data["track"], data["loudness"]
    extra = track.get("extra") if isinstance(track.get("extra"), dict) else {}
    sidecar = f"{folder}/{folder}.json"

    def rounded(value, digits):
        return None if value is None else round(float(value), digits)

    return {
        "track_id": track["track_id"], "index": track.get("index"), "title": track["title"], "genre": track["genre"],
        "seed": track.get("seed"), "folder": folder, "sidecar": sidecar,
        "duration_s": rounded(track.get("duration_s"), 3),
        "integrated_lufs": rounded(loudness.get("integrated_lufs"), 2),
        "true_peak_dbtp": rounded(loudness.get("true_peak_dbtp"), 2),
        "fingerprint": extra.get("fingerprint"),
        "files": track_files(out_dir, folder, sidecar, data.get("checksums"), trust_mtime=False),
    }


def remove_unfinished(folder: Path) -> None:
    """Drop a track folder left behind by a killed run (no sidecar means not finished)."""
    if folder.exists():
        shutil.rmtree(folder)
