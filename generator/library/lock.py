"""The output folder's lock: one gen batch writes to a folder at a time.

The lock file is opened without following a link (O_NOFOLLOW) and used only if it is a regular
file with one name: a `.gen.lock` that is a link, a folder, a FIFO, a device or a hard link to
another file is refused, never written through. A run removes its lock file when it ends, so a
finished library holds none; a run killed before that leaves it, unlocked, for the next run.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from generator.errors import InputError, LockedError
from generator.files import file_kind

LOCK_NAME = ".gen.lock"


class OutputLock:
    """An exclusive advisory lock on the output folder; the kernel drops it if the process dies."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise LockedError(
                    f"{self.path.parent}: another gen batch ({holder}) is writing to this folder; "
                    "wait for it to finish or choose another --out"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            if self._names(fd):
                break
            # The holder we waited on removed this file as it finished: lock the one at the path now.
            os.close(fd)
        else:
            raise LockedError(f"{self.path}: the lock file keeps being replaced; is another program "
                              "deleting it? Choose another --out")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._fd = fd
        return self

    def _names(self, fd: int) -> bool:
        """Whether the lock path still names the file open at `fd` (not removed or replaced since)."""
        try:
            at_path = os.lstat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)

    def _open(self) -> int:
        """The lock file's descriptor: created if missing, never through a link, never truncated here."""
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):  # refused before opening: a device is never opened
            self._refuse(mode)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError:  # ELOOP: a link put there since; EISDIR: a folder
            if os.path.islink(self.path) or os.path.isdir(self.path):
                self._refuse(os.lstat(self.path).st_mode)
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            self._refuse(info.st_mode, hard_link=stat.S_ISREG(info.st_mode))
        return fd

    def _refuse(self, mode: int, hard_link: bool = False) -> None:
        kind = "a hard link to another file" if hard_link else file_kind(mode)
        raise InputError(f"{self.path}: the lock file is {kind}, not gen's own; gen never writes through it. "
                         "Remove it (gen makes a new one) or choose another --out")

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            if self._names(self._fd):  # removed while still held, so no one can lock a file on its way out
                self.path.unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
