"""ffmpeg's EBU R128 meter, a meter we did not write: what a user's tools read of a delivered file.

Not used to make anything: audio/master.py measures with its own meter (pyloudnorm and a 4x
oversampled true peak). The tests (tests/test_master.py, tests/test_edits.py) and
bench/quality_library.py hold delivered files to what ffmpeg measures. Needs the ffmpeg program.
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of an audio file, by ffmpeg's ebur128 filter (peak=true: 4x
    oversampled). Its printed summary rounds both to 0.1, too coarse to compare a tag to within 0.1 LU,
    so they are read from the metadata the filter attaches to each 100 ms frame, the last frame's
    (the integrated loudness in LUFS to 0.001, the true peak as a linear level to 0.001)."""
    out = subprocess.run(["ffmpeg", "-nostdin", "-nostats", "-hide_banner", "-i", str(path), "-filter_complex",
                          "ebur128=peak=true:metadata=1,ametadata=print:file=-", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stdout
    lufs = re.findall(r"^lavfi\.r128\.I=(\S+)$", out, re.MULTILINE)
    peak = re.findall(r"^lavfi\.r128\.true_peak=(\S+)$", out, re.MULTILINE)
    if not lufs or not peak:
        raise ValueError(f"{path}: ffmpeg's ebur128 filter reported no loudness")
    linear = float(peak[-1])
    return float(lufs[-1]), 20 * math.log10(linear) if linear > 0 else -math.inf
