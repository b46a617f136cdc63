"""Musical quality measures of one piece, from its notes: is there a beat, does it hold, do notes sit
on it, do the drums keep a pattern, do the harmonies make chords, do notes clash, does it repeat.

Every measure takes a sequence of notes (`features.NoteLike`; family `vocab.DRUMS_FAMILY` is the
drum kit) and looks at the first `seconds` (MEASURE_S) of the piece: notes starting before it, cut
at it. Each returns a float, or None where it is undefined (too few notes, no drums, too short).
The definitions are in each docstring and in docs/evaluation.md.

The rhythm measures share two steps:
- the onset envelope: 10 ms frames over the excerpt, log(1 + notes starting in the frame) (drums
  included), smoothed by a Gaussian of ENVELOPE_SIGMA_FRAMES;
- the beat lag: the Pearson autocorrelation r(k) of the envelope over lags 0.25..1.5 s; of its
  local maxima within LAG_TIE of the highest, the one nearest 0.5 s (120 BPM) is the beat (a
  strictly periodic piece correlates as well at two beats or at the bar as at the beat, and at
  the eighth note; the middle of the usual tempo range picks among them), refined between frames
  by a parabola through its neighbours.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from generator.eval.features import NoteLike, onsets_s, pitched
from generator.tokens.chords import template_fit
from generator.tokens.vocab import DRUMS_FAMILY

MEASURE_S = 60.0
FRAME_S = 0.01
ENVELOPE_SIGMA_FRAMES = 2.0
MIN_LAG_S, MAX_LAG_S = 0.25, 1.5
LAG_TIE = 0.05
PREFERRED_BEAT_S = 0.5  # of peaks within LAG_TIE, the one nearest 120 BPM; then folded near it
DRIFT_BAND = 0.25  # octaves: a window's beat is searched within 2**(+-1/4) of the piece's beat
DRIFT_WINDOW_S, DRIFT_HOP_S = 10.0, 5.0
GRID_PER_BEAT = 12
GRID_TOLERANCE_S = 0.025
PERIOD_SEARCH = 0.03  # the grid's beat period is searched within +-3% of the autocorrelation's
PERIOD_HARMONICS = 4  # ... where starts gather on the beat, its halves, thirds and quarters (beat_period_s)
CHORD_WINDOW_S = 1.0
CLASH_STEP_S = 0.05
RECURRENCE_NOTES = 8
MIN_ONSETS = 4

NAMES: tuple[str, ...] = ("pulse_clarity", "tempo_drift_pct", "groove", "drum_pattern_consistency",
                          "chord_fit", "semitone_clash", "recurrence")


def first_seconds(notes: Sequence[NoteLike], seconds: float = MEASURE_S) -> list[NoteLike]:
    """Notes starting before `seconds`, their ends cut at it."""
    return [n if n.end_s <= seconds else dataclasses.replace(n, end_s=seconds) for n in notes if n.start_s < seconds]


# --- the beat ------------------------------------------------------------------------------------


def onset_envelope(notes: Sequence[NoteLike]) -> np.ndarray:
    """(frames,) log(1 + note starts per 10 ms frame), Gaussian-smoothed; frames up to the last end."""
    length_s = max((n.end_s for n in notes), default=0.0)
    frames = np.zeros(int(math.ceil(length_s / FRAME_S)) + 1)
    starts = np.array([n.start_s for n in notes], dtype=float)
    np.add.at(frames, np.clip((starts / FRAME_S).astype(int), 0, frames.size - 1), 1.0)
    return gaussian_filter1d(np.log1p(frames), ENVELOPE_SIGMA_FRAMES, mode="constant")


def autocorrelation(envelope: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(lags in frames, Pearson r per lag) over MIN_LAG_S..MAX_LAG_S, r(k) being the correlation of
    envelope[:-k] with envelope[k:]; None when the envelope is shorter than two of the longest lag
    or flat."""
    lags = np.arange(round(MIN_LAG_S / FRAME_S), round(MAX_LAG_S / FRAME_S) + 1)
    e = np.asarray(envelope, dtype=np.float64)
    size = e.size
    if size < 2 * lags[-1] or np.ptp(e) == 0:
        return None
    e = e - e.mean()  # Pearson is shift-invariant; centring keeps the sums below well conditioned
    spectrum = np.fft.rfft(e, 2 * size)
    products = np.fft.irfft(spectrum * np.conj(spectrum), 2 * size)[lags]  # sum of e[i] * e[i + k]
    s1, s2 = np.concatenate([[0.0], np.cumsum(e)]), np.concatenate([[0.0], np.cumsum(e * e)])
    n = size - lags
    sum_x, sum_y = s1[size - lags], s1[size] - s1[lags]
    var_x, var_y = s2[size - lags] - sum_x**2 / n, s2[size] - s2[lags] - sum_y**2 / n
    denominator = np.sqrt(np.clip(var_x * var_y, 0.0, None))
    r = np.divide(products - sum_x * sum_y / n, denominator, out=np.zeros(lags.size), where=denominator > 1e-12)
    return lags, r


