"""Token ids and their names.

Ids 0..393 are Sber's vocabulary (Sber AI music-composer, after Huang et al. 2018) and
keep their meaning in every encoding. Our default encoding appends INSTRUMENT tokens after 393 so
that one sequence can carry several instruments (and so real stems).
"""

from __future__ import annotations

import math

NOTE_ON = 0  # 0..127: NOTE_ON(pitch)
NOTE_OFF = 128  # 128..255: NOTE_OFF(pitch)
VELOCITY = 256  # 256..287: VELOCITY(bin), 32 bins of 4
TIME_SHIFT = 288  # 288..387: TIME_SHIFT((k + 1) * 10 ms), 10..1000 ms
END = 388
PAD = 389
# The prefix of an unconditioned window: genre dropout in training, the rows that classifier-free
# genre guidance contrasts with when sampling. PAD is never a target, so it can serve.
NO_GENRE = PAD
GENRE = 390  # 390 classic, 391 jazz, 392 calm, 393 pop
INSTRUMENT = 394  # 394..410: INSTRUMENT(family), see INSTRUMENT_FAMILIES

N_PITCHES = 128
N_VELOCITY_BINS = 32
N_TIME_SHIFTS = 100
TIME_SHIFT_STEP_MS = 10
MAX_TIME_SHIFT_MS = N_TIME_SHIFTS * TIME_SHIFT_STEP_MS

GENRES: tuple[str, ...] = ("classic", "jazz", "calm", "pop")
GENRE_ALIASES = {"classical": "classic", "ambient": "calm"}

# General MIDI program families (program // 8) plus one for the drum kit (channel 10).
INSTRUMENT_FAMILIES: tuple[str, ...] = (
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive",
    "sound_effects", "drums",
)
DRUMS_FAMILY = INSTRUMENT_FAMILIES.index("drums")
N_INSTRUMENTS = len(INSTRUMENT_FAMILIES)

SBER_VOCAB_SIZE = 394
VOCAB_SIZE = INSTRUMENT + N_INSTRUMENTS  # 411

# The beat encoding (docs/vocabulary.md, "Beat time") appends bars, meters and chords. Its
# TIME_SHIFT(k) advances k + 1 steps of 1/48 beat (a quarter note): 10 ms at the reference tempo.
BAR = 411
METER = 412  # 412..417: METER(numerator/denominator), see METERS
METERS: tuple[tuple[int, int], ...] = ((2, 4), (3, 4), (4, 4), (6, 8), (9, 8), (12, 8))
CHORD = METER + len(METERS)  # 418..513: CHORD(index), tokens/chords.py (quality * 12 + root)
N_CHORD_TOKENS = 96
CHORD_NONE = CHORD + N_CHORD_TOKENS  # 514: no chord (N.C.)
BEAT_VOCAB_SIZE = CHORD_NONE + 1  # 515
GRID_DIVISIONS = (1, 2, 3, 4, 6, 8)  # parts of a beat an onset may fall on: each divides STEPS_PER_BEAT
STEPS_PER_BEAT = 48  # 16ths (12), eighth triplets (16), sixteenth triplets (8), 32nds (6) all exact
# The onset grid of a genre when a recipe or request sets none: sixteenths, eighth triplets where the
# genre uses them, and only eighth triplets in jazz, which swings (its training pieces' off-beats are
# mostly the swung eighth; allowed sixteenths too, the model mixed straight and swung bar to bar).
# Calm moves in eighths: 85% of its training pieces' pitched onsets fall on one (92% on a sixteenth),
# and in eighths, quantised, its pulse clarity reached the goal (0.60 -> 0.78 on the library, QUALITY.md).
DEFAULT_GRIDS: dict[str, tuple[int, ...]] = {"classic": (4, 3), "jazz": (3,), "calm": (2,), "pop": (4,)}
# The grids on which a genre's off-grid time is dropped (masked: the note events get its probability)
# instead of quantised to the grid (rowstate.BarPlan.quantise): each genre's own grid, on which its
# library was measured. Quantised there, classic, jazz and pop took fewer notes (80-track library:
# jazz pulse 0.73 -> 0.65, jazz and pop clash under their real pieces' quartiles, genre fidelity
# 89% -> 85%; QUALITY.md). Every other grid is quantised: a recipe's own, and calm's eighths, on which
# masking left the model writing notes without moving time until the token cap closed the take.
MASKED_GRIDS: dict[str, tuple[int, ...]] = {"classic": (4, 3), "jazz": (3,), "pop": (4,)}
REFERENCE_BPM = 125.0  # one step is 10 ms at this tempo


def is_instrument(token: int) -> bool:
    return INSTRUMENT <= int(token) < INSTRUMENT + N_INSTRUMENTS


def quarters_per_bar(meter: tuple[int, int]) -> float:
    numerator, denominator = meter
    return numerator * 4 / denominator


BAR_FIT = 0.01  # whole bars fill a track's duration to within 1% at a fitted tempo


def fitted_tempo(duration_s: float, meter: tuple[int, int], bpm: float, bounds: tuple[float, float],
                 step: float) -> float:
    """The tempo on a `step` grid within `bounds` nearest `bpm` at which a whole number of bars of
    `meter` (quarter-note bpm) lasts `duration_s` to within BAR_FIT; where none does, the one that
    comes nearest. A track is whole bars, so a tempo range is used to hit its duration."""
    lo, hi = bounds
    best = None
    for k in range(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1):
        tempo = round(k * step, 6)
        bars = duration_s * tempo / 60.0 / quarters_per_bar(meter)
        miss = abs(max(1, round(bars)) - bars) / bars
        rank = (miss > BAR_FIT, miss if miss > BAR_FIT else abs(tempo - bpm))
        if best is None or rank < best[0]:
            best = (rank, tempo)
    return bpm if best is None else best[1]


def canonical_genre(name: str) -> str:
    """'ambient' -> 'calm', 'classical' -> 'classic'; raises KeyError for an unknown genre."""
    key = name.strip().lower()
    key = GENRE_ALIASES.get(key, key)
    if key not in GENRES:
        raise KeyError(name)
    return key


def genre_token(name: str) -> int:
    return GENRE + GENRES.index(canonical_genre(name))


def instrument_family(program: int, is_drum: bool) -> int:
    """The INSTRUMENT family index of a General MIDI program."""
    return DRUMS_FAMILY if is_drum else program // 8
