"""The yardstick: generate tracks per genre and measure them against real music (`gen eval`).

`evaluate_tracks` judges a list of generated token sequences against the train and test shards
(no model needed); `run_eval` samples the tracks with a model and adds its held-out NLL;
eval/library.py measures the tracks of a built library instead. The metric definitions are in
docs/evaluation.md; rendering (JSON, Markdown) is in eval/report.py.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from generator.corpus.shards import Shard, load_shard, shard_path
from generator.errors import InputError
from generator.eval import features as F
from generator.eval import metrics
from generator.eval.musicality import MEASURE_S, musicality
from generator.eval.musicality import NAMES as MUSICALITY_NAMES
from generator.seeds import stable_seed
from generator.tokens import vocab
from generator.tokens.encoding import DEFAULT, Encoding

log = logging.getLogger(__name__)

Stage = Callable[[str], None]  # told the name of each stage as it starts


@dataclass(frozen=True)
class EvalSettings:
    per_genre: int = 4  # generated tracks per genre
    seconds: float = 30.0  # target length of each track; real pieces are cut to the same length
    seed: int = 0
    genres: tuple[str, ...] = vocab.GENRES
    max_attempts: int = 4  # samples per track before it is given up (loop-detector resampling)
    batch_size: int = 8
    ending: str = "ring"
    reference_per_genre: int = 200  # real train pieces per genre: classifier and feature reference
    copy_pieces: int | None = None  # train pieces indexed for the copy check (None: all)
    copy_notes: int = 16  # a shared run of this many notes is a copy
    transposition_invariant: bool = False  # copies: compare intervals instead of pitches
    phrase_notes: int = 8
    max_phrase_repeats: int = 4  # a kept track loops when a phrase occurs more often than this
    nll_tokens_per_genre: int | None = 50_000  # held-out tokens scored per genre (None: all)
    # Sample each genre with the instruments `gen batch` gives it when a recipe names none
    # (recipe_fields.DEFAULT_INSTRUMENTATION); False: any instrument family the model picks.
    instrumentation: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("per_genre", self.per_genre >= 1, "a whole number >= 1"),
            ("seconds", 0 < self.seconds <= 3600, "seconds in (0, 3600]"),
            ("reference_per_genre", self.reference_per_genre >= 2, "a whole number >= 2"),
            ("copy_notes", self.copy_notes >= 2, "a whole number >= 2"),
            ("phrase_notes", self.phrase_notes >= 2, "a whole number >= 2"),
            ("max_attempts", self.max_attempts >= 1, "a whole number >= 1"),
        ]
        for key, ok, fix in checks:
            if not ok:
                raise InputError(f"eval setting {key} = {getattr(self, key)!r} is invalid: use {fix}")
        for genre in self.genres:
            try:
                vocab.canonical_genre(genre)
            except KeyError:
                raise InputError(f"eval setting genres: '{genre}' is unknown: use {', '.join(vocab.GENRES)}") from None


@dataclass(frozen=True)
class GeneratedTrack:
    genre: str
    seed: int
    target_s: float
    ids: tuple[int, ...] | None  # None: given up after max_attempts rejections
    rejections: tuple[str, ...] = ()  # loop-detector reasons of the rejected attempts
    encoding: Encoding = DEFAULT  # what the ids mean (the model's encoding)
    bpm: float | None = None  # beat time: the tempo it was made at (its notes are measured at it)

    def notes(self) -> list:
        from generator.tokens.tokenizer import ids_to_notes

        return ids_to_notes(self.ids, encoding=self.encoding, bpm=self.bpm)

    def seconds(self) -> float:
        from generator.tokens.tokenizer import seconds_of

        return seconds_of(self.ids, encoding=self.encoding, bpm=self.bpm)

    def measured(self, seconds: float) -> tuple[list, float]:
        """(notes, length in seconds) that the features, the classifier, the musicality and the
        loop count judge: a sampled track whole, as it was made `seconds` long."""
        return self.notes(), self.seconds()


@dataclass(frozen=True)
class RealSet:
    """Excerpts of real pieces: notes of each piece's first `seconds`, its genre and shard row."""

    notes: tuple[tuple, ...]
    durations_s: tuple[float, ...]
    genre: tuple[int, ...]
    rows: tuple[int, ...]


