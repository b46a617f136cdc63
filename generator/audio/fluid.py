"""The one place pyfluidsynth is imported.

pyfluidsynth 1.4 prints "'fluidsynth' was found at ..." to stdout when it is imported and the
environment variable CI is set. pretty_midi imports it too, so that line would land in the middle
of `gen ... --json` output (and a second line in a one-line error). Importing it here first and
discarding that line keeps stdout and stderr for the command's own output; later imports reuse the
loaded module and print nothing.
"""

from __future__ import annotations

import contextlib
import io
from types import ModuleType


def import_fluidsynth() -> ModuleType:
    """pyfluidsynth, loaded without writing to stdout; ImportError when libfluidsynth is missing."""
    with contextlib.redirect_stdout(io.StringIO()):
        import fluidsynth
    return fluidsynth


def preload_fluidsynth() -> None:
    """Load pyfluidsynth quietly if it can be loaded, before anything imports pretty_midi."""
    with contextlib.suppress(ImportError, OSError):
        import_fluidsynth()
