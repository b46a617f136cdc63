"""Set-level measures behind `gen eval`: how close generated music is to real music, per feature,
per genre, and how far it strays into loops and copies. Pure functions over notes and arrays.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from generator.eval.features import NoteLike, pitched
from generator.tokens import vocab
from generator.tokens.encoding import DEFAULT

# --- distribution overlap ------------------------------------------------------------------------

_KDE_GRID_POINTS = 512


def _bandwidth(values: np.ndarray, scale: float) -> float:
    """Silverman's rule, floored so that a constant set still has a (narrow) density."""
    std = float(values.std()) if values.size > 1 else 0.0
    silverman = 1.06 * std * values.size ** (-1 / 5)
    return max(silverman, 0.02 * scale, 1e-6)


def _kde(values: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    z = (grid[:, None] - values[None, :]) / bandwidth  # (G, N)
    density = np.exp(-0.5 * z**2).sum(axis=1) / (values.size * bandwidth * np.sqrt(2 * np.pi))
    return density


def overlap_area(real: Sequence[float], generated: Sequence[float]) -> float:
    """Area shared by the Gaussian kernel densities of two samples (MGEval style): 1 = same
    distribution, 0 = disjoint. Silverman bandwidths; the generated sample's is at least the real
    one's, so that a handful of tracks is not judged as a set of spikes."""
    a, b = np.asarray(real, dtype=float), np.asarray(generated, dtype=float)
    if a.size == 0 or b.size == 0:
        return 0.0
    both = np.concatenate([a, b])
    scale = max(float(np.ptp(both)), float(np.abs(both).max()) * 0.05, 1e-3)
    ha = _bandwidth(a, scale)
    hb = max(_bandwidth(b, scale), ha)
    pad = 4 * max(ha, hb)
    grid = np.linspace(both.min() - pad, both.max() + pad, _KDE_GRID_POINTS)
    shared = np.minimum(_kde(a, grid, ha), _kde(b, grid, hb))
    return float(np.clip(np.trapezoid(shared, grid), 0.0, 1.0))


def histogram_overlap(real: np.ndarray, generated: np.ndarray) -> float:
    """Overlap of two mean normalised histograms (rows = tracks): sum of bin-wise minima, 0..1."""
    a, b = np.asarray(real, dtype=float).mean(axis=0), np.asarray(generated, dtype=float).mean(axis=0)
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    return float(np.minimum(a / a.sum(), b / b.sum()).sum())


@dataclass(frozen=True)
class FeatureComparison:
    name: str
    real_median: float
    real_q25: float
    real_q75: float
    generated_median: float
    overlap: float
    outside_iqr: bool  # the generated median lies outside the real inter-quartile range


def compare_feature(name: str, real: Sequence[float], generated: Sequence[float]) -> FeatureComparison:
    q25, median, q75 = np.percentile(np.asarray(real, dtype=float), [25, 50, 75])
    gen_median = float(np.median(generated))
    return FeatureComparison(
        name=name,
        real_median=float(median),
        real_q25=float(q25),
        real_q75=float(q75),
        generated_median=gen_median,
        overlap=overlap_area(real, generated),
        outside_iqr=not (q25 <= gen_median <= q75),
    )


@dataclass(frozen=True)
class GenreMeasure:
    """One musicality measure in one genre: the generated tracks' median against the held-out real
    pieces' median and inter-quartile range, over the pieces where the measure is defined."""

    genre: str
    name: str
    generated_median: float | None
    real_median: float | None
    real_q25: float | None
    real_q75: float | None
    generated_n: int
    real_n: int
    outside_iqr: bool  # False when either side has no value


def compare_per_genre(names: Sequence[str], genres: Sequence[str], generated: Sequence[tuple[str, dict]],
                      real: Sequence[tuple[str, dict]]) -> list[GenreMeasure]:
    """Per genre then per name, from (genre, {name: value or None}) of each generated and real piece."""
    out = []
    for genre in genres:
        for name in names:
            gen = [v[name] for g, v in generated if g == genre and v.get(name) is not None]
            ref = [v[name] for g, v in real if g == genre and v.get(name) is not None]
            q25, median, q75 = (float(q) for q in np.percentile(ref, [25, 50, 75])) if ref else (None,) * 3
            gen_median = float(np.median(gen)) if gen else None
            outside = gen_median is not None and q25 is not None and not q25 <= gen_median <= q75
            out.append(GenreMeasure(genre, name, gen_median, median, q25, q75, len(gen), len(ref), outside))
    return out


# --- genre fidelity ------------------------------------------------------------------------------


def fit_genre_classifier(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """Logistic regression on standardised feature vectors (scikit-learn Pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    return model.fit(np.nan_to_num(x), y)


@dataclass(frozen=True)
class Confusion:
    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]  # rows: true genre, columns: predicted genre

    @property
    def accuracy(self) -> float:
        m = np.array(self.matrix)
        return float(np.trace(m) / m.sum()) if m.sum() else 0.0


def confusion(classifier, x: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> Confusion:
    """Confusion of `classifier` on (x, y); y holds indices into `labels`."""
    predicted = classifier.predict(np.nan_to_num(x)) if len(x) else np.zeros(0, dtype=int)
    m = np.zeros((len(labels), len(labels)), dtype=int)
    np.add.at(m, (np.asarray(y, dtype=int), np.asarray(predicted, dtype=int)), 1)
    return Confusion(tuple(labels), tuple(tuple(int(v) for v in row) for row in m))


# --- note sequences: phrases and copies ------------------------------------------------------------

ONSET_QUANTUM_S = 0.01  # the tokens' time grid; copies of token sequences match exactly on it
_DELTA_LEVELS = 1 << 16


def _symbols(pitch: np.ndarray, start_s: np.ndarray, quantum_s: float,
             transposition_invariant: bool) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((pitch, start_s))
    pitch = np.asarray(pitch, dtype=np.int64)[order]
    start_s = np.asarray(start_s, dtype=float)[order]
    # quantise the deltas, not the onsets, so that shifting a passage in time never changes them
    delta = np.clip(np.rint(np.diff(start_s, prepend=start_s[:1]) / quantum_s), 0, _DELTA_LEVELS - 1)
    delta = delta.astype(np.int64)
    if transposition_invariant:
        interval = np.diff(pitch, prepend=pitch[:1]) + 128
        return np.zeros_like(pitch), interval * _DELTA_LEVELS + delta
    return pitch.copy(), pitch * _DELTA_LEVELS + delta


def note_symbols(notes: Sequence[NoteLike], quantum_s: float = ONSET_QUANTUM_S,
                 transposition_invariant: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Pitched notes in (onset, pitch) order as (head, step) int64 arrays.

    A run of notes i..i+n-1 is the same music as another run when head[i] and step[i+1 .. i+n-1]
    are equal: step[k] packs note k's pitch (or its interval from note k-1 when transposition
    invariant) with its onset delta from note k-1 in `quantum_s` steps; head[i] is the run's first
    pitch (0 when invariant), so the gap before a run does not matter.
    """
    tonal = pitched(notes)
    return _symbols(np.array([n.pitch for n in tonal], dtype=np.int64),
                    np.array([n.start_s for n in tonal], dtype=float), quantum_s, transposition_invariant)


def id_symbols(ids: Sequence[int] | np.ndarray, quantum_s: float = ONSET_QUANTUM_S,
               transposition_invariant: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`note_symbols(ids_to_notes(ids))` read straight off the token ids with numpy (fast enough
    to index a whole training shard): NOTE_ON onsets, INSTRUMENT state, drums dropped."""
    t = np.asarray(ids, dtype=np.int64)
    tick = np.cumsum(DEFAULT.shift_ticks(t))  # a NOTE_ON's own shift is 0, so this is its onset tick
    is_inst = (t >= vocab.INSTRUMENT) & (t < vocab.VOCAB_SIZE)
    last_inst = np.maximum.accumulate(np.where(is_inst, np.arange(t.size), -1)) if t.size else t
    family = np.where(last_inst >= 0, t[np.maximum(last_inst, 0)] - vocab.INSTRUMENT, 0)
    on = (t < vocab.NOTE_OFF) & (family != vocab.DRUMS_FAMILY)
    # the decoder keeps one of two identical NOTE_ONs (same family, pitch and tick)
    keys = np.unique(np.stack([tick[on], family[on], t[on]], axis=1), axis=0)
    start_s = DEFAULT.seconds(keys[:, 0])
    return _symbols(keys[:, 2], start_s, quantum_s, transposition_invariant)


def ngram_hashes(head: np.ndarray, step: np.ndarray, n: int) -> np.ndarray:
    """(len - n + 1,) uint64 polynomial hashes of every n-note run (see note_symbols)."""
    count = head.size - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    base = np.uint64(1_000_003)
    acc = (head[:count] + 1).astype(np.uint64)
    for j in range(1, n):
        acc = acc * base + step[j : j + count].astype(np.uint64)
    return acc


def phrase_repeats(notes: Sequence[NoteLike], phrase_notes: int = 8,
                   quantum_s: float = ONSET_QUANTUM_S) -> int:
    """Most non-overlapping verbatim occurrences of any `phrase_notes`-note phrase (pitches and
    onsets relative to its first note) among the pitched notes; 0 when the track is shorter."""
    head, step = note_symbols(notes, quantum_s)
    positions: dict[tuple, list[int]] = defaultdict(list)
    for i in range(head.size - phrase_notes + 1):
        positions[(int(head[i]), *step[i + 1 : i + phrase_notes].tolist())].append(i)
    best = 0
    for starts in positions.values():
        count, free_from = 0, -1
        for i in starts:  # ascending; greedy left-to-right keeps the most non-overlapping ones
            if i >= free_from:
                count, free_from = count + 1, i + phrase_notes
        best = max(best, count)
    return best


@dataclass(frozen=True)
class Copy:
    notes: int  # length of the longest shared run, in notes (0: none of >= ngram notes)
    piece: int  # index of the training piece in the list given to CopyIndex (-1: none)
    track_position: int  # note index in the generated track where the run starts
    piece_position: int


class CopyIndex:
    """Every `ngram`-note run of a set of training pieces, hashed and sorted for look-up.

    Built from (head, step) symbol pairs (`note_symbols` or `id_symbols`, made with the same
    quantum and transposition setting as the queries). `longest_copy(head, step)` finds the
    longest run of notes a track shares with any one piece: hash hits are verified note by note
    and extended for as long as the two agree. Only the first `max_candidates` places of one
    16-note run are tried (a run common to hundreds of places is a cliche, not a copy), so a copy
    is always found but its length can, in such cases, be under-reported.
    """

    def __init__(self, pieces: Iterable[tuple[np.ndarray, np.ndarray]], ngram: int = 16,
                 max_candidates: int = 256):
        self.ngram, self.max_candidates = ngram, max_candidates
        heads, steps, hashes, piece_of, pos_of, starts = [], [], [], [], [], [0]
        for k, (head, step) in enumerate(pieces):
            h = ngram_hashes(head, step, ngram)
            heads.append(head), steps.append(step), hashes.append(h)
            piece_of.append(np.full(h.size, k, dtype=np.int32))
            pos_of.append(np.arange(h.size, dtype=np.int32))
            starts.append(starts[-1] + head.size)
        self.n_pieces = len(starts) - 1
        self.piece_start = np.array(starts, dtype=np.int64)
        self.head, self.step = _cat(heads, np.int64), _cat(steps, np.int64)
        all_hashes = _cat(hashes, np.uint64)
        order = np.argsort(all_hashes, kind="stable")
        self.hashes = all_hashes[order]
        self.piece_of, self.pos_of = _cat(piece_of, np.int32)[order], _cat(pos_of, np.int32)[order]

    def __len__(self) -> int:
        return int(self.hashes.size)

    def _extend(self, head: np.ndarray, step: np.ndarray, i: int, piece: int, pos: int) -> int:
        """Length of the shared run starting at track note i and piece note pos (0: a collision)."""
        g = int(self.piece_start[piece]) + pos
        piece_end = int(self.piece_start[piece + 1])
        if head[i] != self.head[g]:
            return 0
        length = 1
        while i + length < step.size and g + length < piece_end and step[i + length] == self.step[g + length]:
            length += 1
        return length if length >= self.ngram else 0

    def longest_copy(self, head: np.ndarray, step: np.ndarray) -> Copy:
        """The longest run of >= ngram notes shared with one indexed piece (Copy(0, -1, -1, -1): none)."""
        query = ngram_hashes(head, step, self.ngram)
        best = Copy(0, -1, -1, -1)
        lo = np.searchsorted(self.hashes, query, side="left")
        hi = np.searchsorted(self.hashes, query, side="right")
        reached: dict[tuple[int, int], int] = {}  # (piece, diagonal) -> track note a run reached
        for i in np.flatnonzero(hi > lo).tolist():
            for j in range(lo[i], min(hi[i], lo[i] + self.max_candidates)):
                piece, pos = int(self.piece_of[j]), int(self.pos_of[j])
                if reached.get((piece, pos - i), -1) > i:
                    continue  # inside a run already measured
                length = self._extend(head, step, i, piece, pos)
                reached[(piece, pos - i)] = i + length
                if length > best.notes:
                    best = Copy(length, piece, i, pos)
        return best


def _cat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype=dtype)


# --- token statistics ----------------------------------------------------------------------------


def unigram_log_probs(tokens: np.ndarray, vocab_size: int, alpha: float = 1.0) -> np.ndarray:
    """(vocab_size,) natural-log token probabilities with add-`alpha` smoothing."""
    counts = np.bincount(np.asarray(tokens, dtype=np.int64), minlength=vocab_size)[:vocab_size] + alpha
    return np.log(counts / counts.sum())


def unigram_nll(log_probs: np.ndarray, tokens: np.ndarray) -> float:
    """Mean negative log-likelihood (nats per token) of `tokens` under a unigram model."""
    tokens = np.asarray(tokens, dtype=np.int64)
    return float(-log_probs[tokens].mean()) if tokens.size else float("nan")