@dataclass(frozen=True)
class TrackRow:
    index: int
    genre: str
    seed: int
    kept: bool
    predicted_genre: str | None
    target_s: float
    actual_s: float | None
    duration_error_pct: float | None
    released: bool | None  # every NOTE_ON has its NOTE_OFF before the end
    within_track: bool | None  # no note ends after the track or lasts longer than it
    phrase_repeats: int | None
    longest_copy_notes: int | None  # 0: no run of >= copy_notes notes shared with a train piece
    copy_piece: int | None  # the pieces.jsonl row it was copied from
    rejections: tuple[str, ...]
    musicality: dict[str, float | None] | None = None  # eval/musicality.py, over the whole track


@dataclass(frozen=True)
class EvalReport:
    settings: EvalSettings
    features: tuple[metrics.FeatureComparison, ...]
    histogram_overlap: dict[str, float]
    real_overlap: dict[str, float]  # held-out real (as many pieces per genre as generated) vs reference
    genre_generated: metrics.Confusion
    genre_real_heldout: metrics.Confusion
    attempts: int
    rejected_attempts: int
    first_try_rejected: int
    given_up: int
    rejection_reasons: dict[str, int]
    looping_tracks: int
    copies_flagged: int
    copy_index_pieces: int
    duration_mae_pct: float
    clean_endings: int
    kept: int
    tracks: tuple[TrackRow, ...]
    nll: dict[str, float] = field(default_factory=dict)
    unigram_nll: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    musicality: tuple[metrics.GenreMeasure, ...] = ()  # per genre: generated vs held-out real


# --- real music ----------------------------------------------------------------------------------


def prefix_excerpt(ids: Sequence[int] | np.ndarray, seconds: float, encoding: Encoding = DEFAULT) -> tuple[list, float]:
    """Notes of the first `seconds` of a piece (cut at the excerpt end) and the excerpt length."""
    from generator.tokens.tokenizer import ids_to_notes

    t = np.asarray(ids, dtype=np.int64)
    clock = encoding.seconds(np.cumsum(encoding.shift_ticks(t)))
    length_s = min(seconds, float(clock[-1]) if clock.size else 0.0)
    cut = int(np.searchsorted(clock, seconds + 5.0, side="right"))  # margin: releases of held notes
    return F.excerpt(ids_to_notes(t[:cut].tolist(), encoding=encoding), 0.0, length_s), length_s


def real_set(shard: Shard, per_genre: int, seconds: float, rng: np.random.Generator) -> RealSet:
    """Up to `per_genre` pieces of each genre (a seeded random choice), cut to `seconds`."""
    notes, durations, genres, rows = [], [], [], []
    for g in range(len(vocab.GENRES)):
        index = np.flatnonzero(shard.genre == g)
        if index.size > per_genre:
            index = np.sort(rng.choice(index, per_genre, replace=False))
        for i in index.tolist():
            excerpt, length_s = prefix_excerpt(shard.ids(i), seconds, shard.encoding)
            if not F.pitched(excerpt) or length_s <= 0:
                continue
            notes.append(tuple(excerpt)), durations.append(length_s), genres.append(g), rows.append(i)
    return RealSet(tuple(notes), tuple(durations), tuple(genres), tuple(rows))