def beat_lag_s(lags: np.ndarray, r: np.ndarray, near_s: float | None = None) -> float:
    """The beat lag in seconds (module docstring), refined between frames by a parabola.

    With `near_s`, only lags that fold by octaves to within DRIFT_BAND of `near_s` compete, and the
    best of them wins (a window of a steady piece may correlate best with the bar of three beats,
    which no octave folds back onto the beat)."""
    peaks = [i for i in range(1, len(r) - 1) if r[i - 1] <= r[i] > r[i + 1]]
    if near_s is not None:
        folded = np.array([fold_lag(float(k) * FRAME_S, near_s) for k in lags])
        inside = np.abs(np.log2(folded / near_s)) <= DRIFT_BAND
        candidates = [i for i in peaks if inside[i]] or list(np.flatnonzero(inside))
        best = max(candidates, key=lambda i: r[i])
    elif peaks:
        top = max(r[i] for i in peaks)
        best = min((i for i in peaks if r[i] >= top - LAG_TIE),
                   key=lambda i: abs(math.log2(lags[i] * FRAME_S / PREFERRED_BEAT_S)))
    else:  # r rises or falls across the whole range: its end is the best there is
        best = int(np.argmax(r))
    offset = 0.0
    if 0 < best < len(r) - 1:
        curve = r[best - 1] - 2 * r[best] + r[best + 1]
        # within half a frame for a true peak; a band's edge (near_s) is no peak: stay on the frame
        offset = float(np.clip(0.5 * (r[best - 1] - r[best + 1]) / curve, -0.5, 0.5)) if curve < 0 else 0.0
    return float(lags[best] + offset) * FRAME_S


def _beat(notes: Sequence[NoteLike]) -> tuple[float, float] | None:
    """(pulse clarity, beat in s) of the whole excerpt, or None. The beat is the beat lag folded by
    octaves to within sqrt(2) of 0.5 s (85..170 BPM): two beats or an eighth note correlate as
    well as the beat, and a grid of twelve per two beats cannot hold a sixteenth note."""
    if len(onsets_s(notes)) < MIN_ONSETS:
        return None
    found = autocorrelation(onset_envelope(notes))
    if found is None:
        return None
    lags, r = found
    return float(r.max()), fold_lag(beat_lag_s(lags, r), PREFERRED_BEAT_S)


def pulse_clarity(notes: Sequence[NoteLike], seconds: float = MEASURE_S) -> float | None:
    """Peak Pearson autocorrelation of the onset envelope over lags 0.25..1.5 s: near 1 when onsets
    repeat at a steady period, near 0 for onsets at random times. None under 4 onsets or 3 s."""
    beat = _beat(first_seconds(notes, seconds))
    return None if beat is None else beat[0]


def fold_lag(lag_s: float, reference_s: float) -> float:
    """`lag_s` times or divided by 2 until it is within a factor sqrt(2) of `reference_s`."""
    assert lag_s > 0 and reference_s > 0, (lag_s, reference_s)
    while lag_s > reference_s * math.sqrt(2):
        lag_s /= 2
    while lag_s < reference_s / math.sqrt(2):
        lag_s *= 2
    return lag_s


