"""The sampling spec: `SamplingParams`, whose fields carry their own help, bounds and examples.

This is the one place that lists the sampling parameters. The recipe's `sampling` section
(library/recipe.py), the per-track draws (library/plan.py), the `gen sample` and `gen eval` options
(commands/_sampling_options.py), the eval report and the docs' tables all follow these fields.
There is one set of defaults: the recipe's (Sber's demo settings), so a recipe that leaves a key
out and a bare `gen sample` sample alike. `SamplingParams.plain()` is the model's own distribution.
No torch here: the CLI reads this module at start-up.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from generator.errors import InputError


@dataclass(frozen=True)
class FieldSpec:
    """What one sampling parameter means and accepts; `SamplingParams`'s fields carry one each."""

    help: str  # one sentence for --help and the docs
    note: str = ""  # what a value means, said after the valid range in an error ("1 = off")
    integer: bool = False
    lo: float | None = None  # bounds of a number field; None for pitch_range and sber_compatible
    hi: float | None = None
    lo_open: bool = False  # lo itself is not allowed
    drawn: bool = True  # a recipe gives a number or a [lo, hi] range, drawn per track
    example: str = ""  # a single value, as a recipe writes it
    example_range: str = ""  # a range, as a recipe writes it
    aliases: tuple[str, ...] = ()  # old names, still accepted by recipes and the CLI

    @property
    def interval(self) -> str:
        """The valid range as the messages write it: (0, 1] for numbers, 0..64 for whole numbers."""
        if self.integer and not self.lo_open:
            return f"{_fmt(self.lo)}..{_fmt(self.hi)}"
        return f"{'(' if self.lo_open else '['}{_fmt(self.lo)}, {_fmt(self.hi)}]"

    @property
    def fix(self) -> str:
        """The fix a bad value's error gives."""
        kind = "a whole number" if self.integer else "a number"
        return f"use {kind} in {self.interval}" + (f" ({self.note})" if self.note else "")


