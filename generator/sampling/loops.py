"""Loop and degeneration detectors: a generated token sequence -> a rejection reason or None.

Each detector measures one statistic of the decoded notes (`measure`) and fires when it passes
its limit in `LoopLimits`. The per-genre limits in GENRE_LIMITS come from `calibrate` on real
music (Sber's four sample files and the held-out test shard), chosen so that at most 5% of
real pieces of a genre are rejected; docs/sampling.md records the numbers.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from generator.tokens import vocab
from generator.tokens.encoding import DEFAULT, Encoding

log = logging.getLogger(__name__)

DETECTORS = ("too_few_notes", "stuck_note", "long_silence", "glued_notes", "hammered_pitch", "phrase_loop")


@dataclass(frozen=True)
class LoopLimits:
    """Where each detector fires. Upper limits fire when the statistic is above them."""

    min_notes: int = 8  # too_few_notes: fewer notes than this...
    min_notes_per_s: float = 0.5  # ...or a sparser track than this
    max_note_s: float = 8.0  # stuck_note: one note held longer
    max_silence_s: float = 3.0  # long_silence: nothing sounding for this long inside the track
    max_glued_fraction: float = 0.9  # glued_notes: Sber's rule (gap < 10 ms between same-pitch notes)
    hammer_window_notes: int = 32
    max_hammer_share: float = 0.5  # hammered_pitch: one pitch's share of the onsets in any window
    phrase_notes: int = 8
    max_phrase_share: float = 0.5  # phrase_loop: share of notes inside repeats of the most repeated phrase

    @classmethod
    def for_genre(cls, genre: str | None) -> LoopLimits:
        """The calibrated limits of a genre (aliases allowed); the defaults for None or unknown."""
        if genre is None:
            return cls()
        try:
            return GENRE_LIMITS[vocab.canonical_genre(genre)]
        except KeyError:
            return cls()


RELEASE_SHARE = 0.8
GENRE_ALIASES_AND_NAMES = (*vocab.GENRES, *vocab.GENRE_ALIASES)


# How long real pitched notes of each genre last at the 99.9th percentile: 150 training pieces per
# genre of the committed shards, `note_length_quantiles(training_pieces(...), 0.999)` (seed 0).
GENRE_RELEASE_S: dict[str, float] = {"classic": 4.0, "jazz": 4.05, "calm": 24.8, "pop": 5.5}


def release_after_s(limits: LoopLimits, genre: str | None = None) -> float:
    """When the sampler releases a held note: no later than 99.9% of the genre's real notes end,
    and well before the stuck-note detector would fire."""
    cap = RELEASE_SHARE * limits.max_note_s
    real = GENRE_RELEASE_S.get(vocab.canonical_genre(genre)) if genre in GENRE_ALIASES_AND_NAMES else None
    return min(cap, real) if real is not None else cap


def note_length_quantiles(pieces: Iterable[tuple[str, Sequence[int]]], q: float = 0.999) -> dict[str, float]:
    """Per genre, the q-quantile of pitched note lengths (s) over (genre, ids) pieces."""
    from generator.tokens.tokenizer import ids_to_notes

    lengths: dict[str, list[float]] = {}
    for genre, ids in pieces:
        lengths.setdefault(genre, []).extend(
            n.end_s - n.start_s for n in ids_to_notes(ids) if n.instrument != vocab.DRUMS_FAMILY)
    return {g: round(float(np.quantile(v, q)), 2) for g, v in lengths.items() if v}


def training_pieces(shard_path: str | Path, per_genre: int = 150, seed: int = 0) -> Iterator[tuple[str, list[int]]]:
    """(genre, ids) of `per_genre` random pieces per genre of a shard (deterministic for a seed)."""
    from generator.corpus.shards import load_shard

    shard = load_shard(shard_path)
    rng = np.random.default_rng(seed)
    for index, genre in enumerate(vocab.GENRES):
        rows = np.flatnonzero(shard.genre == index)
        for row in rng.choice(rows, min(per_genre, len(rows)), replace=False):
            yield genre, shard.ids(int(row)).tolist()


# Calibrated by `calibrate` (`gen data calibrate-loops`; docs/sampling.md, "Loop detector
# calibration"): the defaults, loosened where real music of the genre went past them.
GENRE_LIMITS: dict[str, LoopLimits] = {
    "classic": LoopLimits(max_silence_s=4.66),
    "jazz": LoopLimits(max_note_s=10.4),
    "calm": LoopLimits(max_note_s=18.12, max_silence_s=26.61),
    "pop": LoopLimits(max_note_s=35.47),
}


@dataclass(frozen=True)
class LoopStats:
    n_notes: int
    duration_s: float
    notes_per_s: float
    longest_note_s: float
    longest_silence_s: float
    glued_fraction: float
    hammer_share: float
    phrase_share: float


# ---- statistics -------------------------------------------------------------------------------

def _pitched(notes: Sequence) -> list:
    return [n for n in notes if getattr(n, "instrument", None) != vocab.DRUMS_FAMILY]


def glued_fraction(notes: Sequence, threshold_s: float = 0.01) -> float:
    """Sber's measure: of consecutive notes of one pitch, the share whose gap is < 10 ms."""
    pitched = sorted(_pitched(notes), key=lambda n: (n.pitch, n.start_s))
    gaps = [b.start_s - a.end_s for a, b in zip(pitched, pitched[1:]) if a.pitch == b.pitch]
    return float(np.mean(np.array(gaps) < threshold_s)) if gaps else 0.0


