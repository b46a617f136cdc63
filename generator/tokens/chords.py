"""Chord templates: the 8 chord qualities x 12 roots that CHORD tokens name and `chord fit` measures.

One place for the harmony the beat encoding writes (tokens/beat_codec.py), the corpus marks on its
arrangements (corpus/arrangers) and the evaluation measures (eval/musicality.py).

The rule that picks a chord from sounding notes (`best_chord`): weight each pitch class by its
sounding time in the span (the lowest note of each onset counts double: the bass names the root
more often than not); score every template by the weight inside it minus the weight outside it,
minus a small cost for each template tone that does not sound at all (so a triad wins over a
seventh chord whose seventh is missing); the best score wins, ties to the earlier template
(triads first, roots from C). A span whose best template holds under half of the weight has no
chord (None: `CHORD_NONE` in the token stream).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

# (name, intervals above the root). Triads first: they win ties.
QUALITIES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("maj", (0, 4, 7)),
    ("min", (0, 3, 7)),
    ("dim", (0, 3, 6)),
    ("aug", (0, 4, 8)),
    ("7", (0, 4, 7, 10)),
    ("maj7", (0, 4, 7, 11)),
    ("m7", (0, 3, 7, 10)),
    ("m7b5", (0, 3, 6, 10)),
)
N_QUALITIES = len(QUALITIES)
N_CHORDS = 12 * N_QUALITIES  # 96
PITCH_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MISSING_TONE_COST = 0.05  # of the span's total weight, per template tone that never sounds
MIN_FIT = 0.5


def _templates() -> np.ndarray:
    """(96, 12) 0/1: row `chord_index(root, quality)` marks the chord's pitch classes."""
    out = np.zeros((N_CHORDS, 12), dtype=np.float64)
    for q, (_, intervals) in enumerate(QUALITIES):
        for root in range(12):
            for interval in intervals:
                out[chord_index(root, q), (root + interval) % 12] = 1.0
    return out


def chord_index(root: int, quality: int) -> int:
    """Index 0..95 of a chord: quality-major order, so index // 12 is the quality, index % 12 the root."""
    return quality * 12 + root % 12


def root_of(index: int) -> int:
    return index % 12


def quality_of(index: int) -> int:
    return index // 12


def transpose_chord(index: int, semitones: int) -> int:
    return chord_index(root_of(index) + semitones, quality_of(index))


def chord_name(index: int | None) -> str:
    """'Cmaj7', 'F#m7b5', 'N.C.' (None)."""
    if index is None:
        return "N.C."
    name, _ = QUALITIES[quality_of(index)]
    suffix = {"maj": "", "min": "m"}.get(name, name)
    return PITCH_NAMES[root_of(index)] + suffix


def chord_named(name: str) -> int | None:
    """The index of a `chord_name` ('Cmaj7' -> 5 * 12 + 0); None for 'N.C.'; KeyError otherwise."""
    return None if name == "N.C." else _BY_NAME[name]


def pitch_classes(index: int) -> frozenset[int]:
    root = root_of(index)
    return frozenset((root + i) % 12 for i in QUALITIES[quality_of(index)][1])


TEMPLATES = _templates()
_BY_NAME = {chord_name(i): i for i in range(N_CHORDS)}


def template_fit(weights: np.ndarray) -> tuple[int | None, float]:
    """(best chord index or None, the share of the weight inside it) for a (12,) pitch-class weight.

    The score is inside - outside - MISSING_TONE_COST * total * (template tones with no weight)."""
    weights = np.asarray(weights, dtype=np.float64)
    total = float(weights.sum())
    if total <= 0:
        return None, 0.0
    inside = TEMPLATES @ weights
    missing = TEMPLATES @ (weights <= 0).astype(np.float64)
    score = 2 * inside - total - MISSING_TONE_COST * total * missing
    best = int(np.argmax(score))  # argmax takes the first of equal scores: triads, then low roots
    return best, float(inside[best] / total)


def best_chord(weights: np.ndarray) -> int | None:
    """The chord (index) that `weights` sound, or None when no template holds MIN_FIT of them."""
    best, fit = template_fit(weights)
    return best if best is not None and fit >= MIN_FIT else None


def span_weights(notes: Iterable[tuple[int, float, float]], start: float, end: float) -> np.ndarray:
    """(12,) sounding time per pitch class of (pitch, start, end) notes inside [start, end); the
    lowest pitch among the notes that start together counts double."""
    weights = np.zeros(12, dtype=np.float64)
    lowest_at: dict[float, int] = {}
    inside = []
    for pitch, s, e in notes:
        overlap = min(e, end) - max(s, start)
        if overlap > 0:
            inside.append((pitch, s, overlap))
            lowest_at[s] = min(lowest_at.get(s, 128), pitch)
    for pitch, s, overlap in inside:
        weights[pitch % 12] += overlap * (2.0 if lowest_at[s] == pitch else 1.0)
    return weights


def chord_of_pitch_classes(pcs: Sequence[int], bass: int | None = None) -> int | None:
    """The template that best names a chord symbol's pitch classes (a chart's Dm9 -> Dm7)."""
    weights = np.zeros(12)
    for pc in pcs:
        weights[pc % 12] = 1.0
    if bass is not None:
        weights[bass % 12] += 1.0
    return template_fit(weights)[0]
