"""Batched, KV-cached sampling and beam search to a target duration in seconds.

`generate` groups requests by prompt length (rows of one forward share it), runs each group in
batches of `batch_size` with one cache, and drops rows from the batch (cache.reorder) as they
finish, so a finished row costs nothing. Every row draws from its own random stream seeded by
its request, so a request gives the same tokens alone or in any batch. Past the context window
the rows are re-primed with [genre] + their last max_seq // 2 tokens (one forward) and go on.
The ending policy (no new notes in the tail, release at the target, END) is in rowstate.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from generator.errors import InputError
from generator.sampling.filters import filter_logits, fold_shifts, guide, new_rp_table, rp_update, sample_from_logits
from generator.sampling.params import SamplingParams
from generator.sampling.rowstate import ENDINGS, BarPlan, RowState
from generator.tokens import vocab
from generator.tokens.chords import N_CHORDS
from generator.tokens.encoding import Encoding

log = logging.getLogger(__name__)

MAX_PRIMER_TOKENS = 512
SUPPORTED_METERS = vocab.METERS
GRID_DIVISIONS = vocab.GRID_DIVISIONS
# A beat-time request without its own values plays at its genre's tempo on its genre's grid:
# sixteenths everywhere, and eighth triplets where the genre swings or uses them (jazz, classic).
DEFAULT_BPM = {"classic": 96.0, "jazz": 132.0, "calm": 64.0, "pop": 108.0}
DEFAULT_GRID = vocab.DEFAULT_GRIDS

Progress = Callable[[int, int], None]  # (requests finished, requests in all)


@dataclass(frozen=True)
class GenerationRequest:
    """One track to sample: genre prefix, its own seed, a target length in seconds of music."""

    genre: str
    seed: int
    duration_s: float
    params: SamplingParams = field(default_factory=SamplingParams)
    primer_ids: tuple[int, ...] = ()
    ending: str = "ring"
    # Release any note held this long (None: never). `gen batch`, `gen sample` and `gen eval` use
    # loops.release_after_s: the genre's real 99.9th-percentile note length, capped at 80% of the
    # stuck-note limit, so a take is never rejected for a note the model forgot.
    max_note_s: float | None = None
    # Instrument families (vocab.INSTRUMENT_FAMILIES indices) the track may use; None: any.
    instruments: tuple[int, ...] | None = None
    # Beat time (models whose encoding has bars only; docs/sampling.md "Keeping time"): the
    # track's tempo, its meter (numerator, denominator) and the onset grid, as the numbers of equal
    # parts a beat may be cut into (4: sixteenths, 3: eighth triplets). None: the encoding's own
    # defaults (120 bpm, 4/4, the genre's grid).
    bpm: float | None = None
    meter: tuple[int, int] | None = None
    grid: tuple[int, ...] | None = None
    # Beat time: planned harmony, (beats from the first bar line, chord index of tokens/chords.py
    # or None for no chord), strictly increasing; each stated as a CHORD token where it falls, and
    # the model samples no chords of its own. None: the model composes the harmony.
    chords: tuple[tuple[float, int | None], ...] | None = None

    def __post_init__(self) -> None:
        try:
            vocab.canonical_genre(self.genre)
        except KeyError:
            raise InputError(f"genre '{self.genre}' is unknown: use one of {', '.join(vocab.GENRES)} "
                             f"(or {', '.join(vocab.GENRE_ALIASES)})") from None
        if not 0 < self.duration_s <= 3600:
            raise InputError(f"duration_s = {self.duration_s!r} is invalid: use seconds in (0, 3600]")
        if self.ending not in ENDINGS:
            raise InputError(f"ending '{self.ending}' is unknown: use one of {', '.join(ENDINGS)}")
        if self.instruments is not None and (
                not self.instruments or not all(0 <= int(f) < vocab.N_INSTRUMENTS for f in self.instruments)):
            raise InputError(f"instruments {self.instruments!r} is invalid: "
                             f"use family indices 0..{vocab.N_INSTRUMENTS - 1} "
                             "(vocab.INSTRUMENT_FAMILIES), at least one")
        if self.bpm is not None and not 20 <= self.bpm <= 300:
            raise InputError(f"bpm = {self.bpm!r} is invalid: use beats per minute in [20, 300]")
        if self.meter is not None and tuple(self.meter) not in SUPPORTED_METERS:
            raise InputError(f"meter {self.meter!r} is not supported: use one of "
                             f"{', '.join(f'{n}/{d}' for n, d in SUPPORTED_METERS)}")
        if self.grid is not None and (not self.grid or any(int(g) not in GRID_DIVISIONS for g in self.grid)):
            raise InputError(f"grid {self.grid!r} is invalid: use parts of a beat among "
                             f"{', '.join(map(str, GRID_DIVISIONS))}, at least one")
        if self.chords is not None:
            beats = [float(b) for b, _ in self.chords]
            if any(b < 0 for b in beats) or any(a >= b for a, b in zip(beats, beats[1:])) or any(
                    c is not None and not 0 <= int(c) < N_CHORDS for _, c in self.chords):
                raise InputError(f"chords {self.chords!r} are invalid: use (beat >= 0, chord index "
                                 f"0..{N_CHORDS - 1} or None) pairs in increasing beat order")
        if len(self.primer_ids) > MAX_PRIMER_TOKENS:
            raise InputError(f"primer has {len(self.primer_ids)} tokens: use at most {MAX_PRIMER_TOKENS} "
                             "(a shorter --primer-seconds)")
        if any(not (0 <= int(t) < vocab.END or vocab.INSTRUMENT <= int(t) < vocab.BEAT_VOCAB_SIZE)
               for t in self.primer_ids):
            raise InputError("primer_ids hold END, PAD, GENRE or unknown ids: use note, velocity, time-shift "
                             "and instrument ids only (primer_from_midi makes them)")

    @property
    def genre_token(self) -> int:
        return vocab.genre_token(self.genre)


@dataclass(frozen=True)
class GenerationResult:
    ids: tuple[int, ...]  # primer + new tokens, no genre prefix, ends with END
    duration_s: float  # seconds of music (sum of the time shifts)
    stop_reason: str  # "duration" | "token_cap" | "time_budget"
    tokens_generated: int  # new tokens (primer excluded)
    wall_s: float  # wall time of the batch this row ran in
    ending: str = "ring"  # "fade": the renderer fades the end out
    bars: BarPlan | None = None  # beat time: the meter, tempo and bars the track was made to


# ---- sampling ---------------------------------------------------------------------------------

def generate(model: torch.nn.Module, requests: Sequence[GenerationRequest], *, device: str = "cpu",
             batch_size: int = 8, time_budget_s: float | None = None,
             progress: Progress | None = None) -> list[GenerationResult]:
    """Sample every request (beam search where its params say beam_width > 1); results in order.

    The model runs in eval mode (no dropout) and is put back in its former mode afterwards.
    """
    if batch_size < 1:
        raise InputError(f"batch_size = {batch_size} is invalid: use a whole number >= 1")
    if any(r.params.genre_guidance > 0 for r in requests) and not model.config.unconditioned:
        raise InputError("genre_guidance needs a model trained with `gen train --genre-dropout` (it contrasts "
                         "with the model's unconditioned prediction); this checkpoint was not: use "
                         "genre_guidance 0 or such a checkpoint")
    was_training = model.training
    model.eval()
    try:
        return _generate(model, requests, device, batch_size, time_budget_s, progress)
    finally:
        model.train(was_training)


def _generate(model: torch.nn.Module, requests: Sequence[GenerationRequest], device: str, batch_size: int,
              time_budget_s: float | None, progress: Progress | None) -> list[GenerationResult]:
    deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
    max_seq = model.config.max_seq
    rows = [_new_row(i, r, model.encoding) for i, r in enumerate(requests)]
    results: list[GenerationResult | None] = [None] * len(requests)
    finished = 0

    def report(batch_rows: list[RowState], wall_s: float) -> None:
        nonlocal finished
        for row in batch_rows:
            results[row.index] = _result(row, requests[row.index], wall_s)
        finished += len(batch_rows)
        if progress is not None:
            progress(finished, len(requests))

    beams = [row for row in rows if requests[row.index].params.beam_width > 1]
    for row in beams:
        start = time.monotonic()
        best = beam_search(model, requests[row.index], device=device, deadline=deadline)
        best.index = row.index
        report([best], time.monotonic() - start)
    groups: dict[int, list[RowState]] = {}
    for row in rows:
        if requests[row.index].params.beam_width == 1:
            groups.setdefault(len(row.prompt(max_seq)), []).append(row)
    for _, group in sorted(groups.items()):
        for at in range(0, len(group), batch_size):
            batch = group[at:at + batch_size]
            start = time.monotonic()
            _sample_batch(model, batch, [requests[r.index].params for r in batch], device, deadline)
            report(batch, time.monotonic() - start)
    return [r for r in results if r is not None]


def _new_row(index: int, request: GenerationRequest, encoding: Encoding) -> RowState:
    if any(int(t) >= encoding.vocab_size for t in request.primer_ids):
        raise InputError(f"primer holds ids >= {encoding.vocab_size}, the model's vocabulary (the "
                         f"{encoding.name!r} encoding): make the primer in that encoding")
    row = RowState(index, request.genre_token, tuple(int(t) for t in request.primer_ids), request.duration_s,
                   request.ending, request.seed, encoding, request.max_note_s, request.instruments,
                   bars=bar_plan(request) if encoding.has_bars else None)
    if row.ticks >= row.target_ticks:
        raise InputError(f"primer lasts {encoding.seconds(row.ticks):.2f} s, not less than duration_s "
                         f"{request.duration_s}: use a longer duration or a shorter primer")
    return row


def parse_meter(text: str, where: str = "meter") -> tuple[int, int]:
    """'3/4' -> (3, 4); InputError naming `where` for anything but a supported meter."""
    try:
        numerator, denominator = (int(part) for part in str(text).strip().split("/"))
    except ValueError:
        numerator = denominator = 0
    if (numerator, denominator) not in SUPPORTED_METERS:
        raise InputError(f"{where} {text!r} is not a supported meter: use one of "
                         f"{', '.join(f'{n}/{d}' for n, d in SUPPORTED_METERS)}")
    return numerator, denominator


def bar_plan(request: GenerationRequest) -> BarPlan:
    """The bars a beat-time request plays: its meter and tempo, and the whole number of bars
    nearest to its duration (at least one). Without a tempo: the whole bpm within 10% of its
    genre's DEFAULT_BPM nearest it at which whole bars fill the duration (vocab.fitted_tempo)."""
    genre = vocab.canonical_genre(request.genre)
    meter = tuple(request.meter) if request.meter is not None else (4, 4)
    if request.bpm is not None:
        bpm = float(request.bpm)
    else:
        usual = DEFAULT_BPM[genre]
        bpm = vocab.fitted_tempo(request.duration_s, meter, usual, (0.9 * usual, 1.1 * usual), 1.0)
    grid = tuple(request.grid) if request.grid is not None else DEFAULT_GRID[genre]
    bar_s = vocab.quarters_per_bar(meter) * 60.0 / bpm
    n_bars = max(1, round(request.duration_s / bar_s))
    end = round(n_bars * vocab.quarters_per_bar(meter) * vocab.STEPS_PER_BEAT)
    steps = [(round(float(beat) * vocab.STEPS_PER_BEAT), chord) for beat, chord in request.chords or ()]
    return BarPlan(meter, bpm, n_bars, grid, tuple((step, chord) for step, chord in steps if step < end),
                   quantise=set(grid) != set(vocab.MASKED_GRIDS.get(genre, ())))


