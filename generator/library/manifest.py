"""The manifest of an output folder's finished tracks, so a re-run skips exactly what is complete.

A nightly build may be killed at any moment (SIGKILL included). The manifest is rewritten
atomically after each finished track, and a track counts as finished only once its sidecar (written
last by export) exists, so a re-run skips exactly what is complete and redoes the rest.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from generator.files import FileRefused, atomic_write_text, read_bytes_bounded

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 64 << 20  # 10,000 tracks take about 3 MiB


@dataclass
class Manifest:
    """Finished tracks of one output folder, keyed by track id."""

    path: Path
    recipe_name: str
    tracks: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, out_dir: Path, recipe_name: str) -> Manifest:
        path = out_dir / MANIFEST_NAME
        if not path.exists():
            return cls(path, recipe_name)
        try:
            data = json.loads(read_bytes_bounded(path, MAX_MANIFEST_BYTES, "manifest", follow_links=False))
            tracks = dict(data["tracks"])
        except (OSError, ValueError, KeyError, TypeError, FileRefused):
            # A manifest is only ever replaced atomically, so this is outside damage: rebuild it
            # from the sidecars, which are the ground truth.
            tracks = {}
        return cls(path, recipe_name, tracks)

    def is_done(self, track_id: str) -> bool:
        record = self.tracks.get(track_id)
        if record is None:
            return False
        return (self.path.parent / record["sidecar"]).exists()

    def add(self, track_id: str, record: dict) -> None:
        self.tracks[track_id] = record
        self.save()

    def save(self) -> None:
        payload = {
            "version": MANIFEST_VERSION,
            "recipe": self.recipe_name,
            "tracks": dict(sorted(self.tracks.items(), key=lambda kv: kv[1].get("index", 0))),
        }
        atomic_write_text(self.path, json.dumps(payload, indent=1, sort_keys=True))


def remove_unfinished(folder: Path) -> None:
    """Drop a track folder left behind by a killed run (no sidecar means not finished)."""
    if folder.exists():
        shutil.rmtree(folder)
