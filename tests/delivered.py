"""What the delivery tests ask of finished files: what other tools read of their tags and loudness, what may
not stay."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path


def ffprobe_tags(path: Path) -> dict[str, str]:
    """The format tags ffprobe reads from a file, keys lower-cased."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return {k.lower(): v for k, v in json.loads(out)["format"].get("tags", {}).items()}


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of an audio file, from ffmpeg's ebur128 summary: a meter of its own."""
    log = subprocess.run(["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-filter_complex",
                          "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    summary = log[log.rindex("Summary:"):]
    lufs = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return lufs, peak


def leftovers(out: Path) -> list[str]:
    """Lock, temp, partial and staging files under `out`: none may stay once gen has stopped."""
    return [p.relative_to(out).as_posix() for p in out.rglob("*")
            if p.name.startswith(".") or p.suffix in (".tmp", ".part", ".lock", ".partial")]
