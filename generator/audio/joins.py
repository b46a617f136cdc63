"""How smoothly a loop repeats: its joins measured against the rest of its own music.

The loop's promise (docs/delivery.md "Loops and cut-downs"): played end to start, at every join the
sample-to-sample step and the short-time spectrum change are no larger than the loop's own 99th
percentile elsewhere. tests/test_edits.py holds the loop makers (audio/edits.py) to it, and
bench/quality_library.py a built library's loop files, against the loop's own percentiles (strict:
a 4-bar loop's few beats rarely hold a chord change as large as its join's) and, as issue 12 words
it, against the whole track's (`track_p99`).
"""

from __future__ import annotations

import numpy as np

from generator.audio.edit_plan import Form


def beat_marks(form: Form, bars: int, sample_rate: int) -> tuple[int, ...]:
    """Every beat of `bars` bars from bar 0, in frames: where the music has its onsets, as a loop's joins do."""
    beats = int(form.meter[0] * 4 / form.meter[1])
    return tuple(form.frames(b, sample_rate) + round(k * form.bar_s / beats * sample_rate)
                 for b in range(bars) for k in range(beats))


def join_measures(loop: np.ndarray, repeats: int = 4, frame: int = 1024,
                  marks: tuple[int, ...] = ()) -> dict[str, float]:
    """The loop (N, channels) played `repeats` times: the largest sample-to-sample step and spectral
    change at the joins, and the 99th percentile of each elsewhere. Step: the largest of the channels'
    |x[n] - x[n-1]|, elsewhere at every sample at least `frame` from a join. Spectral change at a
    point: the Euclidean distance between the magnitude spectra (Hann) of the `frame` samples before
    it and after it; elsewhere at `marks` (offsets within the loop: its beats and bar lines, see
    beat_marks) away from the joins. A join is a bar line, where the music has an onset, so it is
    held to the loop's other onsets: the steady stretches between them change next to nothing and
    would make any bar line an outlier."""
    n = loop.shape[0]
    x = np.concatenate([loop] * repeats).astype(np.float64)  # (repeats * n, channels)
    joins = np.arange(1, repeats) * n
    steps = np.abs(np.diff(x, axis=0)).max(axis=1)  # steps[i] = |x[i + 1] - x[i]|
    near = np.zeros(len(x), bool)
    for j in joins:
        near[max(0, j - frame):j + frame] = True
    mono = x.mean(axis=1)
    points = sorted({k * n + m for k in range(repeats) for m in marks})
    elsewhere = [spectral_change(mono, p, frame) for p in points if frame <= p <= len(x) - frame and not near[p]]
    return {"join_step": float(steps[joins - 1].max()), "step_p99": float(np.percentile(steps[~near[1:]], 99)),
            "join_flux": max(spectral_change(mono, int(j), frame) for j in joins),
            "flux_p99": float(np.percentile(elsewhere, 99))}


def track_p99(track: np.ndarray, marks: tuple[int, ...], frame: int = 1024) -> dict[str, float]:
    """The 99th percentiles of a whole track (N, channels) that its loop's joins are held to in the
    issue's own words ("no larger than the track's own 99th percentile elsewhere"): the sample step
    over all of it, the spectral change at `marks` (its beats, beat_marks over all its bars)."""
    x = track.astype(np.float64)
    mono = x.mean(axis=1)
    changes = [spectral_change(mono, p, frame) for p in marks if frame <= p <= len(x) - frame]
    return {"step_p99": float(np.percentile(np.abs(np.diff(x, axis=0)).max(axis=1), 99)),
            "flux_p99": float(np.percentile(changes, 99))}


def spectral_change(mono: np.ndarray, p: int, frame: int = 1024) -> float:
    """The Euclidean distance between the magnitude spectra (Hann) of the `frame` samples before p and after it."""
    window = np.hanning(frame)
    before = np.abs(np.fft.rfft(mono[p - frame:p] * window))
    after = np.abs(np.fft.rfft(mono[p:p + frame] * window))
    return float(np.linalg.norm(after - before))
