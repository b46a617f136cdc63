"""The output folder's lock: one gen batch writes to a folder at a time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from generator.errors import LockedError

LOCK_NAME = ".gen.lock"


class OutputLock:
    """An exclusive advisory lock on the output folder; the kernel drops it if the process dies."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_NAME
        self._handle = None

    def __enter__(self) -> OutputLock:
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