def longest_silence_s(notes: Sequence) -> float:
    """The longest stretch with nothing sounding between the first onset and the last release."""
    spans = sorted((n.start_s, n.end_s) for n in notes)
    longest, reach = 0.0, spans[0][1] if spans else 0.0
    for start, end in spans[1:]:
        longest = max(longest, start - reach)
        reach = max(reach, end)
    return longest


def _onsets(notes: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Pitches and onsets (in ticks, 10 ms steps) of the pitched notes, in time order."""
    pitched = sorted(_pitched(notes), key=lambda n: (n.start_s, n.pitch))
    pitches = np.array([n.pitch for n in pitched], dtype=np.int64)
    steps = np.array([round(n.start_s * DEFAULT.ticks_per_s) for n in pitched], dtype=np.int64)
    return pitches, steps


def hammer_share(pitches: np.ndarray, window: int) -> float:
    """The largest share one pitch takes of the onsets in any `window` consecutive onsets."""
    if len(pitches) == 0:
        return 0.0
    window = min(window, len(pitches))
    counts = np.zeros((len(pitches) + 1, 128), dtype=np.int32)
    np.cumsum(np.eye(128, dtype=np.int32)[pitches], axis=0, out=counts[1:])
    return float((counts[window:] - counts[:-window]).max() / window)


def phrase_share(pitches: np.ndarray, steps: np.ndarray, n: int) -> float:
    """Share of onsets inside occurrences (3 or more) of the most repeated n-note phrase.

    A phrase is n pitches and the n-1 onset intervals between them (10 ms steps), so only a
    verbatim repeat matches, wherever it is in the track.
    """
    if len(pitches) < n:
        return 0.0
    intervals = np.diff(steps)
    grams = [pitches[i:i + n].tobytes() + intervals[i:i + n - 1].tobytes() for i in range(len(pitches) - n + 1)]
    phrase, count = Counter(grams).most_common(1)[0]
    if count < 3:
        return 0.0
    covered = np.zeros(len(pitches), dtype=bool)
    for i, gram in enumerate(grams):
        if gram == phrase:
            covered[i:i + n] = True
    return float(covered.mean())


def measure(notes: Sequence, duration_s: float, limits: LoopLimits = LoopLimits()) -> LoopStats:
    """All detector statistics of a decoded track (Note objects: pitch, start_s, end_s, instrument)."""
    pitches, steps = _onsets(notes)
    duration_s = max(duration_s, max((n.end_s for n in notes), default=0.0))
    return LoopStats(
        n_notes=len(notes),
        duration_s=duration_s,
        notes_per_s=len(notes) / duration_s if duration_s > 0 else 0.0,
        longest_note_s=max((n.end_s - n.start_s for n in notes), default=0.0),
        longest_silence_s=longest_silence_s(notes),
        glued_fraction=glued_fraction(notes),
        hammer_share=hammer_share(pitches, limits.hammer_window_notes),
        phrase_share=phrase_share(pitches, steps, limits.phrase_notes),
    )


# ---- detection --------------------------------------------------------------------------------

def verdict(stats: LoopStats, limits: LoopLimits) -> str | None:
    """The first detector that fires on these statistics, as a one-line reason; None if none."""
    s, lim = stats, limits
    if s.n_notes < lim.min_notes or s.notes_per_s < lim.min_notes_per_s:
        return (f"too_few_notes: {s.n_notes} notes in {s.duration_s:.1f} s ({s.notes_per_s:.2f}/s; "
                f"limit {lim.min_notes} notes and {lim.min_notes_per_s:.2f}/s)")
    if s.longest_note_s > lim.max_note_s:
        return f"stuck_note: a note held {s.longest_note_s:.1f} s (limit {lim.max_note_s:.1f} s)"
    if s.longest_silence_s >= lim.max_silence_s:
        return (f"long_silence: {s.longest_silence_s:.1f} s of silence inside the track "
                f"(limit {lim.max_silence_s:.1f} s)")
    if s.glued_fraction > lim.max_glued_fraction:
        return (f"glued_notes: {s.glued_fraction:.0%} of same-pitch repeats are glued "
                f"(limit {lim.max_glued_fraction:.0%})")
    if s.hammer_share > lim.max_hammer_share:
        return (f"hammered_pitch: one pitch takes {s.hammer_share:.0%} of {lim.hammer_window_notes} "
                f"consecutive notes (limit {lim.max_hammer_share:.0%})")
    if s.phrase_share > lim.max_phrase_share:
        return (f"phrase_loop: one {lim.phrase_notes}-note phrase repeated verbatim covers "
                f"{s.phrase_share:.0%} of the notes (limit {lim.max_phrase_share:.0%})")
    return None


def detect(ids: Sequence[int], genre: str | None = None, limits: LoopLimits | None = None,
           encoding: Encoding = DEFAULT) -> str | None:
    """A rejection reason for a token sequence (genre prefix optional) in `encoding`, or None if
    it looks sound. `limits` defaults to the genre's calibrated limits. A beat encoding's track is
    measured on its own clock (the reference tempo)."""
    from generator.tokens.tokenizer import ids_to_notes, seconds_of

    limits = limits if limits is not None else LoopLimits.for_genre(genre)
    ids = [int(t) for t in ids]
    return verdict(measure(ids_to_notes(ids, encoding=encoding), seconds_of(ids, encoding=encoding), limits), limits)


# ---- calibration ------------------------------------------------------------------------------

# statistic -> (LoopLimits field, True if the detector fires above the limit)
_BOUNDS = {
    "longest_note_s": ("max_note_s", True),
    "longest_silence_s": ("max_silence_s", True),
    "glued_fraction": ("max_glued_fraction", True),
    "hammer_share": ("max_hammer_share", True),
    "phrase_share": ("max_phrase_share", True),
    "notes_per_s": ("min_notes_per_s", False),
    "n_notes": ("min_notes", False),
}
_FRACTIONS = {"max_glued_fraction", "max_hammer_share", "max_phrase_share"}
_DETECTOR_STATS = {  # detector -> the statistics it compares with a limit
    "too_few_notes": ("notes_per_s", "n_notes"),
    "stuck_note": ("longest_note_s",),
    "long_silence": ("longest_silence_s",),
    "glued_notes": ("glued_fraction",),
    "hammered_pitch": ("hammer_share",),
    "phrase_loop": ("phrase_share",),
}


@dataclass(frozen=True)
class GenreCalibration:
    genre: str
    n_pieces: int
    limits: LoopLimits
    rejected_with_defaults: dict[str, int]  # detector -> real pieces it rejected at the base limits
    rejected_with_limits: int  # real pieces rejected at the calibrated limits
    quantiles: dict[str, tuple[float, float, float]]  # statistic -> (median, 95th percentile, max)


def calibrate(pieces: Iterable[tuple[str, Sequence]], *, anchors: Iterable[tuple[str, Sequence]] = (),
              base: LoopLimits = LoopLimits(), max_false_rejection: float = 0.05,
              margin: float = 1.1) -> dict[str, GenreCalibration]:
    """Per-genre limits from real music: `pieces` yields (genre, notes) or (genre, ids).

    Each limit starts at `base` and is loosened only as far as needed (times `margin`) so that at
    most `max_false_rejection` of a genre's pieces are rejected, by all detectors together.
    `anchors` (e.g. Sber's sample files) are pieces of the calibration that must never be
    rejected: limits are loosened further until they pass.
    """
    stats: dict[str, list[LoopStats]] = {}
    anchored: dict[str, list[LoopStats]] = {}
    for target, source in ((anchored, anchors), (stats, pieces)):
        for genre, piece in source:
            target.setdefault(vocab.canonical_genre(genre), []).append(_measure_piece(piece, base))
    return {genre: _calibrate_genre(genre, stats.get(genre, []) + anchored.get(genre, []),
                                    anchored.get(genre, []), base, max_false_rejection, margin)
            for genre in sorted(set(stats) | set(anchored))}


def _measure_piece(piece: Sequence, limits: LoopLimits) -> LoopStats:
    if piece and not hasattr(piece[0], "pitch"):
        from generator.tokens.tokenizer import ids_to_notes, seconds_of

        ids = [int(t) for t in piece]
        return measure(ids_to_notes(ids), seconds_of(ids), limits)
    return measure(piece, 0.0, limits)


def _calibrate_genre(genre: str, stats: list[LoopStats], anchors: list[LoopStats], base: LoopLimits,
                     rate: float, margin: float) -> GenreCalibration:
    values = {name: np.array([getattr(s, name) for s in stats], dtype=float) for name in _BOUNDS}
    changes: dict[str, float] = {}
    for name, (field, upper) in _BOUNDS.items():  # each detector alone rejects at most `rate`
        if name == "n_notes":
            continue  # the note count stays a hard floor unless the loop below must move it
        q = float(np.quantile(values[name], 1 - rate if upper else rate, method="higher" if upper else "lower"))
        changes[field] = _loosened(field, getattr(base, field), q, upper, margin)
    limits = replace(base, **changes)
    while True:  # together too: loosen the detector that rejects most until the total fits
        rejected = [(v.split(":")[0], s) for s in stats if (v := verdict(s, limits))]
        anchors_rejected = [(d, s) for d, s in rejected if any(s is a for a in anchors)]
        if len(rejected) <= rate * len(stats) and not anchors_rejected:
            break
        pool = anchors_rejected or rejected
        worst = Counter(name for name, _ in pool).most_common(1)[0][0]
        culprits = [s for d, s in pool if d == worst]
        moved = {}
        for name in _DETECTOR_STATS[worst]:
            field, upper = _BOUNDS[name]
            nearest = (min if upper else max)(getattr(s, name) for s in culprits)
            moved[field] = _loosened(field, getattr(limits, field), nearest, upper, margin)
        if all(moved[f] == getattr(limits, f) for f in moved):
            break  # cannot loosen further (a fraction already at 1): report what is left
        limits = replace(limits, **moved)
    with_defaults = Counter(v.split(":")[0] for s in stats if (v := verdict(s, base)))
    quantiles = {name: (float(np.median(v)), float(np.quantile(v, 0.95)), float(v.max()))
                 for name, v in values.items()}
    return GenreCalibration(genre, len(stats), limits, dict(with_defaults), len(rejected), quantiles)


def _loosened(field: str, current: float, value: float, upper: bool, margin: float) -> float:
    """The limit moved just past `value` with `margin` (to 0.01, never tightened); fractions <= 1."""
    if field == "min_notes":
        return min(current, int(value))
    if upper:
        needed = math.ceil(value * margin * 100) / 100
        return max(current, min(needed, 1.0) if field in _FRACTIONS else needed)
    return min(current, math.floor(value / margin * 100) / 100)


def calibration_table(result: dict[str, GenreCalibration]) -> str:
    """A Markdown table of a calibration, for docs/sampling.md."""
    names = [f.name for f in fields(LoopLimits) if f.name not in ("hammer_window_notes", "phrase_notes", "min_notes")]
    lines = ["| genre | pieces | rejected at defaults | rejected at limits | " + " | ".join(names) + " |",
             "|" + "---|" * (4 + len(names))]
    for cal in result.values():
        limits = asdict(cal.limits)
        defaults = ", ".join(f"{k} {v}" for k, v in sorted(cal.rejected_with_defaults.items())) or "none"
        cells = [f"{limits[n]:g}" for n in names]
        lines.append(f"| {cal.genre} | {cal.n_pieces} | {defaults} | {cal.rejected_with_limits} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def genre_limits_source(result: dict[str, GenreCalibration]) -> str:
    """The GENRE_LIMITS entries a calibration calls for, as Python source: only the values that
    differ from the defaults, and a note where a genre's limits are already the shipped ones."""
    defaults = LoopLimits()
    lines = []
    for genre, cal in result.items():
        changed = ", ".join(f"{k}={v!r}" for k, v in vars(cal.limits).items() if v != getattr(defaults, k))
        same = " (as shipped)" if GENRE_LIMITS.get(genre) == cal.limits else ""
        lines.append(f'    "{genre}": LoopLimits({changed}),{same}')
    return "\n".join(lines)



def calibration_pieces(sber_midi_dir: str | Path | None = None,
                       test_shard: str | Path | None = None) -> Iterator[tuple[str, list[int]]]:
    """(genre, ids) of real music: Sber's sample files (`<genre>_N.mid`) and the held-out
    pieces of a test shard (data/shards/test.npz); either source may be None or absent."""
    from generator.tokens.tokenizer import midi_to_ids

    if sber_midi_dir is not None and Path(sber_midi_dir).is_dir():
        for path in sorted(Path(sber_midi_dir).glob("*.mid")):
            yield vocab.canonical_genre(path.stem.split("_")[0]), midi_to_ids(path)
    if test_shard is not None and Path(test_shard).is_file():
        from generator.corpus.shards import load_shard

        shard = load_shard(test_shard)
        for index in range(len(shard)):
            yield vocab.GENRES[int(shard.genre[index])], shard.ids(index).tolist()
