"""What the delivery tests ask of finished files: what other tools read of their tags, what may not stay.
(What ffmpeg measures of their loudness: generator/audio/ffmpeg_meter.py.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def ffprobe_tags(path: Path) -> dict[str, str]:
    """The format tags ffprobe reads from a file, keys lower-cased."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return {k.lower(): v for k, v in json.loads(out)["format"].get("tags", {}).items()}


def leftovers(out: Path) -> list[str]:
    """Lock, temp, partial and staging files under `out`: none may stay once gen has stopped."""
    return [p.relative_to(out).as_posix() for p in out.rglob("*")
            if p.name.startswith(".") or p.suffix in (".tmp", ".part", ".lock", ".partial")]