def _result(row: RowState, request: GenerationRequest, wall_s: float) -> GenerationResult:
    return GenerationResult(tuple(row.tokens), row.music_seconds, row.stop_reason or "duration",
                            row.n_new, wall_s, request.ending, row.bars)


def _deadline_hit(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _forward(model: torch.nn.Module, rows: list[RowState], cache, device: str,
             twins: Sequence[RowState] = ()) -> tuple[torch.Tensor, object]:
    """Logits (B + G, V) for each row's next token: one cached step, or a re-prime past the window.

    `twins` (G rows of `rows`) also run unconditioned: the same tokens after NO_GENRE instead of
    their genre token, in the cache rows after the B conditioned ones (genre guidance).
    """
    max_seq = model.config.max_seq
    if cache is None or cache.length + 1 > max_seq:
        if cache is not None:
            log.debug("context window full (%d tokens): re-priming %d rows", cache.length, len(rows))
        cache = model.new_cache()
        prompts = [row.prompt(max_seq) for row in rows]
        by_row = {id(row): prompt for row, prompt in zip(rows, prompts)}  # each prompt built once
        prompts += [[vocab.NO_GENRE, *by_row[id(row)][1:]] for row in twins]
    else:
        prompts = [[row.tokens[-1]] for row in (*rows, *twins)]
    return model.step(torch.tensor(prompts, device=device), cache)[:, -1].float(), cache


def _filtered(logits: torch.Tensor, rows: list[RowState], params: list[SamplingParams],
              rp_table: torch.Tensor) -> torch.Tensor:
    """Each row's allowed-token mask, then its own params' filters (rows grouped by params)."""
    allowed = torch.from_numpy(np.stack([row.allowed() for row in rows])).to(logits.device)
    timed = [i for i, row in enumerate(rows) if row.bars is not None and row.bars.quantise]
    if timed:
        index = torch.tensor(timed, device=logits.device)
        logits = logits.index_copy(0, index, fold_shifts(logits[index], allowed[index], vocab.TIME_SHIFT,
                                                          rows[timed[0]].encoding.n_time_shifts))
    out = torch.empty_like(logits)
    for p, idx in _by_params(params, logits.device).items():
        out[idx] = filter_logits(logits[idx], p, rp_table[idx], allowed[idx])
    dead = torch.isneginf(out).all(-1)  # a filter left nothing (e.g. Sber's pitch mask)
    if bool(dead.any()):
        out[dead] = logits[dead].masked_fill(~allowed[dead], float("-inf"))
        still = torch.isneginf(out).all(-1)  # the model gives no mass to any allowed token
        if bool(still.any()):
            out[still] = torch.zeros_like(out[still]).masked_fill(~allowed[still], float("-inf"))
    return out


def _by_params(params: list[SamplingParams], device) -> dict[SamplingParams, torch.Tensor]:
    groups: dict[SamplingParams, list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault(p, []).append(i)
    return {p: torch.tensor(idx, device=device) for p, idx in groups.items()}


def _update_rp(rp_table: torch.Tensor, tokens: torch.Tensor, params: list[SamplingParams],
               encoding: Encoding) -> torch.Tensor:
    for p, idx in _by_params(params, rp_table.device).items():
        if p.rp_penalty > 0:
            rp_table[idx] = rp_update(rp_table[idx], tokens[idx], p.rp_penalty, p.rp_restore_speed,
                                      encoding=encoding)
    return rp_table


@torch.inference_mode()
def _sample_batch(model: torch.nn.Module, rows: list[RowState], params: list[SamplingParams], device: str,
                  deadline: float | None) -> None:
    """Run one batch of rows (equal prompt lengths) until every row has ended. Rows with genre
    guidance get an unconditioned twin in the cache (after the B rows, in the same order)."""
    active, cache = list(range(len(rows))), None
    twins = [i for i in active if params[i].genre_guidance > 0]
    rp_table = new_rp_table(len(rows), device)
    for row in rows:
        row.settle(_deadline_hit(deadline))
    while True:
        keep = [i for i in active if not rows[i].done]
        if not keep:
            return
        if cache is not None and len(keep) < len(active):
            pos = {i: n for n, i in enumerate(active)}
            twin_pos = {i: len(active) + n for n, i in enumerate(twins)}
            twins = [i for i in twins if not rows[i].done]
            index = torch.tensor([pos[i] for i in keep], device=device)
            cache.reorder(torch.cat([index, torch.tensor([twin_pos[i] for i in twins], device=device,
                                                         dtype=torch.long)]))
            rp_table = rp_table.index_select(0, index)
        active = keep
        live, live_params = [rows[i] for i in active], [params[i] for i in active]
        logits, cache = _forward(model, live, cache, device, [rows[i] for i in twins])
        logits = _guided(logits, active, twins, params)
        uniforms = torch.tensor([row.uniform() for row in live], dtype=torch.float64)
        tokens = sample_from_logits(_filtered(logits, live, live_params, rp_table), uniforms)
        rp_table = _update_rp(rp_table, tokens, live_params, model.encoding)
        hit = _deadline_hit(deadline)
        for row, token in zip(live, tokens.tolist()):
            row.push(token)
            row.settle(hit)


def _guided(logits: torch.Tensor, active: list[int], twins: list[int], params: list[SamplingParams]) -> torch.Tensor:
    """(B + G, V) -> (B, V): each guided row's logits pushed away from its unconditioned twin's."""
    conditioned = logits[: len(active)]
    if not twins:
        return conditioned
    pos = {i: n for n, i in enumerate(active)}
    index = torch.tensor([pos[i] for i in twins], device=logits.device)
    weight = torch.tensor([params[i].genre_guidance for i in twins], device=logits.device)
    conditioned = conditioned.clone()
    conditioned[index] = guide(conditioned[index], logits[len(active):], weight)
    return conditioned


# ---- beam search ------------------------------------------------------------------------------

@torch.inference_mode()
def beam_search(model: torch.nn.Module, request: GenerationRequest, *, device: str = "cpu",
                beam_width: int | None = None, deadline: float | None = None) -> RowState:
    """The best hypothesis by length-normalised log-probability (sum / n_new ** length_penalty).

    The hypotheses are the batch rows; each step keeps the `beam_width` best extensions of all
    of them (cache.reorder copies the chosen rows' caches). It scores the filtered distribution
    (temperature, top-k, masks apply), so on a trained model it is for short continuations:
    over minutes a deterministic search settles into repeats. Width 1 is greedy decoding.
    """
    width = beam_width or request.params.beam_width
    params = request.params
    beams = [_new_row(0, request, model.encoding)]
    beams[0].settle(_deadline_hit(deadline))
    done: list[RowState] = [b for b in beams if b.done]
    beams = [b for b in beams if not b.done]
    cache, rp_table = None, new_rp_table(1, device)
    while beams and len(done) < width:
        logits, cache = _forward(model, beams, cache, device)
        logp = torch.log_softmax(_filtered(logits, beams, [params] * len(beams), rp_table), dim=-1)
        scores = torch.tensor([b.score for b in beams], device=logp.device)[:, None] + logp  # (W, V)
        top = torch.topk(scores.flatten(), min(2 * width, int(torch.isfinite(scores).sum())))
        hit = _deadline_hit(deadline)
        alive: list[RowState] = []
        parents: list[int] = []
        for rank, (flat, score) in enumerate(zip(top.indices.tolist(), top.values.tolist())):
            parent, token = divmod(flat, logp.shape[-1])
            child = _fork(beams[parent], score)
            child.push(token)
            child.settle(hit)
            if child.done:
                if rank < width:  # a finished hypothesis counts only if it ranks in the beam
                    done.append(child)
            elif len(alive) < width:
                alive.append(child)
                parents.append(parent)
        if not alive:
            break
        index = torch.tensor(parents, device=device)
        cache.reorder(index)
        rp_table = rp_table.index_select(0, index)
        if params.rp_penalty > 0:
            last = torch.tensor([b.tokens[-1] for b in alive], device=device)
            rp_table = rp_update(rp_table, last, params.rp_penalty, params.rp_restore_speed,
                                 encoding=model.encoding)
        beams = alive
    pool = done or beams
    return max(pool, key=lambda b: b.score / max(1, b.n_new) ** params.length_penalty)


def _fork(row: RowState, score: float) -> RowState:
    """A copy of a hypothesis that can grow on its own (shares only the unused random stream)."""
    child = RowState.__new__(RowState)
    child.__dict__.update(row.__dict__)
    child.tokens = list(row.tokens)
    child.sounding = dict(row.sounding)
    child.score = score
    return child
