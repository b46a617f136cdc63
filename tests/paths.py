"""What the tests share about their surroundings: Sber's vectors, copied into the repo,
and the environment the `gen` subprocesses run in."""

import os
from pathlib import Path

VECTORS = Path(__file__).resolve().parent / "vectors"
SBER_MIDI = VECTORS / "sber_midi"

# CI machines set CI=1, which makes pyfluidsynth print a line to stdout on import; running every
# `gen` subprocess with it set makes local runs meet what CI meets.
CI_ENV = {**os.environ, "CI": "1"}
