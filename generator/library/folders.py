"""Which folders a library may be written to (gen batch) or listed from (gen catalogue).

The rule (docs/recipes.md, `output`), applied to the folder with every link resolved:
- refused: the filesystem root and every folder directly under it (/tmp, /home, /srv, /mnt ...:
  each holds other people's or other programs' files); the home folder and every folder above it;
  everything in a system tree (/etc, /usr, /bin, /sbin, /lib*, /boot, /dev, /proc, /sys, /run,
  /var), except what lies below /var/tmp, /var/www, /usr/src, /usr/local/src, a home folder inside
  /var (a service account's, e.g. /var/lib/jenkins) or the working folder when that is at least
  three levels deep (a project checked out at /usr/src/app or /var/lib/ci/build/job works in place);
  an existing path that is not a folder.
- allowed: everything else, e.g. output/cafe_jazz, /srv/music/cafe, ~/music/cafe, /tmp/x/lib.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from generator.errors import InputError
from generator.files import file_kind

SYSTEM_TREES = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev",
                "/proc", "/sys", "/run", "/var")
OPEN_BELOW = ("/var/tmp", "/var/www", "/usr/src", "/usr/local/src")  # inside a system tree, meant for users' files


def refusal(path: str | Path) -> str | None:
    """Why a library must not live in `path` (already resolved, absolute), or None if it may."""
    pure = PurePosixPath(path)
    if len(pure.parts) <= 1:
        return "is the filesystem root"
    home = _home()
    open_below = [PurePosixPath(p) for p in OPEN_BELOW]
    if home is not None and home.is_relative_to("/var"):  # a service account's home, e.g. /var/lib/jenkins
        open_below.append(home)
    work = _working_folder()
    if work is not None and len(work.parts) > 3:  # a project that lives there, e.g. /usr/src/app
        open_below.append(work)
    if any(pure.is_relative_to(below) and pure != below for below in open_below):
        return None
    for tree in SYSTEM_TREES:
        if pure.is_relative_to(tree):
            where = "is" if pure == PurePosixPath(tree) else "is inside"
            return f"{where} the system folder {tree}"
    if len(pure.parts) == 2:
        return "is a top-level folder of the filesystem"
    if home is not None and home.is_relative_to(pure):
        return "is the home folder" if home == pure else "holds the home folder"
    return None


def _working_folder() -> PurePosixPath | None:
    try:
        return PurePosixPath(Path.cwd().resolve())
    except OSError:
        return None


def _home() -> PurePosixPath | None:
    try:
        return PurePosixPath(Path.home().resolve())
    except (RuntimeError, KeyError, OSError):
        return None


def folder_problem(path: str | Path) -> tuple[Path, str | None]:
    """(`path` resolved, links followed; why a library must not be written to or listed from it, or None)."""
    raw = Path(os.path.expanduser(str(path)))
    try:
        resolved = raw.resolve()
        mode = resolved.stat().st_mode if resolved.exists() else None
    except (OSError, RuntimeError) as error:  # a link loop, a folder we may not look into
        return raw, f"cannot be looked up ({error})"
    reason = refusal(resolved)
    if reason is not None:
        return resolved, f"{reason}, where gen must not write or list files"
    if mode is not None and not stat.S_ISDIR(mode):
        return resolved, f"is {file_kind(mode)}, not a folder"
    return resolved, None


FOLDER_FIX = "choose a folder of its own, e.g. output/cafe_jazz or /srv/music/cafe"


def check_library_folder(path: str | Path, role: str = "output folder") -> Path:
    """`path` resolved (links followed) if a library may be written to or listed from it; else
    InputError (exit code 2) naming the folder, the reason and the fix."""
    resolved, problem = folder_problem(path)
    if problem is not None:
        shown = str(path) if str(resolved) == str(path) else f"{path} (= {resolved})"
        raise InputError(f"{shown}: the {role} {problem}; {FOLDER_FIX}")
    return resolved