def _matched_rows(real: RealSet, counts: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """Rows of `real`: up to counts[genre] of each genre (as many as there are tracks), a seeded choice."""
    genre = np.array(real.genre, dtype=int)
    picks = []
    for name, count in counts.items():
        rows = np.flatnonzero(genre == vocab.GENRES.index(name))
        picks.append(np.sort(rng.choice(rows, min(count, rows.size), replace=False)))
    return np.concatenate(picks).astype(int) if picks else np.zeros(0, dtype=int)


def _vectors(notes_list: Sequence[Sequence], durations: Sequence[float]) -> np.ndarray:
    if not notes_list:
        return np.zeros((0, len(F.vector_names())))
    return np.stack([F.feature_vector(n, d) for n, d in zip(notes_list, durations)])


def load_shards(data_dir) -> tuple[Shard, Shard]:
    """The train (reference, classifier, copies) and test (held-out) shards of a corpus folder."""
    return load_shard(shard_path(data_dir, "train")), load_shard(shard_path(data_dir, "test"))


# --- the measures ----------------------------------------------------------------------------------


def compare_features(real: np.ndarray, generated: np.ndarray) -> tuple[list, dict[str, float]]:
    """Per scalar feature a FeatureComparison, and the overlap of each mean histogram."""
    names = F.vector_names()
    rows = [metrics.compare_feature(k, real[:, names.index(k)], generated[:, names.index(k)])
            for k in F.SCALAR_NAMES]
    hists = {}
    for h in F.HISTOGRAM_NAMES:
        cols = [i for i, n in enumerate(names) if n.startswith(h + "[")]
        hists[h] = metrics.histogram_overlap(real[:, cols], generated[:, cols])
    return rows, hists


def ending_checks(track: GeneratedTrack) -> tuple[bool, bool]:
    """(released, within_track): every note released by a NOTE_OFF before the end (beat time's
    one-shot drums have none); no note ends after the track's last time or lasts longer than it."""
    one_shot_drums = track.encoding.has_bars
    family, sounding = 0, set()
    for token in track.ids:
        t = int(token)
        if t < vocab.NOTE_OFF:
            if not (one_shot_drums and family == vocab.DRUMS_FAMILY):
                sounding.add((family, t))
        elif t < vocab.VELOCITY:
            sounding.discard((family, t - vocab.NOTE_OFF))
        elif vocab.INSTRUMENT <= t < vocab.VOCAB_SIZE:
            family = t - vocab.INSTRUMENT
    end_s = track.seconds()
    notes = track.notes()
    within = all(n.end_s <= end_s + 1e-9 and n.end_s - n.start_s <= end_s + 1e-9 for n in notes)
    return not sounding, within


def unigram_baseline(train: Shard, test: Shard, tokens_per_genre: int | None) -> dict[str, float]:
    """NLL (nats/token) per genre of a smoothed unigram model of the train split, scored on the
    same targets as train.evaluate_nll (each piece's tokens + END, whole pieces until the cap)."""
    ends = np.full(len(train), vocab.END)
    log_probs = metrics.unigram_log_probs(np.concatenate([train.tokens, ends]), train.encoding.vocab_size)
    out = {}
    for g, genre in enumerate(vocab.GENRES):
        targets, used = [], 0
        for i in np.flatnonzero(test.genre == g).tolist():
            if tokens_per_genre is not None and used >= tokens_per_genre:
                break
            targets.append(np.append(test.ids(i).astype(np.int64), vocab.END))
            used += len(targets[-1])
        if targets:
            out[genre] = metrics.unigram_nll(log_probs, np.concatenate(targets))
    return out


def _copy_index(train: Shard, settings: EvalSettings, rng: np.random.Generator) -> tuple[metrics.CopyIndex, np.ndarray]:
    rows = np.arange(len(train))
    if settings.copy_pieces is not None and settings.copy_pieces < rows.size:
        rows = np.sort(rng.choice(rows, settings.copy_pieces, replace=False))
    symbols = (metrics.id_symbols(train.ids(i), transposition_invariant=settings.transposition_invariant)
               for i in rows.tolist())
    return metrics.CopyIndex(symbols, ngram=settings.copy_notes), rows


def _reason_name(reason: str) -> str:
    return reason.split(":", 1)[0]


def evaluate_tracks(tracks: Sequence[GeneratedTrack], train: Shard, test: Shard, settings: EvalSettings,
                    stage: Stage | None = None) -> EvalReport:
    """Every measure that needs no model, for `tracks` against the train (reference, classifier,
    copies) and test (held-out sanity check) shards."""
    stage = stage or (lambda name: None)
    rng = np.random.default_rng(settings.seed)
    stage("real reference")
    reference = real_set(train, settings.reference_per_genre, settings.seconds, rng)
    heldout = real_set(test, settings.reference_per_genre, settings.seconds, rng)
    if len(set(reference.genre)) < 2:
        raise InputError(f"{train.path}: real pieces of {len(set(reference.genre))} genre(s); the genre "
                         "classifier needs at least 2: prepare the corpus with `gen data`")
    x_ref = _vectors(reference.notes, reference.durations_s)
    x_out = _vectors(heldout.notes, heldout.durations_s)

    stage("features")
    kept = [(k, t) for k, t in enumerate(tracks) if t.ids is not None]
    excerpts = [t.measured(settings.seconds) for _, t in kept]
    notes = [n for n, _ in excerpts]
    x_gen = _vectors(notes, [length for _, length in excerpts])
    comparisons, hist_overlap = compare_features(x_ref, x_gen) if kept else ([], {})
    counts = Counter(vocab.canonical_genre(t.genre) for t in tracks)
    matched = _matched_rows(heldout, counts, rng)  # as many held-out pieces as generated tracks
    ceiling, _ = compare_features(x_ref, x_out[matched]) if matched.size else ([], {})

    stage("genre classifier")
    classifier = metrics.fit_genre_classifier(x_ref, np.array(reference.genre), settings.seed)
    y_gen = np.array([vocab.GENRES.index(vocab.canonical_genre(t.genre)) for _, t in kept], dtype=int)
    genre_generated = metrics.confusion(classifier, x_gen, y_gen, vocab.GENRES)
    genre_heldout = metrics.confusion(classifier, x_out, np.array(heldout.genre, dtype=int), vocab.GENRES)
    predicted = classifier.predict(np.nan_to_num(x_gen)).tolist() if kept else []

    stage("musicality")
    window_s = min(settings.seconds, MEASURE_S)
    measured = [musicality(n, window_s) for n in notes]
    genres = tuple(dict.fromkeys(vocab.canonical_genre(g) for g in settings.genres))
    real_measured = [(vocab.GENRES[g], musicality(n, window_s))
                     for n, g in zip(heldout.notes, heldout.genre) if vocab.GENRES[g] in genres]
    per_genre = metrics.compare_per_genre(MUSICALITY_NAMES, genres, [
        (vocab.canonical_genre(t.genre), m) for (_, t), m in zip(kept, measured)], real_measured)

    stage("copies")
    index, index_rows = _copy_index(train, settings, rng)
    rows = []
    by_track = {k: j for j, (k, _) in enumerate(kept)}
    for k, track in enumerate(tracks):
        j = by_track.get(k)
        if j is None:
            rows.append(TrackRow(k, track.genre, track.seed, False, None, track.target_s, None, None, None,
                                 None, None, None, None, track.rejections))
            continue
        copy = index.longest_copy(*metrics.id_symbols(
            track.ids, transposition_invariant=settings.transposition_invariant))
        released, within = ending_checks(track)
        length_s = track.seconds()
        rows.append(TrackRow(
            k, track.genre, track.seed, True, vocab.GENRES[predicted[j]], track.target_s, length_s,
            100 * abs(length_s - track.target_s) / track.target_s, released, within,
            metrics.phrase_repeats(notes[j], settings.phrase_notes), copy.notes,
            int(train.piece[index_rows[copy.piece]]) if copy.piece >= 0 else None, track.rejections,
            measured[j]))
    return _summarise(tracks, rows, settings, comparisons, hist_overlap, ceiling, genre_generated,
                      genre_heldout, len(index_rows), per_genre)


def _summarise(tracks, rows, settings, comparisons, hist_overlap, ceiling, genre_generated, genre_heldout,
               n_indexed, per_genre) -> EvalReport:
    kept = [r for r in rows if r.kept]
    reasons = Counter(_reason_name(reason) for t in tracks for reason in t.rejections)
    return EvalReport(
        settings=settings,
        features=tuple(comparisons),
        histogram_overlap=hist_overlap,
        real_overlap={c.name: c.overlap for c in ceiling},
        genre_generated=genre_generated,
        genre_real_heldout=genre_heldout,
        attempts=sum(len(t.rejections) for t in tracks) + len(kept),
        rejected_attempts=sum(len(t.rejections) for t in tracks),
        first_try_rejected=sum(1 for t in tracks if t.rejections),
        given_up=len(rows) - len(kept),
        rejection_reasons=dict(sorted(reasons.items())),
        looping_tracks=sum(1 for r in kept if r.phrase_repeats > settings.max_phrase_repeats),
        copies_flagged=sum(1 for r in kept if r.longest_copy_notes >= settings.copy_notes),
        copy_index_pieces=n_indexed,
        duration_mae_pct=float(np.mean([r.duration_error_pct for r in kept])) if kept else float("nan"),
        clean_endings=sum(1 for r in kept if r.released and r.within_track),
        kept=len(kept),
        tracks=tuple(rows),
        musicality=tuple(per_genre),
    )


# --- with a model ----------------------------------------------------------------------------------


def track_seed(seed: int, genre: str, k: int) -> int:
    """A stable 63-bit seed per (eval seed, genre, track number)."""
    return stable_seed("eval", int(seed), genre, k)


def default_palette(genre: str) -> tuple[int, ...]:
    """The instrument families `gen batch` plays `genre` with when a recipe names none."""
    from generator.library.recipe_fields import DEFAULT_INSTRUMENTATION

    families = DEFAULT_INSTRUMENTATION[vocab.canonical_genre(genre)]
    return tuple(sorted(vocab.INSTRUMENT_FAMILIES.index(family) for family in families))


def eval_requests(params, settings: EvalSettings) -> list:
    """The GenerationRequests of an evaluation: `per_genre` per genre, each with its own seed."""
    from generator.sampling.generate import GenerationRequest
    from generator.sampling.loops import LoopLimits, release_after_s

    return [GenerationRequest(genre=vocab.canonical_genre(g), seed=track_seed(settings.seed, g, k),
                              duration_s=settings.seconds, params=params, ending=settings.ending,
                              max_note_s=release_after_s(LoopLimits.for_genre(g), g),
                              instruments=default_palette(g) if settings.instrumentation else None)
            for g in settings.genres for k in range(settings.per_genre)]


def generate_tracks(model, params, settings: EvalSettings, device: str = "cpu",
                    progress: Callable[[int, int], None] | None = None) -> list[GeneratedTrack]:
    """`per_genre` tracks of each genre through compose_many (sampling + loop-detector resampling)."""
    from generator.sampling.rejection import compose_many

    requests = eval_requests(params, settings)
    results = compose_many(model, requests, max_attempts=settings.max_attempts, device=device,
                           batch_size=settings.batch_size, progress=progress)
    encoding = model.encoding
    return [GeneratedTrack(req.genre, req.seed, req.duration_s,
                           tuple(res.result.ids) if res.accepted else None,
                           tuple(reason for _, reason in res.rejections), encoding,
                           res.result.bars.bpm if res.accepted and res.result.bars else None)
            for req, res in zip(requests, results)]


def run_eval(model, params, settings: EvalSettings, data_dir, device: str = "cpu", *,
             meta: dict | None = None, stage: Stage | None = None,
             progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """Sample the tracks, measure them, and add the model's held-out NLL and the unigram baseline."""
    from generator.model.train import evaluate_nll

    stage = stage or (lambda name: None)
    train, test = load_shards(data_dir)
    timings = {}
    start = time.monotonic()
    stage("generate")
    tracks = generate_tracks(model, params, settings, device, progress)
    timings["generate_s"] = time.monotonic() - start
    start = time.monotonic()
    report = evaluate_tracks(tracks, train, test, settings, stage)
    timings["measure_s"] = time.monotonic() - start
    start = time.monotonic()
    stage("held-out NLL")
    if model.encoding == test.encoding:
        nll = evaluate_nll(model, test.path, device, max_tokens_per_genre=settings.nll_tokens_per_genre)
    else:  # e.g. a Sber-format model cannot read the shards' INSTRUMENT tokens
        log.warning("held-out NLL skipped: the model's encoding (%s) is not the shards' (%s)",
                    model.encoding.name, test.encoding.name)
        nll = {}
    unigram = unigram_baseline(train, test, settings.nll_tokens_per_genre)
    timings["nll_s"] = time.monotonic() - start
    return replace(report, nll=nll, unigram_nll=unigram,
                   meta={**(meta or {}), "sampling": asdict(params), "timings": timings,
                         "train_pieces": len(train), "test_pieces": len(test)})
