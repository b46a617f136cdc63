"""Chord symbols: parse chart spellings, name them for mma, and list their pitch classes.

Used by corpus preparation to turn chord charts (harmony facts) into accompaniment, lead lines and
pads. Only harmony is handled here; no melody of any chart is known or reproduced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ROOTS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

# chart suffix -> (mma suffix, intervals above the root). Checked against mma 21.09.
_QUALITIES: dict[str, tuple[str, tuple[int, ...]]] = {
    "": ("", (0, 4, 7)),
    "m": ("m", (0, 3, 7)),
    "-": ("m", (0, 3, 7)),
    "7": ("7", (0, 4, 7, 10)),
    "m7": ("m7", (0, 3, 7, 10)),
    "-7": ("m7", (0, 3, 7, 10)),
    "maj7": ("maj7", (0, 4, 7, 11)),
    "^7": ("maj7", (0, 4, 7, 11)),
    "6": ("6", (0, 4, 7, 9)),
    "m6": ("m6", (0, 3, 7, 9)),
    "7b9": ("7b9", (0, 4, 7, 10, 13)),
    "m7b5": ("m7b5", (0, 3, 6, 10)),
    "h7": ("m7b5", (0, 3, 6, 10)),
    "07": ("dim7", (0, 3, 6, 9)),
    "o7": ("dim7", (0, 3, 6, 9)),
    "dim7": ("dim7", (0, 3, 6, 9)),
    "0": ("dim", (0, 3, 6)),
    "o": ("dim", (0, 3, 6)),
    "dim": ("dim", (0, 3, 6)),
    "7sus": ("7sus", (0, 5, 7, 10)),
    "7#11": ("7#11", (0, 4, 7, 10, 18)),
    "7#9": ("7#9", (0, 4, 7, 10, 15)),
    "7#5": ("7#5", (0, 4, 8, 10)),
    "maj7#11": ("M7#11", (0, 4, 7, 11, 18)),
    "7b13": ("7b13", (0, 4, 7, 10, 20)),
    "9": ("9", (0, 4, 7, 10, 14)),
    "m9": ("m9", (0, 3, 7, 10, 14)),
    "13": ("13", (0, 4, 7, 10, 14, 21)),
    "m11": ("m11", (0, 3, 7, 10, 14, 17)),
    "m/maj7": ("mM7", (0, 3, 7, 11)),
    "7alt": ("7alt", (0, 4, 10, 13, 15, 20)),
    "69": ("69", (0, 4, 7, 9, 14)),
    "9sus": ("9sus", (0, 5, 7, 10, 14)),
    "maj9": ("maj9", (0, 4, 7, 11, 14)),
    "7b5": ("7b5", (0, 4, 6, 10)),
    "13b9": ("13b9", (0, 4, 7, 10, 13, 21)),
    "9#11": ("9#11", (0, 4, 7, 10, 14, 18)),
    "7b9sus": ("7b9sus", (0, 5, 7, 10, 13)),
    "mb6": ("m#5", (0, 3, 8)),
    "aug": ("aug", (0, 4, 8)),
    "+": ("aug", (0, 4, 8)),
    "13sus": ("13sus", (0, 5, 7, 10, 14, 21)),
    "7#5#9": ("7#5#9", (0, 4, 8, 10, 15)),
    "7b9#5": ("7#5b9", (0, 4, 8, 10, 13)),
    "7b5b9": ("7b5b9", (0, 4, 6, 10, 13)),
    "sus": ("sus4", (0, 5, 7)),
    "add9": ("add9", (0, 4, 7, 14)),
    "m69": ("m69", (0, 3, 7, 9, 14)),
    "maug": ("m#5", (0, 3, 8)),
    "m7b9": ("m7b9", (0, 3, 7, 10, 13)),
    "maj7#5": ("M7#5", (0, 4, 8, 11)),
    "13#11": ("13#11", (0, 4, 7, 10, 14, 18, 21)),
    "7#9#11": ("7#9#11", (0, 4, 7, 10, 15, 18)),
    "9b5": ("9b5", (0, 4, 6, 10, 14)),
    "9#5": ("9#5", (0, 4, 8, 10, 14)),
    "maj13": ("maj13", (0, 4, 7, 11, 14, 21)),
    "7b5#9": ("7b5#9", (0, 4, 6, 10, 15)),
    "maj9#11": ("M9#11", (0, 4, 7, 11, 14, 18)),
    "7b9#11": ("7b9#11", (0, 4, 7, 10, 13, 18)),
    "7b9b13": ("7b9", (0, 4, 7, 10, 13, 20)),
    "7b13sus": ("7sus", (0, 5, 7, 10, 20)),
    "m7#5": ("m#5", (0, 3, 8, 10)),
    "sus4": ("sus4", (0, 5, 7)),
    "sus2": ("sus2", (0, 2, 7)),
    "m9/maj7": ("mM7", (0, 3, 7, 11, 14)),
    "m11b5": ("m7b5", (0, 3, 6, 10, 17)),
    "maj": ("", (0, 4, 7)),
    "M": ("", (0, 4, 7)),
}
_SUFFIXES_LONGEST_FIRST = sorted(_QUALITIES, key=len, reverse=True)
_CHORD_RE = re.compile(r"^([A-G])([b#]?)([^/]*)(?:/([A-G])([b#]?))?$")


@dataclass(frozen=True)
class Chord:
    """A chord: root pitch class, quality suffix (a key of _QUALITIES), optional bass pitch class."""

    root: int
    quality: str
    bass: int | None = None

    @property
    def intervals(self) -> tuple[int, ...]:
        return _QUALITIES[self.quality][1]

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        return tuple(sorted({(self.root + i) % 12 for i in self.intervals}))

    @property
    def is_minor(self) -> bool:
        return 3 in self.intervals and 4 not in self.intervals

    def transposed(self, semitones: int) -> Chord:
        bass = None if self.bass is None else (self.bass + semitones) % 12
        return Chord((self.root + semitones) % 12, self.quality, bass)

    def mma_name(self) -> str:
        name = _NAMES_FLAT[self.root] + _QUALITIES[self.quality][0]
        if self.bass is not None and self.bass != self.root:
            name += "/" + _NAMES_FLAT[self.bass]
        return name


def _pitch_class(letter: str, accidental: str) -> int:
    return (_ROOTS[letter] + {"": 0, "b": -1, "#": 1}[accidental]) % 12


def parse_chord(symbol: str) -> Chord | None:
    """'Cm7b5/Gb' -> Chord; an alternate in parentheses is dropped; None when not a chord."""
    text = re.sub(r"\(.*?\)", "", symbol).strip()
    match = _CHORD_RE.match(text)
    if not match:
        return None
    letter, accidental, suffix, bass_letter, bass_accidental = match.groups()
    quality = next((s for s in _SUFFIXES_LONGEST_FIRST if suffix.startswith(s)), "")
    if suffix and quality == "" and suffix[0] not in "/(":
        # An unknown spelling: keep the triad implied by its first letter.
        quality = "m" if suffix.startswith(("m", "-")) else ""
    bass = _pitch_class(bass_letter, bass_accidental) if bass_letter else None
    return Chord(_pitch_class(letter, accidental), quality, bass)


def chord_from_pitch_classes(pcs: set[int], bass_pc: int | None = None) -> Chord | None:
    """The triad or seventh chord that best explains a set of sounding pitch classes."""
    if not pcs:
        return None
    best: tuple[float, Chord] | None = None
    for quality in ("", "m", "7", "m7", "maj7", "dim", "6", "m6", "sus4"):
        for root in range(12):
            chord_pcs = {(root + i) % 12 for i in _QUALITIES[quality][1]}
            score = len(pcs & chord_pcs) - 0.6 * len(pcs - chord_pcs) - 0.3 * len(chord_pcs - pcs)
            score += 0.25 if root == bass_pc else 0.0
            score -= 0.05 * len(chord_pcs)
            if best is None or score > best[0]:
                best = (score, Chord(root, quality))
    return best[1] if best else None