def _param(default: Any, **spec: Any) -> Any:
    return field(default=default, metadata={"spec": FieldSpec(**spec)})


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    """How each next token is chosen (docs/sampling.md). Validated when built: a bad value raises
    InputError naming the key, the value and the fix.

    The drawn fields are in the order a recipe's plan draws them (one uniform each per track);
    append new ones at the end of that run, or every existing library changes.
    """

    temperature: float = _param(
        1.0, lo=0, hi=100, lo_open=True, note="1 = the model's own distribution",
        help="Divides the logits of the surviving tokens; < 1 is safer, > 1 more adventurous.",
        example="1.0", example_range="[0.9, 1.1]")
    top_p: float = _param(
        0.99, lo=0, hi=1, lo_open=True, note="1 = off",
        help="Nucleus: keep the most likely tokens up to this cumulative probability (1 = off).",
        example="0.98", example_range="[0.95, 0.99]")
    top_k: int = _param(
        60, integer=True, lo=0, hi=100_000, note="0 = off",
        help="Keep only the k most likely tokens (0 = off).",
        example="60", example_range="[40, 80]")
    at_least_k: int = _param(
        1, integer=True, lo=1, hi=100_000,
        help="Always keep at least this many of the most likely tokens after top-k/top-p.",
        example="1", example_range="[1, 4]")
    rp_penalty: float = _param(
        0.05, lo=0, hi=1, note="0 = off; Sber used 0.05",
        help="Repetition penalty: each NOTE_ON of a pitch lowers that pitch's multiplier by this "
             "much (0 = off).",
        example="0.05", example_range="[0.03, 0.08]")
    rp_restore_speed: float = _param(
        0.7, lo=0, hi=100, note="multiplier regained per second of music; Sber used 0.7",
        help="Repetition-penalty multiplier regained per second of music.",
        example="0.7", example_range="[0.5, 1.0]")
    topp_temperature: float = _param(
        1.0, lo=0, hi=100, lo_open=True,
        help="Temperature of the softmax that top-p measures.",
        example="1.0", example_range="[0.9, 1.1]")
    beam_width: int = _param(
        1, integer=True, lo=1, hi=64, note="1 = sampling",
        help="1 = sampling; > 1 = beam search of that width (for short continuations).",
        example="1", example_range="[1, 4]")
    length_penalty: float = _param(
        1.0, lo=0, hi=10, note="0 = raw log-probability",
        help="Beam search only: score = log-probability / length ** this.",
        example="1.0", example_range="[0.8, 1.2]")
    genre_guidance: float = _param(
        0.0, lo=0, hi=10, note="0 = off; 1 doubles the genre's pull",
        help="Classifier-free genre guidance: push each step away from the model's unconditioned "
             "prediction by this much (0 = off; needs a model trained with --genre-dropout; twice "
             "the model work).",
        example="1.0", example_range="[0.5, 1.5]")
    # Not drawn: one value for the whole recipe.
    pitch_range: tuple[int, int] | None = _param(
        (21, 96), drawn=False,
        help="Lowest and highest MIDI pitch the model may start a note on (Sber's piano range by "
             "default; None in Python: no mask).",
        example="[28, 96]")
    sber_compatible: bool = _param(
        False, drawn=False, aliases=("seed_compatible",),
        help="Filter in Sber's exact order, with its quirks (for its checkpoints).",
        example="false")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            spec = field_spec(f)
            if spec.drawn:
                value = getattr(self, f.name)
                _check(in_bounds(value, spec), f.name, value, spec.fix)
        if self.pitch_range is not None:
            ok = (len(self.pitch_range) == 2 and all(_is_int(p) for p in self.pitch_range)
                  and 0 <= self.pitch_range[0] <= self.pitch_range[1] <= 127)
            _check(ok, "pitch_range", self.pitch_range, "use two MIDI pitches (lo, hi), 0 <= lo <= hi <= 127")
        _check(isinstance(self.sber_compatible, bool), "sber_compatible", self.sber_compatible,
               "use true or false")
        _check(not guidance_conflict(self.genre_guidance, self.beam_width, self.sber_compatible),
               "genre_guidance", self.genre_guidance, GUIDANCE_FIX)

    @classmethod
    def plain(cls, **changes: Any) -> SamplingParams:
        """The model's own distribution (every filter off), with `changes` on top."""
        return cls(**{"top_k": 0, "top_p": 1.0, "rp_penalty": 0.0, "pitch_range": None, **changes})


GUIDANCE_FIX = ("genre guidance is for sampling with our own models: "
                "use beam_width 1 and sber_compatible false")


def guidance_conflict(genre_guidance: float, beam_width: int, sber_compatible: bool) -> bool:
    """Genre guidance needs a second, unconditioned row per track: beam search and Sber's
    checkpoints (no genre dropout) do not have one."""
    return genre_guidance > 0 and (beam_width > 1 or sber_compatible)


def field_spec(f: dataclasses.Field | str) -> FieldSpec:
    """The spec of a SamplingParams field, given the field or its name."""
    if isinstance(f, str):
        f = next(g for g in spec_fields() if g.name == f)
    return f.metadata["spec"]


def spec_fields() -> tuple[dataclasses.Field, ...]:
    """SamplingParams's fields in order (the drawn ones first, in draw order)."""
    return dataclasses.fields(SamplingParams)


def drawn_fields() -> tuple[dataclasses.Field, ...]:
    """The fields a recipe gives as a number or a range and the plan draws per track, in draw order."""
    return tuple(f for f in spec_fields() if field_spec(f).drawn)


def in_bounds(value: Any, spec: FieldSpec) -> bool:
    """A finite number of the field's kind inside its bounds."""
    if isinstance(value, bool) or not isinstance(value, int if spec.integer else (int, float)):
        return False
    if not math.isfinite(value) or value < spec.lo or value > spec.hi:
        return False
    return not (spec.lo_open and value == spec.lo)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fmt(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


def _check(ok: bool, key: str, value: object, fix: str) -> None:
    if not ok:
        raise InputError(f"sampling parameter '{key}' = {value!r} is invalid: {fix}")
