"""Where the project's own files live: the one place that knows the folder layout."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the folder holding generator/
SHIPPED_CHECKPOINT = PROJECT_ROOT / "models" / "gen-small.pt"
SOUNDFONT_DIR = PROJECT_ROOT / "soundfonts"

# The committed corpus builds, one per encoding (relative: commands run from the project root).
CORPUS_DIRS = {"default": Path("data"), "beat": Path("data/beat")}
DEFAULT_ENCODING = "beat"  # what `gen train` builds and the shipped model reads


def corpus_dir(encoding_name: str) -> Path:
    """The committed corpus in an encoding (its shards hold that encoding's ids); the default build for
    encodings without one of their own (Sber's format)."""
    return CORPUS_DIRS.get(encoding_name, CORPUS_DIRS["default"])
