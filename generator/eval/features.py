"""Musical features of one track, computed from its notes; the yardstick's raw material.

Every function takes a sequence of notes (anything with `pitch`, `start_s`, `end_s`, `velocity`,
`instrument`, e.g. `generator.tokens.tokenizer.Note`). Pitch features ignore the drum kit (instrument
family `vocab.DRUMS_FAMILY`), whose "pitches" name drums, not notes. Rhythm features (empty beats,
inter-onset intervals) count every onset, drums included.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from generator.tokens.vocab import DRUMS_FAMILY


class NoteLike(Protocol):
    pitch: int
    start_s: float
    end_s: float
    velocity: int
    instrument: int


# Empty-beat grid: the track is cut into consecutive 0.5 s windows [k*0.5, (k+1)*0.5) from 0 to
# its duration (one beat at 120 BPM); a window is empty when no note (drums included) starts in it.
EMPTY_BEAT_WINDOW_S = 0.5
# Onsets closer than this are one onset (a chord, or a drum hit with a bass note).
ONSET_MERGE_S = 0.01
# Inter-onset-interval histogram bin edges, seconds; the last bin is open (>= 2 s).
IOI_EDGES_S: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.2, 2.0, math.inf)
# Register histogram: share of pitched notes per MIDI octave (pitch // 12), octaves 0..10.
N_OCTAVES = 11

MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)  # natural minor

SCALAR_NAMES: tuple[str, ...] = (
    "pitch_class_entropy_bits",
    "scale_consistency",
    "polyphony",
    "note_density_per_s",
    "drum_density_per_s",
    "empty_beat_rate",
    "pitch_range_semitones",
    "pitch_mean",
    "mean_duration_s",
    "velocity_mean",
    "velocity_std",
)
HISTOGRAM_NAMES: tuple[str, ...] = ("ioi_histogram", "pitch_range_histogram")
HISTOGRAM_SIZES = {"ioi_histogram": len(IOI_EDGES_S) - 1, "pitch_range_histogram": N_OCTAVES}


def _scale_masks() -> np.ndarray:
    """(24, 12) booleans: 12 major keys then 12 natural-minor keys, tonic C..B."""
    masks = np.zeros((24, 12), dtype=bool)
    for tonic in range(12):
        masks[tonic, [(tonic + s) % 12 for s in MAJOR_STEPS]] = True
        masks[12 + tonic, [(tonic + s) % 12 for s in MINOR_STEPS]] = True
    return masks


SCALE_MASKS = _scale_masks()


def pitched(notes: Sequence[NoteLike]) -> list[NoteLike]:
    return [n for n in notes if n.instrument != DRUMS_FAMILY]


def track_duration_s(notes: Sequence[NoteLike]) -> float:
    return max((n.end_s for n in notes), default=0.0)


def pitch_class_counts(notes: Sequence[NoteLike]) -> np.ndarray:
    """(12,) note counts per pitch class of the pitched notes."""
    return np.bincount([n.pitch % 12 for n in pitched(notes)], minlength=12).astype(float)


def pitch_class_entropy_bits(notes: Sequence[NoteLike]) -> float:
    """Shannon entropy of the pitch-class distribution (note counts), in bits: 0..log2(12)."""
    counts = pitch_class_counts(notes)
    if counts.sum() == 0:
        return 0.0
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0


def scale_consistency(notes: Sequence[NoteLike]) -> float:
    """Max over the 24 major / natural-minor keys of the share of pitched notes in that scale."""
    counts = pitch_class_counts(notes)
    if counts.sum() == 0:
        return 0.0
    return float((SCALE_MASKS @ counts).max() / counts.sum())


def polyphony(notes: Sequence[NoteLike]) -> float:
    """Mean number of pitched notes sounding, averaged over the time when at least one sounds."""
    events = sorted(
        [(n.start_s, 1) for n in pitched(notes) if n.end_s > n.start_s]
        + [(n.end_s, -1) for n in pitched(notes) if n.end_s > n.start_s]
    )
    sounding, busy_s, note_s, last_t = 0, 0.0, 0.0, 0.0
    for t, step in events:  # ends sort before starts at equal times
        if sounding > 0:
            busy_s += t - last_t
            note_s += sounding * (t - last_t)
        sounding += step
        last_t = t
    return note_s / busy_s if busy_s > 0 else 0.0


def onsets_s(notes: Sequence[NoteLike]) -> np.ndarray:
    """Sorted distinct onset times of all notes; onsets within ONSET_MERGE_S are merged."""
    starts = np.sort(np.array([n.start_s for n in notes], dtype=float))
    if starts.size == 0:
        return starts
    keep = np.concatenate([[True], np.diff(starts) >= ONSET_MERGE_S])
    return starts[keep]


def empty_beat_rate(notes: Sequence[NoteLike], duration_s: float | None = None) -> float:
    """Share of EMPTY_BEAT_WINDOW_S windows over [0, duration) in which no note starts."""
    duration_s = track_duration_s(notes) if duration_s is None else duration_s
    n_windows = max(1, math.ceil(duration_s / EMPTY_BEAT_WINDOW_S - 1e-9))
    starts = np.array([n.start_s for n in notes], dtype=float)
    hit = np.unique(np.clip((starts / EMPTY_BEAT_WINDOW_S).astype(int), 0, n_windows - 1))
    return 1.0 - hit.size / n_windows


def ioi_histogram(notes: Sequence[NoteLike]) -> np.ndarray:
    """Normalised histogram of inter-onset intervals over IOI_EDGES_S (zeros with < 2 onsets)."""
    iois = np.diff(onsets_s(notes))
    counts, _ = np.histogram(iois, bins=np.array(IOI_EDGES_S))
    return counts / counts.sum() if counts.sum() else counts.astype(float)


def pitch_range_histogram(notes: Sequence[NoteLike]) -> np.ndarray:
    """Normalised histogram of pitched notes per octave (pitch // 12), N_OCTAVES bins."""
    counts = np.bincount([n.pitch // 12 for n in pitched(notes)], minlength=N_OCTAVES)[:N_OCTAVES]
    return counts / counts.sum() if counts.sum() else counts.astype(float)


def features(notes: Sequence[NoteLike], duration_s: float | None = None) -> dict[str, float]:
    """The scalar features (SCALAR_NAMES) of one track; `duration_s` defaults to its last note end."""
    duration_s = track_duration_s(notes) if duration_s is None else duration_s
    tonal = pitched(notes)
    pitches = np.array([n.pitch for n in tonal], dtype=float)
    velocities = np.array([n.velocity for n in tonal], dtype=float)
    lengths = np.array([n.end_s - n.start_s for n in tonal], dtype=float)
    n_drums = len(notes) - len(tonal)
    return {
        "pitch_class_entropy_bits": pitch_class_entropy_bits(tonal),
        "scale_consistency": scale_consistency(tonal),
        "polyphony": polyphony(tonal),
        "note_density_per_s": len(tonal) / duration_s if duration_s > 0 else 0.0,
        "drum_density_per_s": n_drums / duration_s if duration_s > 0 else 0.0,
        "empty_beat_rate": empty_beat_rate(notes, duration_s),
        "pitch_range_semitones": float(np.ptp(pitches)) if pitches.size else 0.0,
        "pitch_mean": float(pitches.mean()) if pitches.size else 0.0,
        "mean_duration_s": float(lengths.mean()) if lengths.size else 0.0,
        "velocity_mean": float(velocities.mean()) if velocities.size else 0.0,
        "velocity_std": float(velocities.std()) if velocities.size else 0.0,
    }


def histograms(notes: Sequence[NoteLike]) -> dict[str, np.ndarray]:
    """The normalised histograms (HISTOGRAM_NAMES) of one track."""
    return {"ioi_histogram": ioi_histogram(notes), "pitch_range_histogram": pitch_range_histogram(notes)}


def vector_names() -> list[str]:
    """Names of the entries of `feature_vector`."""
    names = list(SCALAR_NAMES)
    for h in HISTOGRAM_NAMES:
        names += [f"{h}[{i}]" for i in range(HISTOGRAM_SIZES[h])]
    return names


def feature_vector(notes: Sequence[NoteLike], duration_s: float | None = None) -> np.ndarray:
    """Scalars then histogram bins as one float vector (the genre classifier's input)."""
    scalars = features(notes, duration_s)
    hists = histograms(notes)
    return np.concatenate([[scalars[k] for k in SCALAR_NAMES], *[hists[h] for h in HISTOGRAM_NAMES]])


def excerpt(notes: Sequence[NoteLike], start_s: float, length_s: float) -> list[NoteLike]:
    """Notes starting in [start_s, start_s + length_s), shifted to 0 and cut at the excerpt end."""
    end_s = start_s + length_s
    return [
        dataclasses.replace(n, start_s=n.start_s - start_s, end_s=min(n.end_s, end_s) - start_s)
        for n in notes
        if start_s <= n.start_s < end_s
    ]


# Krumhansl-Kessler key profiles (tonic first), for the key written in tags and sidecars.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def estimate_key(notes: Sequence[NoteLike]) -> str | None:
    """'A minor' / 'Eb major' by duration-weighted Krumhansl-Schmuckler correlation; None if no pitches."""
    weights = np.zeros(12)
    for n in pitched(notes):
        weights[n.pitch % 12] += max(n.end_s - n.start_s, 0.01)
    if weights.sum() == 0 or np.ptp(weights) == 0:
        return None
    best, name = -2.0, None
    for tonic in range(12):
        for profile, mode in ((_KK_MAJOR, "major"), (_KK_MINOR, "minor")):
            r = float(np.corrcoef(weights, np.roll(profile, tonic))[0, 1])
            if r > best:
                best, name = r, f"{_PITCH_NAMES[tonic]} {mode}"
    return name
