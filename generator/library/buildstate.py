"""The state of one output folder across runs: the lock and the manifest of finished tracks.

A nightly build may be killed at any moment (SIGKILL included). The manifest is rewritten
atomically after each finished track, and a track counts as finished only once its sidecar (written
last by export) exists, so a re-run skips exactly what is complete and redoes the rest.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from generator.errors import LockedError
from generator.files import atomic_write_text

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".gen.lock"
MANIFEST_VERSION = 1


class OutputLock:
    """An exclusive advisory lock on the output folder; the kernel drops it if the process dies."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_NAME
        self._handle = None

    def __enter__(self) -> "OutputLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LockedError(
                f"{self.path.parent}: another gen batch ({holder}) is writing to this folder; "
                "wait for it to finish or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


@dataclass
class Manifest:
    """Finished tracks of one output folder, keyed by track id."""

    path: Path
    recipe_name: str
    tracks: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, out_dir: Path, recipe_name: str) -> "Manifest":
        path = out_dir / MANIFEST_NAME
        if not path.exists():
            return cls(path, recipe_name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            tracks = dict(data["tracks"])
        except (OSError, ValueError, KeyError, TypeError):
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
