"""Encodings: what a sequence of token ids means, as one frozen, JSON-serialisable object.

An `Encoding` knows its name, its vocabulary size, whether it has INSTRUMENT tokens, its time
grid (10 ms ticks) and the arithmetic of its TIME_SHIFT tokens, quirks included, and it encodes
notes to ids and decodes them back. Two exist (docs/vocabulary.md): DEFAULT ("default", ours,
ids 0..410) and SBER ("sber", bit-exact with Sber AI's music-composer, ids 0..393). A checkpoint
stores the name of its encoding; `encoding_of` reads it back (or takes a loaded model's).

Another encoding is a subclass (overriding what differs) and one entry in ENCODINGS; callers ask
the encoding, they never test which one it is. No torch at import time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from generator.errors import CheckpointError
from generator.tokens import vocab

if TYPE_CHECKING:
    import torch

    from generator.tokens.notes import Note

# Names older checkpoints store for an encoding we now call otherwise.
LEGACY_NAMES = {"seed": "sber"}


@dataclass(frozen=True)
class Encoding:
    """One encoding of notes as token ids. The base class holds the rules the encodings share:
    a TIME_SHIFT(k) token (id TIME_SHIFT + k) advances k + 1 ticks of `time_shift_ms`."""

    name: str
    vocab_size: int
    has_instruments: bool
    time_shift_ms: int = vocab.TIME_SHIFT_STEP_MS
    n_time_shifts: int = vocab.N_TIME_SHIFTS

    @property
    def has_bars(self) -> bool:
        """Beat time: bars, meters and chords are tokens, a tick is a fixed part of a beat."""
        return False

    # -- time: the grid and the TIME_SHIFT tokens -----------------------------------------------
    @property
    def ticks_per_s(self) -> int:
        return 1000 // self.time_shift_ms  # 100: one tick is one 10 ms step

    @property
    def max_shift_ticks(self) -> int:
        """Ticks of the longest TIME_SHIFT token (100: one second)."""
        return self.n_time_shifts

    def ticks_of(self, token: int) -> int:
        """Ticks one token advances the clock (0 for anything but a time shift)."""
        t = int(token)
        return t - vocab.TIME_SHIFT + 1 if vocab.TIME_SHIFT <= t < vocab.TIME_SHIFT + self.n_time_shifts else 0

    def shift_ticks(self, tokens: Sequence[int] | np.ndarray) -> np.ndarray:
        """(N,) int64: the ticks each token advances the clock, vectorised `ticks_of`."""
        t = np.asarray(tokens, dtype=np.int64)
        is_shift = (t >= vocab.TIME_SHIFT) & (t < vocab.TIME_SHIFT + self.n_time_shifts)
        return np.where(is_shift, t - vocab.TIME_SHIFT + 1, 0)

    def seconds(self, ticks: int | float | np.ndarray) -> Any:
        """Ticks -> seconds."""
        return ticks / self.ticks_per_s

    def seconds_of(self, ids: Sequence[int]) -> float:
        """Music time the ids cover: the sum of their time shifts, in seconds."""
        return self.seconds(sum(self.ticks_of(t) for t in ids))

    def tick(self, seconds: float) -> int:
        """Seconds -> ticks of the grid, rounding half up (never negative)."""
        return max(0, math.floor(seconds * self.ticks_per_s + 0.5))

    def shift_tokens(self, ticks: int) -> list[int]:
        """TIME_SHIFT tokens covering exactly `ticks`: whole longest shifts first, then the rest
        (235 -> 1000, 1000, 350 ms)."""
        full, rest = divmod(ticks, self.max_shift_ticks)
        out = [vocab.TIME_SHIFT + self.max_shift_ticks - 1] * full
        if rest:
            out.append(vocab.TIME_SHIFT + rest - 1)
        return out

    def gap_shifts(self, seconds: float) -> list[int]:
        """The TIME_SHIFT tokens this encoding's encoder writes for a gap of `seconds` on the grid."""
        return self.shift_tokens(self.tick(seconds))

    def longer_shifts(self, ticks: int) -> slice:
        """The ids of the time shifts longer than `ticks` (all of them when ticks <= 0)."""
        return slice(vocab.TIME_SHIFT + max(0, min(ticks, self.max_shift_ticks)),
                     vocab.TIME_SHIFT + self.n_time_shifts)

    def penalty_seconds(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B,) float: the seconds each token counts for when the repetition penalty is restored."""
        import torch

        steps = (tokens - vocab.TIME_SHIFT).clamp(0, self.n_time_shifts).float()  # k for TIME_SHIFT(k)
        is_shift = (tokens >= vocab.TIME_SHIFT) & (tokens < vocab.TIME_SHIFT + self.n_time_shifts)
        return torch.where(is_shift, (steps + 1) * self.time_shift_ms / 1000.0, torch.zeros_like(steps))

    # -- names ----------------------------------------------------------------------------------
    def token_name(self, token_id: int) -> str:
        """Readable name, e.g. NOTE_ON(60), TIME_SHIFT(120ms), GENRE(jazz), INSTRUMENT(bass)."""
        t = int(token_id)
        if vocab.NOTE_ON <= t < vocab.NOTE_OFF:
            return f"NOTE_ON({t - vocab.NOTE_ON})"
        if vocab.NOTE_OFF <= t < vocab.VELOCITY:
            return f"NOTE_OFF({t - vocab.NOTE_OFF})"
        if vocab.VELOCITY <= t < vocab.TIME_SHIFT:
            return f"VELOCITY({t - vocab.VELOCITY})"
        if self.ticks_of(t):
            return f"TIME_SHIFT({self.ticks_of(t) * self.time_shift_ms}ms)"
        if t == vocab.END:
            return "END"
        if t == vocab.PAD:
            return "PAD"
        if vocab.GENRE <= t < vocab.GENRE + len(vocab.GENRES):
            return f"GENRE({vocab.GENRES[t - vocab.GENRE]})"
        if self.has_instruments and vocab.INSTRUMENT <= t < vocab.INSTRUMENT + vocab.N_INSTRUMENTS:
            return f"INSTRUMENT({vocab.INSTRUMENT_FAMILIES[t - vocab.INSTRUMENT]})"
        return f"UNKNOWN({t})"

    # -- grammar --------------------------------------------------------------------------------
    def instrument_token(self, family: int) -> int | None:
        """The token that makes `family` current (None: the encoding has no INSTRUMENT tokens)."""
        return vocab.INSTRUMENT + family if self.has_instruments else None

    @property
    def instrument_ids(self) -> slice | None:
        """The ids of the INSTRUMENT tokens (None without them)."""
        return slice(vocab.INSTRUMENT, vocab.INSTRUMENT + vocab.N_INSTRUMENTS) if self.has_instruments else None

    def sampleable(self) -> np.ndarray:
        """(V,) bool: the ids a sampler may ever emit (END comes from the ending policy; PAD and
        GENRE never)."""
        m = np.ones(self.vocab_size, dtype=bool)
        m[vocab.END:vocab.GENRE + len(vocab.GENRES)] = False
        return m

    # -- the codec ------------------------------------------------------------------------------
    def encode(self, notes: Sequence[Note]) -> list[int]:
        """Token ids for notes (no GENRE prefix, no END)."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> list[Note]:
        """Notes for token ids; never raises (what cannot be decoded is skipped)."""
        raise NotImplementedError

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Encoding:
        """The registered encoding `data` describes; ValueError when it is unknown or its fields
        differ from the registered ones (another build's encoding of the same name)."""
        encoding = encoding_named(str(data.get("name")))
        if dict(data) != encoding.to_dict():
            raise ValueError(f"encoding {dict(data)} differs from this build's {encoding.name!r} "
                             f"({encoding.to_dict()})")
        return encoding

    @staticmethod
    def from_json(text: str) -> Encoding:
        return Encoding.from_dict(json.loads(text))


