"""Atomic file writes: a temp file beside the target, fsync, then rename over it.

Every file gen writes goes through here, so each gets the same guarantees: readers see the old file
or the whole new one, never a part; a failure (any BaseException, Ctrl-C included) removes the temp
file; and the file ends with the mode a plain open() gives (0o666 less the umask, 0644 under 022),
so a delivered library is readable by other users and a web server serving its catalogue.

The mode comes from the kernel: the temp file is created with 0o666 and the kernel applies the
umask, so the umask is never read by changing it (os.umask(0) races with other threads' writes).
mkstemp is not used because it makes 0600 files.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _new_temp(path: Path) -> Path:
    """Create an empty temp file beside `path` that keeps its suffix (pedalboard, numpy pick the format by it)."""
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path` for writers that want a path (soundfile, torch.save, mutagen).

    On success the temp file is fsynced, given the umask's mode and renamed over `path`; on any
    failure it is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        # Kept now, because a writer may delete and recreate the file with a mode of its own.
        mode = stat.S_IMODE(tmp.stat().st_mode)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` so that readers see the old file or the whole new one, never a part."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` as UTF-8 so that readers see the old file or the whole new one, never a part."""
    atomic_write_bytes(path, text.encode("utf-8"))


def install_folder(staging: str | Path, final: str | Path) -> None:
    """Rename a finished staging folder to `final`, replacing an older `final` as a whole.

    The old folder is moved aside first and put back if the rename fails, so `final` is never lost.
    """
    staging, final = Path(staging), Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    try:
        os.replace(staging, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