def tempo_drift_pct(notes: Sequence[NoteLike], seconds: float = MEASURE_S) -> float | None:
    """Standard deviation of the beat lag of each 10 s window (hop 5 s, whole windows inside the
    excerpt, each with >= 4 onsets), folded by octaves onto the whole excerpt's beat lag, in % of
    their median: ~0 for a metronome. A window's beat is its autocorrelation peak among the lags
    that fold to within 2**(+-1/4) of the excerpt's beat (`beat_lag_s`). None with fewer than two
    such windows."""
    notes = first_seconds(notes, seconds)
    beat = _beat(notes)
    if beat is None:
        return None
    envelope = onset_envelope(notes)
    window, hop = round(DRIFT_WINDOW_S / FRAME_S), round(DRIFT_HOP_S / FRAME_S)
    starts = np.array([n.start_s for n in notes])
    lags = []
    for first in range(0, envelope.size - window + 1, hop):
        inside = (starts >= first * FRAME_S) & (starts < (first + window) * FRAME_S)
        found = autocorrelation(envelope[first:first + window]) if inside.sum() >= MIN_ONSETS else None
        if found is not None:
            lags.append(fold_lag(beat_lag_s(*found, near_s=beat[1]), beat[1]))
    if len(lags) < 2:
        return None
    return float(100 * np.std(lags) / np.median(lags))


# --- the grid ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """GRID_PER_BEAT slots per beat: slot n sits at offset_s + n * beat_s / GRID_PER_BEAT; slots
    n = beat_slot (mod GRID_PER_BEAT) are the beats."""

    beat_s: float
    offset_s: float
    beat_slot: int
    tolerance_s: float

    @property
    def step_s(self) -> float:
        return self.beat_s / GRID_PER_BEAT

    def slots(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(nearest slot, distance to it in s) of each time."""
        position = (np.asarray(times_s, dtype=float) - self.offset_s) / self.step_s
        nearest = np.round(position)
        return nearest.astype(int), np.abs(position - nearest) * self.step_s


def _tolerance_s(beat_s: float) -> float:
    # At 120 BPM the grid step is 42 ms: a 25 ms window would hold every time there is. A quarter
    # step keeps chance (a uniformly random onset) at half the onsets, whatever the tempo.
    return min(GRID_TOLERANCE_S, beat_s / GRID_PER_BEAT / 4)


def _hits(onsets: np.ndarray, beat_s: float, phases: int = 24) -> tuple[int, float]:
    """(most onsets within tolerance of a 12-per-beat grid at `beat_s`, the offset that has them)."""
    step = beat_s / GRID_PER_BEAT
    offsets = np.arange(phases) / phases  # in steps
    fraction = (onsets[None, :] / step - offsets[:, None]) % 1.0  # (phases, onsets)
    distance = np.minimum(fraction, 1.0 - fraction) * step
    counts = (distance <= _tolerance_s(beat_s)).sum(axis=1)
    best = int(np.argmax(counts))
    return int(counts[best]), float(offsets[best] * step)


def beat_period_s(starts_s: np.ndarray, lag_s: float) -> float:
    """The period within +-3% of `lag_s` at which the note starts gather best around one phase of the
    beat and of its halves, thirds and quarters: the largest sum of the resultant lengths
    |mean exp(2 pi i h t / period)| for h = 1..PERIOD_HARMONICS, searched in steps of 0.05%, then
    0.005% around the best. Jittered (humanised) starts barely move it; a count of starts within
    a few ms of a grid does, and drifts to a wrong period that catches more of the jitter. The beat
    alone (h = 1) is not enough: starts spread evenly over the four sixteenths of a beat cancel there
    (their phases are 0, 90, 180 and 270 degrees), and in 4 of 8 library pop tracks whose every start
    is on a sixteenth at one tempo it settled 0.1% off, a grid 0.12 s adrift after a minute."""
    period = lag_s
    harmonics = np.arange(1, PERIOD_HARMONICS + 1)[:, None, None]  # (H, 1, 1)
    for step, span in ((0.0005, PERIOD_SEARCH), (0.00005, 0.0005)):
        periods = period * (1 + np.arange(-span, span + step / 2, step))
        phases = np.exp(2j * np.pi * harmonics * starts_s[None, None, :] / periods[None, :, None])  # (H, P, S)
        period = float(periods[np.argmax(np.abs(phases.mean(axis=2)).sum(axis=0))])
    return period


