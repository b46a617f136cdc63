"""Where the project's own files live: the one place that knows the folder layout."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the folder holding generator/
SHIPPED_CHECKPOINT = PROJECT_ROOT / "models" / "gen-small.pt"
SOUNDFONT_DIR = PROJECT_ROOT / "soundfonts"
