"""Transposing a finished piece as token ids, for any encoding (a recipe's `key`, library/keys.py).

augment_ids (tokenizer.py) also transposes, but it re-emits the canonical default encoding and
scales time, which is for training windows; this keeps every token where it is and only renames
pitches, so times, velocities, bars and every other token come through untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

from generator.tokens import chords, vocab
from generator.tokens.encoding import Encoding


def transpose_ids(ids: Sequence[int], semitones: int, encoding: Encoding) -> list[int]:
    """Every pitched NOTE_ON/NOTE_OFF moved by `semitones`; drum notes and all other tokens stay.

    The family of each note is followed through the INSTRUMENT tokens (an encoding without them is
    all pitched; a stream starts in family 0, piano, as the decoders do). A note pushed out of
    0..127 is dropped, its NOTE_ON and NOTE_OFF alike (as augment_ids does); a generated piece
    within the default pitch range [21, 96] never is, since a key change moves at most 6.
    The beat encoding's CHORD tokens move their root with the notes (CHORD(N.C.) stays). Training
    augments beat windows with this too.
    """
    shift = int(semitones)
    instruments = encoding.instrument_ids
    family, out = 0, []
    for token in ids:
        t = int(token)
        if instruments is not None and instruments.start <= t < instruments.stop:
            family = t - vocab.INSTRUMENT
        elif vocab.NOTE_ON <= t < vocab.VELOCITY and family != vocab.DRUMS_FAMILY and shift:
            base = vocab.NOTE_ON if t < vocab.NOTE_OFF else vocab.NOTE_OFF
            pitch = t - base + shift
            if not 0 <= pitch < vocab.N_PITCHES:
                continue
            t = base + pitch
        elif encoding.has_bars and vocab.CHORD <= t < vocab.CHORD_NONE:
            t = vocab.CHORD + chords.transpose_chord(t - vocab.CHORD, shift)
        out.append(t)
    return out