@dataclass(frozen=True)
class DefaultEncoding(Encoding):
    """Ours: every pitch and family, integer ticks (times rounded half up), leading silence kept."""

    def encode(self, notes: Sequence[Note]) -> list[int]:
        from generator.tokens import default_codec

        return default_codec.encode(notes, self)

    def decode(self, ids: Sequence[int]) -> list[Note]:
        from generator.tokens import default_codec

        return default_codec.decode(ids, self)


@dataclass(frozen=True)
class SberEncoding(Encoding):
    """Sber's, float for float: times quantised as floats, a gap's remainder truncated, and its
    repetition penalty counting a shift one step short."""

    @property
    def step_s(self) -> float:
        return self.time_shift_ms / 1000  # 0.01

    def quantise(self, seconds: float) -> float:
        """Sber's `round(t / 0.01) * 0.01` (floats, round half to even)."""
        return round(seconds / self.step_s) * self.step_s

    def gap_shifts(self, seconds: float) -> list[int]:
        """Whole 1 s shifts, then the remainder truncated to the step below: int(0.29 * 100) is 28
        (0.29 * 100 = 28.999...), so 0.29 s gives the 280 ms shift."""
        max_shift_s = self.max_shift_ticks / self.ticks_per_s
        out = [vocab.TIME_SHIFT + self.max_shift_ticks - 1] * int(seconds // max_shift_s)
        rest = self.quantise(seconds % max_shift_s)
        if rest > 0:
            out.append(vocab.TIME_SHIFT + int(rest * self.ticks_per_s) - 1)
        return out

    def penalty_seconds(self, tokens: torch.Tensor) -> torch.Tensor:
        """A shift of k + 1 steps counts as k steps, and any token from END up as a second."""
        import torch

        steps = (tokens - vocab.TIME_SHIFT).clamp(0, self.n_time_shifts).float()
        return torch.where(tokens >= vocab.TIME_SHIFT, steps / self.ticks_per_s, torch.zeros_like(steps))

    def encode(self, notes: Sequence[Note]) -> list[int]:
        from generator.tokens import sber

        return sber.encode(notes, self)

    def decode(self, ids: Sequence[int]) -> list[Note]:
        from generator.tokens import sber

        return sber.decode(ids, self)


@dataclass(frozen=True)
class BeatEncoding(DefaultEncoding):
    """Beat time (tokens/beat_codec.py): ticks are 1/48 beat, 10 ms at the reference tempo of
    125 bpm, so "seconds" here are reference seconds; BAR, METER and CHORD tokens; one-shot drums.
    The sampler places BAR and METER itself (at the bar lines of the planned meter)."""

    @property
    def has_bars(self) -> bool:
        return True

    def token_name(self, token_id: int) -> str:
        from generator.tokens import chords

        t = int(token_id)
        if t == vocab.BAR:
            return "BAR"
        if vocab.METER <= t < vocab.CHORD:
            numerator, denominator = vocab.METERS[t - vocab.METER]
            return f"METER({numerator}/{denominator})"
        if vocab.CHORD <= t <= vocab.CHORD_NONE:
            return f"CHORD({chords.chord_name(None if t == vocab.CHORD_NONE else t - vocab.CHORD)})"
        if self.ticks_of(t):
            return f"TIME_SHIFT({self.ticks_of(t)}/{vocab.STEPS_PER_BEAT} beat)"
        return super().token_name(t)

    def sampleable(self) -> np.ndarray:
        m = super().sampleable()
        m[vocab.BAR:vocab.CHORD] = False  # bar lines and meters come from the plan
        return m

    def encode(self, notes: Sequence[Note]) -> list[int]:
        """Notes in reference seconds, in 4/4 from their first step, chords by analysis."""
        from generator.tokens import beat_codec

        end = max((self.tick(n.end_s) for n in notes), default=0)
        bars = beat_codec.regular_bars((4, 4), end)
        piece = beat_codec.BeatPiece(tuple(notes), bars, beat_codec.analysed_chords(notes, bars, self, end))
        return beat_codec.encode(piece, self)

    def decode(self, ids: Sequence[int]) -> list[Note]:
        from generator.tokens import beat_codec

        return list(beat_codec.decode_piece(ids, self).notes)


DEFAULT = DefaultEncoding("default", vocab.VOCAB_SIZE, has_instruments=True)
SBER = SberEncoding("sber", vocab.SBER_VOCAB_SIZE, has_instruments=False)
BEAT = BeatEncoding("beat", vocab.BEAT_VOCAB_SIZE, has_instruments=True)
ENCODINGS: dict[str, Encoding] = {e.name: e for e in (DEFAULT, SBER, BEAT)}


def encoding_named(name: str) -> Encoding:
    """The encoding called `name` (legacy names too); ValueError naming it when unknown."""
    encoding = ENCODINGS.get(LEGACY_NAMES.get(name, name))
    if encoding is None:
        raise ValueError(f"encoding {name!r} is unknown: use one of {', '.join(ENCODINGS)}")
    return encoding


def encoding_of(source: object) -> Encoding:
    """The encoding of a model (its `.encoding`), or the one a checkpoint stores: pass the
    checkpoint dict, its meta, or its vocab entry itself ({'size': 411, 'encoding': 'default'}).

    A stored name this build does not know, or a size that does not fit it, raises
    CheckpointError naming the value.
    """
    if isinstance(source, Encoding):
        return source
    carried = getattr(source, "encoding", None)
    if isinstance(carried, Encoding):
        return carried
    if not isinstance(source, Mapping):
        raise TypeError(f"no encoding in a {type(source).__name__}: pass a model or a checkpoint's meta")
    entry = source.get("vocab", source)
    name = entry.get("encoding") if isinstance(entry, Mapping) else None
    if name is None:
        shown = " ".join(repr(entry).split())[:80]  # one line, even for a whole checkpoint's tensors
        raise CheckpointError(f"the checkpoint stores no encoding (vocab entry {shown}); "
                              f"expected e.g. {{'size': {DEFAULT.vocab_size}, 'encoding': 'default'}}")
    try:
        encoding = encoding_named(str(name))
    except ValueError:
        raise CheckpointError(f"the checkpoint's encoding {name!r} is unknown to this build (it reads "
                              f"{', '.join(ENCODINGS)} and the legacy {', '.join(map(repr, LEGACY_NAMES))}); "
                              "use a gen version that knows it") from None
    size = entry.get("size", encoding.vocab_size)
    if size != encoding.vocab_size:
        raise CheckpointError(f"the checkpoint's vocab size {repr(size)[:40]} does not fit its encoding "
                              f"{encoding.name!r} ({encoding.vocab_size} ids); the file is damaged")
    return encoding
