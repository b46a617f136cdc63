"""Where the tests find their real inputs: the seed system's vectors, copied into the repo."""

from pathlib import Path

VECTORS = Path(__file__).resolve().parent / "vectors"
SEED_MIDI = VECTORS / "seed_midi"