def estimate_grid(notes: Sequence[NoteLike], seconds: float = MEASURE_S) -> Grid | None:
    """The 12-per-beat grid of the excerpt: the beat from the autocorrelation (`_beat`); its period
    refined by `beat_period_s` over every note start; the offset (24 tried per grid step) that puts
    the most onsets within tolerance of a slot, moved by the mean distance of those onsets to their
    slots; the beat is the slot (mod 12) where the most on-grid onsets fall. Tolerance: 25 ms, at
    most a quarter grid step (`_tolerance_s`)."""
    notes = first_seconds(notes, seconds)
    beat = _beat(notes)
    if beat is None:
        return None
    period = beat_period_s(np.array([n.start_s for n in notes], dtype=float), beat[1])
    onsets = onsets_s(notes)
    _, offset = _hits(onsets, period)
    grid = Grid(period, offset, 0, _tolerance_s(period))
    slots, distance = grid.slots(onsets)
    hit = distance <= grid.tolerance_s
    if hit.any():  # many offsets tie on a clean grid: centre the grid on the onsets it holds
        offset += float(np.mean(onsets[hit] - (offset + slots[hit] * grid.step_s)))
        grid = dataclasses.replace(grid, offset_s=offset)
        slots, distance = grid.slots(onsets)
        hit = distance <= grid.tolerance_s
    beat_slot = int(np.argmax(np.bincount(slots[hit] % GRID_PER_BEAT, minlength=GRID_PER_BEAT)))
    return dataclasses.replace(grid, beat_slot=beat_slot)


def groove(notes: Sequence[NoteLike], seconds: float = MEASURE_S) -> float | None:
    """Share of onsets (notes starting within 10 ms are one) within tolerance of the estimated grid
    (`estimate_grid`). About 0.5 for onsets at random times, 1 for music on a steady grid."""
    notes = first_seconds(notes, seconds)
    return _groove(notes, estimate_grid(notes, seconds))


def _groove(notes: Sequence[NoteLike], grid: Grid | None) -> float | None:
    if grid is None:
        return None
    _, distance = grid.slots(onsets_s(notes))
    return float(np.mean(distance <= grid.tolerance_s))


def drum_pattern_consistency(notes: Sequence[NoteLike], seconds: float = MEASURE_S) -> float | None:
    """MusPy's drum pattern consistency on the estimated grid: the larger of the duple and the
    triple drum-in-pattern rate, the share of drum notes whose nearest slot within the beat is
    0, 3, 6 or 9 of 12 (duple) / 0, 4 or 8 (triple). None without drum notes or without a grid."""
    notes = first_seconds(notes, seconds)
    has_drums = any(n.instrument == DRUMS_FAMILY for n in notes)
    return _drum_pattern_consistency(notes, estimate_grid(notes, seconds) if has_drums else None)


def _drum_pattern_consistency(notes: Sequence[NoteLike], grid: Grid | None) -> float | None:
    drums = np.array([n.start_s for n in notes if n.instrument == DRUMS_FAMILY])
    if grid is None or drums.size == 0:
        return None
    slots, _ = grid.slots(drums)
    position = (slots - grid.beat_slot) % GRID_PER_BEAT
    return float(max(np.mean(position % 3 == 0), np.mean(position % 4 == 0)))


# --- harmony and melody ------------------------------------------------------------------------------


