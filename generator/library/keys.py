"""Musical keys for recipes: 'F# minor' <-> Key, and how far to move a piece to reach a requested key.

The rule (docs/recipes.md, `key`): a piece keeps its own mode. When the requested key has the same
mode, its tonic moves to the requested tonic; when the modes differ, it moves to the tonic of the
requested key's relative key (a minor piece asked for C major goes to A minor, a major piece asked
for A minor goes to C major), so the piece ends up with the requested key signature either way. The
move is the smallest one, -6..+5 semitones. The label a track carries is always the key estimated
from its output, never the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generator.tokens.encoding import Encoding

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # as estimate_key spells them
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# 'C', 'Am', 'F# minor', 'Eb major', 'Bbm', 'c# min': a lone 'm' means minor, a lone 'M' is not accepted.
_KEY = re.compile(r"^\s*([A-Ga-g])\s*([#b♯♭]?)\s*(m|(?i:min|minor|maj|major))?\s*$")


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0..11, C = 0
    minor: bool

    @property
    def name(self) -> str:
        """'F# minor', 'Eb major': the spelling of estimate_key."""
        return f"{PITCH_NAMES[self.tonic]} {'minor' if self.minor else 'major'}"

    @property
    def relative(self) -> Key:
        """The key with the same signature and the other mode (C major <-> A minor)."""
        return Key((self.tonic + (3 if self.minor else 9)) % 12, not self.minor)


def parse_key(text: str) -> Key | None:
    """'Am' -> Key(9, True), 'Eb major' -> Key(3, False), 'C' -> C major; None when it is no key."""
    match = _KEY.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    letter, accidental, mode = match.groups()
    shift = {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)
    minor = mode is not None and (mode == "m" or mode.lower().startswith("min"))
    return Key((_LETTERS[letter.upper()] + shift) % 12, minor)


def semitones_to(piece: Key, requested: Key) -> int:
    """The move, -6..+5 semitones, that takes `piece` to `requested` (or to its relative key when
    the modes differ: the piece keeps its mode)."""
    target = requested if requested.minor == piece.minor else requested.relative
    return (target.tonic - piece.tonic + 6) % 12 - 6


def estimated_key(ids: Sequence[int], encoding: Encoding) -> Key | None:
    """The key of a token sequence (Krumhansl-Schmuckler on its pitched notes); None without pitches."""
    from generator.eval.features import estimate_key

    name = estimate_key(encoding.decode(ids))
    return None if name is None else parse_key(name)


def to_key(ids: Sequence[int], requested: Key, encoding: Encoding) -> tuple[list[int], int]:
    """The piece moved to the requested key (pitched notes only, drums stay) and the semitones it
    moved; a piece without a key (no pitched notes) is left as it is."""
    from generator.tokens.transpose import transpose_ids

    piece = estimated_key(ids, encoding)
    if piece is None:
        return list(ids), 0
    semitones = semitones_to(piece, requested)
    return transpose_ids(ids, semitones, encoding), semitones
