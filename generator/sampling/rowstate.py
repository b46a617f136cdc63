"""One generated row's state: its music clock, sounding notes, ending phase and allowed tokens.

The ending policy (docs/sampling.md, "Duration and endings"): a track plays freely until
`target - tail`; from there no new note starts; at the target the notes still sounding are
released and END follows. Time shifts never run past the target, and END is masked before it,
so a finished track lasts the target to the 10 ms tick. `ring` uses a longer tail in which the
notes sounding at its start ring on to the target (no model call is needed for that); `fade`
uses a short tail in which the model may still release notes, and leaves the fade to the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from generator.tokens import vocab
from generator.tokens.encoding import Encoding

ENDINGS = ("ring", "fade")
# A row is closed ("token_cap") after TOKENS_PER_S_CAP new tokens per target second + CAP_SLACK
# (the densest training pieces, MMA jazz, carry up to ~160 tokens per second), or after
# STALL_TOKENS tokens without a time shift (training data never has more than 47 in a row).
TOKENS_PER_S_CAP = 300
CAP_SLACK = 256
STALL_TOKENS = 256
UNIFORM_CHUNK = 256


def tail_ticks(target_ticks: int, ending: str, encoding: Encoding) -> int:
    """Ticks before the target from which no new note starts: ring 8% of the target within
    1..3 s (a quarter of a very short track), fade 0.5 s (a tenth of a very short track)."""
    per_s = encoding.ticks_per_s
    if ending == "ring":
        return int(min(max(0.08 * target_ticks, per_s), 3 * per_s, 0.25 * target_ticks))
    return int(min(0.5 * per_s, 0.1 * target_ticks))


@dataclass(frozen=True)
class BarPlan:
    """How a beat-time row keeps time: its meter, tempo, whole number of bars and onset grid (the
    parts of a beat a note may start or end on: 4 sixteenths, 3 eighth triplets...)."""

    meter: tuple[int, int]
    bpm: float
    n_bars: int
    grid: tuple[int, ...]
    # Planned harmony: (step from the first bar line, chord index of tokens/chords.py or None for
    # no chord), sorted; each forced as a CHORD token at its step. Empty: the model composes its own.
    chords: tuple[tuple[int, int | None], ...] = ()
    # A shift that may not be taken (off the grid, across the bar line): True, its probability goes to
    # the next one that may (filters.fold_shifts); False, it is dropped (vocab.MASKED_GRIDS).
    quantise: bool = True

    @property
    def bar_steps(self) -> int:
        return round(vocab.quarters_per_bar(self.meter) * vocab.STEPS_PER_BEAT)

    @property
    def seconds_per_step(self) -> float:
        return 60.0 / self.bpm / vocab.STEPS_PER_BEAT

    def on_grid(self) -> np.ndarray:
        """(bar_steps + 1,) bool: the positions in a bar where time may stop (the bar line too)."""
        positions = np.arange(self.bar_steps + 1)
        ok = np.zeros(self.bar_steps + 1, dtype=bool)
        for parts in self.grid:
            ok |= positions % (vocab.STEPS_PER_BEAT // int(parts)) == 0
        ok[-1] = True
        return ok


class RowState:
    """A row's tokens (primer + new, no genre), clock in ticks of its encoding, sounding
    (family, pitch) set, and its own random stream. Mirrors default_codec.decode's note semantics."""

    def __init__(self, index: int, genre_token: int, primer: tuple[int, ...], target_s: float,
                 ending: str, seed: int, encoding: Encoding, max_note_s: float | None = None,
                 instruments: tuple[int, ...] | None = None, bars: BarPlan | None = None) -> None:
        self.index = index
        self.encoding = encoding
        per_s = encoding.ticks_per_s
        self.genre_token = genre_token
        self.tokens: list[int] = []
        self.ticks = 0
        self.since_shift = 0  # tokens since the last time shift
        self.family = 0
        self.sounding: dict[tuple[int, int], int] = {}  # (family, pitch) -> onset tick
        # A note held this long is released by the sampler: past the context window the model
        # cannot see an old NOTE_ON any more and would hold it forever (a "stuck note").
        self.max_hold_ticks = None if max_note_s is None else max(1, round(max_note_s * per_s))
        # The instrument palette: INSTRUMENT tokens outside it are never sampled (None: any).
        self.palette: np.ndarray | None = None
        if instruments is not None and encoding.has_instruments:
            self.palette = np.zeros(vocab.N_INSTRUMENTS, dtype=bool)
            self.palette[list(instruments)] = True
        self.target_ticks = round(target_s * per_s)
        self.ending = ending
        self.tail = tail_ticks(self.target_ticks, ending, encoding)
        # Beat time: BAR (and at the first bar METER) forced at every bar line, time shifts only to
        # grid positions and never across a bar line; the track is n_bars long and its last bar
        # only rings (new notes at its downbeat, none after).
        self.bars = bars
        if bars is not None:
            self.target_ticks = bars.n_bars * bars.bar_steps
            self.tail = bars.bar_steps - 1
            self._grid = bars.on_grid()
            self._shift_steps = np.arange(1, encoding.n_time_shifts + 1)
            # Notes held this long are released: the ring of a whole final bar must not count.
            if self.max_hold_ticks is not None:
                self.max_hold_ticks = max(self.max_hold_ticks, 2 * bars.bar_steps)
        self.next_bar_tick = 0  # the clock position of the next bar line still to be marked
        self.next_chord = 0  # index of the next planned chord change still to be stated
        self.meter_stated = False
        self.n_primer = len(primer)
        self.cap = int(target_s * TOKENS_PER_S_CAP) + CAP_SLACK
        self.stop_reason: str | None = None
        self.score = 0.0  # beam search: sum of log-probabilities
        self._rng = torch.Generator().manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
        self._uniforms = torch.empty(0)
        self._next = 0
        for token in primer:
            self.push(token)
        if bars is not None:  # planned changes the primer has played past are its business
            while self.next_chord < len(bars.chords) and bars.chords[self.next_chord][0] < self.ticks:
                self.next_chord += 1

    # -- bookkeeping ----------------------------------------------------------------------------
    @property
    def n_new(self) -> int:
        return len(self.tokens) - self.n_primer

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def releasing(self) -> bool:
        return self.ticks >= self.target_ticks - self.tail

    def push(self, token: int) -> None:
        t = int(token)
        self.tokens.append(t)
        self.since_shift += 1
        if vocab.NOTE_ON <= t < vocab.NOTE_OFF:
            if not (self.bars is not None and self.family == vocab.DRUMS_FAMILY):  # beat time: drums are one-shot
                self.sounding[(self.family, t - vocab.NOTE_ON)] = self.ticks  # a retrigger restarts it
        elif vocab.NOTE_OFF <= t < vocab.VELOCITY:
            self.sounding.pop((self.family, t - vocab.NOTE_OFF), None)
        elif vocab.TIME_SHIFT <= t < vocab.END:
            self.ticks += self.encoding.ticks_of(t)
            self.since_shift = 0
        elif vocab.is_instrument(t):
            self.family = t - vocab.INSTRUMENT
        elif t == vocab.BAR and self.bars is not None:
            self.next_bar_tick = self.ticks + self.bars.bar_steps
        elif vocab.METER <= t < vocab.CHORD:
            self.meter_stated = True
        elif vocab.CHORD <= t <= vocab.CHORD_NONE and self._chord_due():
            self.next_chord += 1

    @property
    def music_seconds(self) -> float:
        """Seconds of music so far, at the row's tempo (beat time) or on the encoding's clock."""
        if self.bars is not None:
            return self.ticks * self.bars.seconds_per_step
        return float(self.encoding.seconds(self.ticks))

    def uniform(self) -> float:
        """The next number of this row's own stream (a row samples alike in any batch)."""
        if self._next >= len(self._uniforms):
            self._uniforms = torch.rand(UNIFORM_CHUNK, generator=self._rng, dtype=torch.float64)
            self._next = 0
        self._next += 1
        return float(self._uniforms[self._next - 1])

    def prompt(self, max_seq: int) -> list[int]:
        """[genre] + the row's tokens, or + its last max_seq // 2 when they do not fit. A window
        cut from the middle starts with the INSTRUMENT token in force at the cut (in place of its
        oldest token), so its first note events belong to the right family instead of piano, the
        family the model assumes before any INSTRUMENT token. A beat-time row restates the meter,
        chord and instrument in force at the cut, as its training windows did (beat_codec.window_at);
        every row's prompt has the same length, so a batch re-primes in one forward."""
        if 1 + len(self.tokens) <= max_seq:
            return [self.genre_token, *self.tokens]
        if self.encoding.has_bars:
            return [self.genre_token, *_beat_window(self.tokens, max_seq // 2)]
        if not self.encoding.has_instruments:
            return [self.genre_token, *self.tokens[-(max_seq // 2):]]
        cut = len(self.tokens) - max_seq // 2 + 1
        return [self.genre_token, self.encoding.instrument_token(self._family_before(cut)), *self.tokens[cut:]]

    def _family_before(self, index: int) -> int:
        """The instrument family in force just before tokens[index] (piano before any INSTRUMENT)."""
        for i in range(index - 1, -1, -1):  # no copy of the history: this runs at every re-prime
            if vocab.is_instrument(self.tokens[i]):
                return self.tokens[i] - vocab.INSTRUMENT
        return 0

    # -- the ending -----------------------------------------------------------------------------
    def close(self, reason: str, *, ring_ticks: int = 0, fill: bool = False) -> None:
        """Append a musical close: sounding notes ring up to `ring_ticks` (or, with `fill`, the
        clock runs on to the target either way), then NOTE_OFF for every sounding note, END."""
        remaining = max(0, self.target_ticks - self.ticks)
        wait = remaining if fill else (min(ring_ticks, remaining) if self.sounding else 0)
        end = self.ticks + wait
        if self.bars is not None and end < self.target_ticks:  # beat time: a track ends on a bar line
            past = max(0, end - self.next_bar_tick)
            end = min(self.target_ticks, self.next_bar_tick + -(-past // self.bars.bar_steps) * self.bars.bar_steps)
        if self.max_hold_ticks is not None:  # notes that would ring past their limit end on time
            for due, key in sorted((onset + self.max_hold_ticks, key) for key, onset in self.sounding.items()):
                if due >= end:
                    break
                self._advance_to(due)
                self._release([key])
        self._advance_to(end)
        self._release(sorted(self.sounding, key=lambda k: (k[0] != self.family, k)))
        self.push(vocab.END)
        self.stop_reason = reason

    def _advance_to(self, tick: int) -> None:
        """Run the clock on to `tick`; in beat time marking every bar line on the way (never a
        time shift across one), as the sampler's own bars are."""
        while self.ticks < tick:
            forced = self._forced()
            if forced is not None and self.ticks < tick:
                self.push(forced)
                continue
            stop = tick if self.bars is None else min(tick, self._next_boundary())
            for token in self.encoding.shift_tokens(stop - self.ticks):
                self.push(token)

    def _release(self, keys: list[tuple[int, int]]) -> None:
        for family, pitch in keys:
            if family != self.family and self.encoding.has_instruments:
                self.push(self.encoding.instrument_token(family))
            self.push(vocab.NOTE_OFF + pitch)

    def settle(self, deadline_hit: bool) -> None:
        """Finish the row if nothing is left for the model to decide (or a limit is reached)."""
        if self.done:
            return
        if deadline_hit:
            self.close("time_budget", ring_ticks=self.encoding.ticks_per_s)
        elif self.n_new >= self.cap or (self.n_new and self.since_shift >= STALL_TOKENS):
            self.close("token_cap")
        elif self.ticks >= self.target_ticks or (self.releasing and not self._release_choices()):
            self.close("duration", fill=True)

    def _release_choices(self) -> bool:
        """In the tail, does the model still choose anything? (fade: releasing sounding notes)."""
        return self.ending == "fade" and bool(self.sounding) and self.bars is None

    def allowed(self) -> np.ndarray:
        """(V,) bool: the tokens this row may emit next."""
        forced = self._forced()
        if forced is not None:
            m = np.zeros(self.encoding.vocab_size, dtype=bool)
            m[forced] = True
            return m
        m = self.encoding.sampleable()
        if self.palette is not None:
            m[self.encoding.instrument_ids] = self.palette
            if not self.palette[self.family]:  # no note on an instrument outside the palette
                m[vocab.NOTE_ON:vocab.NOTE_OFF] = False
        # A NOTE_OFF only for a note sounding in the current family: any other is a no-op the
        # decoder skips, and the mass the model puts on it goes to the choices that mean something.
        m[vocab.NOTE_OFF:vocab.VELOCITY] = False
        for family, pitch in self.sounding:
            if family == self.family:
                m[vocab.NOTE_OFF + pitch] = True
        remaining = self.target_ticks - self.ticks
        m[self.encoding.longer_shifts(remaining)] = False
        if self.bars is not None:
            m[vocab.TIME_SHIFT:vocab.TIME_SHIFT + self.encoding.n_time_shifts] &= self._grid_shifts()
            if self.bars.chords:  # the plan states the harmony
                m[vocab.CHORD:vocab.CHORD_NONE + 1] = False
        overdue = self._overdue()
        if overdue and not self.releasing:
            return self._only_release(overdue)
        if self.releasing:
            m[vocab.NOTE_ON:vocab.NOTE_OFF] = False  # no new note; the NOTE_OFFs are the grammar's above
            m[vocab.VELOCITY:vocab.TIME_SHIFT] = False
            if self.encoding.has_instruments:
                m[self.encoding.instrument_ids] = False
                for family in {f for f, _ in self.sounding} - {self.family}:
                    m[self.encoding.instrument_token(family)] = True
        return m

    def _forced(self) -> int | None:
        """The token the plan forces now: BAR on a bar line not yet marked, then the meter once,
        then the planned chord that changes here."""
        if self.bars is None:
            return None
        if self.ticks >= self.next_bar_tick:
            return vocab.BAR
        if not self.meter_stated and self.tokens and self.tokens[-1] == vocab.BAR:
            return vocab.METER + vocab.METERS.index(self.bars.meter)
        if self._chord_due():
            chord = self.bars.chords[self.next_chord][1]
            return vocab.CHORD_NONE if chord is None else vocab.CHORD + chord
        return None

    def _chord_due(self) -> bool:
        return (self.bars is not None and self.next_chord < len(self.bars.chords)
                and self.bars.chords[self.next_chord][0] <= self.ticks)

    def _next_boundary(self) -> int:
        """The next clock position a time shift may not cross: the bar line or a planned chord change."""
        if self.next_chord < len(self.bars.chords):
            return min(self.next_bar_tick, self.bars.chords[self.next_chord][0])
        return self.next_bar_tick

    def _grid_shifts(self) -> np.ndarray:
        """(n_time_shifts,) bool: the shifts that land on the grid without crossing the bar line
        (or a planned chord change)."""
        position = self.ticks - (self.next_bar_tick - self.bars.bar_steps)
        lands = position + self._shift_steps
        boundary = self._next_boundary()
        to = self.ticks + self._shift_steps
        return (to <= boundary) & (self._grid[np.minimum(lands, self.bars.bar_steps)] | (to == boundary))

    def _overdue(self) -> list[tuple[int, int]]:
        if self.max_hold_ticks is None:
            return []
        return [key for key, onset in self.sounding.items() if self.ticks - onset >= self.max_hold_ticks]

    def _only_release(self, overdue: list[tuple[int, int]]) -> np.ndarray:
        """Force the release of overdue notes: their NOTE_OFFs, or first a switch to their family."""
        m = np.zeros(self.encoding.vocab_size, dtype=bool)
        here = [p for f, p in overdue if f == self.family]
        if here or not self.encoding.has_instruments:
            for pitch in here or [p for _, p in overdue]:
                m[vocab.NOTE_OFF + pitch] = True
        else:
            for family, _ in overdue:
                m[self.encoding.instrument_token(family)] = True
        return m


def _beat_window(tokens: list[int], length: int) -> list[int]:
    """The last tokens after their restated METER/CHORD/INSTRUMENT head (beat_codec.window_at), exactly
    `length` in all, whatever the head holds at the cut: a batch's rows re-prime with equal lengths.
    The head grows by at most one token per step of the cut (once stated, a meter or chord stays in
    force), so cut - head length takes every value and some cut gives exactly `length`."""
    from generator.tokens import beat_codec

    for cut in range(len(tokens) - length, len(tokens)):
        window = beat_codec.window_at(tokens, cut)
        if len(window) == length:
            return window
    raise AssertionError(f"no window of {length} tokens in {len(tokens)}")