def _pitched_arrays(notes: Sequence[NoteLike]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tonal = [n for n in pitched(notes) if n.end_s > n.start_s]
    return (np.array([n.pitch % 12 for n in tonal], dtype=int), np.array([n.start_s for n in tonal], dtype=float),
            np.array([n.end_s for n in tonal], dtype=float))


def chord_fit(notes: Sequence[NoteLike], seconds: float = MEASURE_S) -> float | None:
    """Per 1 s window, the share of the pitched notes' sounding time whose pitch class is in the best
    triad / seventh-chord template (`chords.template_fit` of the sounding time per pitch class);
    averaged over the windows with notes, weighted by their sounding time. None without notes."""
    pcs, starts, ends = _pitched_arrays(first_seconds(notes, seconds))
    if pcs.size == 0:
        return None
    edges = np.arange(math.ceil(ends.max() / CHORD_WINDOW_S)) * CHORD_WINDOW_S
    overlap = np.clip(np.minimum(ends[:, None], edges + CHORD_WINDOW_S) - np.maximum(starts[:, None], edges), 0, None)
    weights = np.eye(12)[pcs].T @ overlap  # (12, windows)
    fits, totals = [], []
    for column in weights.T:
        if column.sum() > 0:
            fits.append(template_fit(column)[1])
            totals.append(column.sum())
    return float(np.average(fits, weights=totals))


def semitone_clash(notes: Sequence[NoteLike], seconds: float = MEASURE_S) -> float | None:
    """Among the 50 ms steps (sampled at their centres) where >= 2 pitch classes sound (pitched
    notes), the share where two of them are a semitone apart (interval class 1). None if no step
    has two pitch classes."""
    pcs, starts, ends = _pitched_arrays(first_seconds(notes, seconds))
    if pcs.size == 0:
        return None
    roll = np.zeros((int(math.ceil(ends.max() / CLASH_STEP_S)) + 1, 12), dtype=bool)
    first = np.ceil(starts / CLASH_STEP_S - 0.5).astype(int)
    last = np.ceil(ends / CLASH_STEP_S - 0.5).astype(int)  # exclusive: centre < end
    for pc, a, b in zip(pcs, first, last):
        roll[a:b, pc] = True
    chords = roll[roll.sum(axis=1) >= 2]
    if chords.shape[0] == 0:
        return None
    return float(np.mean((chords & np.roll(chords, 1, axis=1)).any(axis=1)))


def top_line(notes: Sequence[NoteLike]) -> list[int]:
    """The highest pitched note at each onset (pitched notes starting within 10 ms are one onset)."""
    tonal = sorted(pitched(notes), key=lambda n: n.start_s)
    line: list[int] = []
    onset = -math.inf
    for n in tonal:
        if n.start_s - onset >= 0.01:
            onset = n.start_s
            line.append(n.pitch)
        else:
            line[-1] = max(line[-1], n.pitch)
    return line


def recurrence(notes: Sequence[NoteLike], seconds: float = MEASURE_S, n: int = RECURRENCE_NOTES) -> float | None:
    """Share of the top line's `n`-note pitch n-grams (every position) whose n-gram occurs more than
    once in the excerpt; exact pitches (a transposed repeat does not count). None under n + 1 notes."""
    line = top_line(first_seconds(notes, seconds))
    grams = [tuple(line[i:i + n]) for i in range(len(line) - n + 1)]
    if len(grams) < 2:
        return None
    counts = Counter(grams)
    return sum(1 for g in grams if counts[g] >= 2) / len(grams)


def musicality(notes: Sequence[NoteLike], seconds: float = MEASURE_S) -> dict[str, float | None]:
    """Every measure (NAMES) of one piece's first `seconds`."""
    notes = first_seconds(notes, seconds)
    grid = estimate_grid(notes, seconds)
    return {
        "pulse_clarity": pulse_clarity(notes, seconds),
        "tempo_drift_pct": tempo_drift_pct(notes, seconds),
        "groove": _groove(notes, grid),
        "drum_pattern_consistency": _drum_pattern_consistency(notes, grid),
        "chord_fit": chord_fit(notes, seconds),
        "semitone_clash": semitone_clash(notes, seconds),
        "recurrence": recurrence(notes, seconds),
    }
