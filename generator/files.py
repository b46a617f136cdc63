"""Atomic file writes: a temp file beside the target, fsync, then rename over it.

Every file gen writes goes through here, so each gets the same guarantees: readers see the old file
or the whole new one, never a part; a failure (any BaseException, Ctrl-C included) removes the temp
file; and the file ends with the mode a plain open() gives (0o666 less the umask, 0644 under 022),
so a delivered library is readable by other users and a web server serving its catalogue.

The mode comes from the kernel: the temp file is created with 0o666 and the kernel applies the
umask, so the umask is never read by changing it (os.umask(0) races with other threads' writes).
mkstemp is not used because it makes 0600 files.

Reads of user-supplied or folder-found files go through `read_bytes_bounded`: only a regular file
is read (a FIFO, a device, a folder is refused before it can block or stream forever), and at most
a stated number of bytes, whatever size the file reports.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from generator.errors import InputError

# The temp names _new_temp makes: ".<name>.<8 hex>.tmp<suffix of name>"; nothing else matches.
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.tmp(?P<suffix>\.[^.]*)?")


class FileRefused(InputError):
    """A file that is not a regular file, or larger than its limit: refused before it is read."""

    def __init__(self, path: str | Path, what: str, problem: str, fix: str):
        self.path, self.what, self.problem, self.fix = str(path), what, problem, fix
        super().__init__(f"{path}: {what} {problem}; {fix}")


def file_kind(mode: int) -> str:
    """What kind of file a stat mode is, in words ("a named pipe (FIFO)", "a folder", ...)."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "not a regular file"


def _refuse_kind(path: str | Path, what: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise FileRefused(path, what, f"is {file_kind(mode)}, not a regular file", f"give the path of a {what}")


def open_regular(path: str | Path, what: str, *, follow_links: bool = True) -> int:
    """A read-only descriptor of `path` if it is a regular file, else FileRefused; OSError as it comes.

    The kind is checked before opening (a device is never opened, a FIFO never waited on) and again
    on the open descriptor, which is opened non-blocking so that a file swapped for a FIFO in between
    cannot block either. `follow_links=False` refuses a symbolic link (files found in a folder).
    """
    mode = (os.stat(path) if follow_links else os.lstat(path)).st_mode
    _refuse_kind(path, what, mode)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        _refuse_kind(path, what, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes_bounded(path: str | Path, max_bytes: int, what: str, *, follow_links: bool = True) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them, whatever size it reports.

    Raises FileRefused (an InputError, exit code 2) naming the file and the limit for a file that is
    not a regular file or holds more than `max_bytes`; OSError (missing, no permission) as it comes.
    """
    fd = open_regular(path, what, follow_links=follow_links)
    chunks, size = [], 0
    try:
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > max_bytes:
        raise FileRefused(path, what, f"is larger than {format_bytes(max_bytes)}",
                          f"the limit for a {what} is {format_bytes(max_bytes)}")
    return b"".join(chunks)


def format_bytes(n: int) -> str:
    """1048576 -> '1 MiB'; exact binary units where they fit, bytes otherwise."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def is_temp_name(name: str) -> bool:
    """Whether `name` is a temp file name that atomic_path makes (and nothing else)."""
    match = _TEMP_NAME.fullmatch(name)
    return match is not None and Path(match["name"]).suffix == (match["suffix"] or "")


def remove_temps(folder: str | Path) -> list[Path]:
    """Remove the temp files an interrupted atomic write left directly in `folder`; returns them.

    Only regular files with atomic_path's temp names are removed; links and folders are left alone,
    and nothing is followed. Call it only where no other writer is at work (under the output lock).
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(Path(entry.path))
    return removed


def _new_temp(path: Path) -> Path:
    """Create an empty temp file beside `path` that keeps its suffix (pedalboard, numpy pick the format by it)."""
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
            return tmp
        except FileExistsError:
            continue


# What a failed write means, and the fix, by errno: one line for the user instead of a traceback.
_WRITE_FAILURES = {
    errno.ENOSPC: ("no space left on device", "free space or choose another output folder"),
    errno.EDQUOT: ("disk quota exceeded", "free space or choose another output folder"),
    errno.EROFS: ("read-only file system", "choose another output folder"),
    errno.EACCES: ("permission denied", "make the folder writable or choose another output folder"),
    errno.EPERM: ("operation not permitted (an immutable or protected folder?)",
                  "check `lsattr`/permissions or choose another output folder"),
    errno.EIO: ("input/output error (a failing disk or a lost network mount?)",
                "check the disk or choose another output folder"),
    errno.ENOTDIR: ("a file stands where a folder is needed", "choose another output folder"),
    errno.EEXIST: ("a file stands where a folder is needed", "choose another output folder"),
    errno.EISDIR: ("a folder stands where a file is needed", "name a file, not a folder"),
    errno.ENOENT: ("a folder on the path is missing or cannot be made there",
                   "choose an output folder on a normal disk"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter output path"),
}
_STAGING = re.compile(r"/\.partial-([^/]+)-\d+-[0-9a-f]{8}/")  # export's staging folder of a track
# Below this much free space an encoder's errno-less failure is taken for a full disk.
NEARLY_FULL_BYTES = 16 << 20


def write_failure(error: OSError, fallback: str | Path | None = None) -> str:
    """`PATH: cause: fix` for an OSError raised while writing, for a one-line user error."""
    path = str(error.filename or fallback or "output")
    folder, slash, name = path.rpartition("/")
    if is_temp_name(name):  # the file meant, not its temp
        name = _TEMP_NAME.fullmatch(name)["name"]
    path = _STAGING.sub(r"/\1/", folder + slash + name)  # and not its track's staging folder
    cause, fix = _WRITE_FAILURES.get(error.errno, (error.strerror or str(error) or type(error).__name__,
                                                   "check the output folder or choose another one"))
    return f"{path}: cannot write: {cause}: {fix}"


def encoder_failure(path: str | Path, error: Exception) -> OSError:
    """An encoder's failure to write `path` as an OSError. libsndfile and LAME report a full disk
    as a bare 'System error.' without an errno, so the free space beside the file decides."""
    try:
        full = shutil.disk_usage(Path(path).parent).free < NEARLY_FULL_BYTES
    except OSError:
        full = False
    code = errno.ENOSPC if full else errno.EIO
    return OSError(code, f"{os.strerror(code)} ({error})", str(path))


def probe_writable(path: str | Path) -> None:
    """Raise the OSError that writing the file `path` would meet, before any work is done: the
    nearest existing folder on its way must be a folder that takes a new file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    try:
        _new_temp(folder / path.name).unlink()
    except OSError as error:
        error.filename = str(path)
        raise


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
    if os.path.lexists(final):  # a link in its place is moved aside itself, never followed
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    try:
        os.replace(staging, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        if old.is_symlink():
            old.unlink()
        else:
            shutil.rmtree(old, ignore_errors=True)


class NotARegularFile(OSError):
    """A path that should be a plain file is a folder, a link, a device or a pipe."""


def file_sha256(path: str | Path, *, follow: bool = True) -> str:
    """SHA-256 of a regular file, read in 1 MiB chunks (a SoundFont may be hundreds of MB).

    follow=False refuses a link (a library's own files are never links); a pipe or device is
    refused either way, without blocking on it.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise NotARegularFile(f"{path} is not a regular file")
        digest = hashlib.sha256()
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
