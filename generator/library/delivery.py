"""What a delivered track says about itself: its mood, keywords and description.

The tags of every audio file (library/tags.py) and the upload sheet (library/sheet.py) both come
from these, through the sidecar, so the files and the sheet always agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generator.library.recipe import Recipe

COVER_NAME = "cover.png"


def track_words(recipe: Recipe, genre: str, instruments: list[str], bpm: float | None,
                key: str | None) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """(mood, keywords, description) of one track: the genre's moods from the recipe, keywords
    from the genre, moods, instruments and the recipe's `library.keywords` (each once), and one
    sentence a store can show."""
    mood = recipe.library.moods.get(genre, ())
    keywords = tuple(dict.fromkeys(w.lower() for w in (genre, *mood, *instruments, *recipe.library.keywords)))
    return mood, keywords, describe(genre, mood, instruments, bpm, key)


def describe(genre: str, mood: tuple[str, ...], instruments: list[str], bpm: float | None, key: str | None) -> str:
    """'Relaxed, warm jazz with piano, bass and drums, 96 BPM, in A minor.'"""
    words = ", ".join(mood)
    head = f"{words.capitalize()} {genre}" if words else genre.capitalize()
    names = [i.replace("_", " ") for i in instruments]
    if names:
        head += " with " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}")
    parts = [head]
    if bpm is not None:
        parts.append(f"{round(bpm)} BPM")
    if key:
        parts.append(f"in {key}")
    return ", ".join(parts) + "."
