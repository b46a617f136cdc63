"""File checksums of finished tracks, and the check a re-run makes before it trusts one.

Export records the size and SHA-256 of every file of a track in its sidecar (`checksums`, written
last, so it cannot hold its own); the manifest keeps those plus the sidecar's own, with each file's
mtime. A re-run checks every finished track: each file exists, is a regular file and has its size;
MIDI files and the sidecar (small) are hashed every time, audio (large) only when its size or mtime
differs from the manifest's, so an untouched 1,000-track library is checked with stat calls alone.
A file rewritten in place with the same size and its old mtime restored escapes this check.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from generator.files import file_sha256
from generator.library.sidecar import is_safe_relative

AUDIO_SUFFIXES = (".wav", ".mp3", ".flac")


def folder_checksums(folder: Path, *, skip: str) -> dict[str, dict[str, Any]]:
    """{relative POSIX path: {size, sha256}} of every regular file under `folder` but `skip`."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == skip or path.is_symlink() or not path.is_file():
            continue
        found[rel] = {"size": path.stat().st_size, "sha256": file_sha256(path, follow=False)}
    return found


def track_files(out_dir: Path, folder: str, sidecar: str, checksums: Any, *,
                trust_mtime: bool) -> dict[str, dict[str, Any]] | None:
    """The manifest's `files` of one track (paths relative to out_dir), from its sidecar's checksums
    and the sidecar itself; None when the checksums are missing or malformed. trust_mtime=False (a
    manifest rebuilt from sidecars) makes the next check hash the audio once."""
    if not isinstance(checksums, dict):
        return None
    files: dict[str, dict[str, Any]] = {}
    for rel, entry in checksums.items():
        if not (is_safe_relative(rel) and isinstance(entry, dict) and _is_size(entry.get("size"))
                and _is_sha256(entry.get("sha256"))):
            return None
        path = f"{folder}/{rel}"
        files[path] = {"size": entry["size"], "sha256": entry["sha256"], "mtime_ns": None}
        if trust_mtime:
            files[path]["mtime_ns"] = _mtime_ns(out_dir / path)
    info = os.lstat(out_dir / sidecar)
    files[sidecar] = {"size": info.st_size, "sha256": file_sha256(out_dir / sidecar, follow=False),
                      "mtime_ns": info.st_mtime_ns}
    return files


def damage(out_dir: Path, files: Any) -> str | None:
    """What is wrong with a finished track's files ("x.mid is missing"), or None when all is intact.

    A file whose audio was hashed because its mtime changed, and matched, gets its new mtime
    recorded in `files` (the caller saves the manifest), so it is not hashed again next time.
    """
    if not isinstance(files, dict) or not files:
        return "no file checksums (made by an older gen)"
    for rel, entry in files.items():
        if not (is_safe_relative(rel) and isinstance(entry, dict) and _is_size(entry.get("size"))):
            return f"the manifest's entry for {rel!r} is malformed"
        path = out_dir / rel
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return f"{rel} is missing"
        except OSError as error:
            return f"{rel} cannot be read ({error.strerror})"
        if not stat.S_ISREG(info.st_mode):
            return f"{rel} is not a regular file"
        if info.st_size != entry["size"]:
            return f"{rel} has {info.st_size} bytes, not {entry['size']}"
        if rel.endswith(AUDIO_SUFFIXES) and info.st_mtime_ns == entry.get("mtime_ns"):
            continue
        try:
            if file_sha256(path, follow=False) != entry.get("sha256"):
                return f"{rel} has other content than it was written with"
        except OSError as error:
            return f"{rel} cannot be read ({error.strerror or error})"
        entry["mtime_ns"] = info.st_mtime_ns
    return None


def _mtime_ns(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mtime_ns
    except OSError:
        return None


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
