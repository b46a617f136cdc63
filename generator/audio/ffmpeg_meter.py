"""ffmpeg's EBU R128 meter, a meter we did not write: what a user's tools read of a delivered file.

Not used to make anything: audio/master.py measures with its own meter (pyloudnorm and a 4x
oversampled true peak). The tests (tests/test_master.py, tests/test_edits.py) and
bench/quality_library.py hold delivered files to what ffmpeg measures. Needs the ffmpeg program.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of an audio file, from ffmpeg's ebur128 summary: a meter of its own."""
    log = subprocess.run(["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-filter_complex",
                          "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    summary = log[log.rindex("Summary:"):]
    lufs = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return lufs, peak
