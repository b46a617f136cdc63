"""Which bars make a beat-time track's loop and each of its cut-downs: plans in bars, no audio.

A beat-time track is a whole number of bars at one tempo and meter, its first bar line at time 0
(docs/sampling.md "Keeping time"). Its form is a list of sections (name, start_bar, bars). Without
sections, a track of MIN_BARS_FOR_PARTS bars or more reads as a 2-bar intro, a main section and a
2-bar outro; a shorter one as a main section ending in a 1-bar outro (its last bar, the cadence).
The rules are stated in docs/delivery.md "Loops and cut-downs".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from generator.tokens.vocab import quarters_per_bar

MIN_BARS_FOR_PARTS = 8  # a form without sections gets a 2-bar intro and outro from this many bars on
EDGE_BARS = 2  # ... of this many bars each
LOOP_BARS = 8  # the default loop: 8 bars, halved until it fits


@dataclass(frozen=True)
class Section:
    name: str  # intro | A | B | outro | ...
    start_bar: int  # from 0
    bars: int

    @property
    def end_bar(self) -> int:
        return self.start_bar + self.bars


Segment = tuple[int, int]  # (first bar, number of bars) of the track


@dataclass(frozen=True)
class Form:
    """A beat-time track's bars: tempo (quarter notes per minute), meter, how many bars, sections."""

    bpm: float
    meter: tuple[int, int]
    bars: int
    sections: tuple[Section, ...] = ()

    def __post_init__(self) -> None:
        assert self.bpm > 0 and self.bars >= 1, (self.bpm, self.bars)
        for s in self.sections:
            assert 0 <= s.start_bar and s.bars >= 1 and s.end_bar <= self.bars, (s, self.bars)

    @classmethod
    def of(cls, bpm: float, meter: Iterable[int], bars: int, sections: Iterable[Any] = ()) -> Form:
        """A Form from plain values; sections as Section or {"name", "start_bar", "bars"} mappings."""
        parsed = tuple(s if isinstance(s, Section) else _section(s) for s in sections)
        return cls(float(bpm), tuple(meter), int(bars), parsed)  # type: ignore[arg-type]

    @property
    def bar_s(self) -> float:
        return quarters_per_bar(self.meter) * 60.0 / self.bpm

    @property
    def bar_exact_s(self) -> Fraction:
        """A bar's seconds, exactly: quarter notes per bar x 60 / bpm."""
        return Fraction(quarters_per_bar(self.meter)) * 60 / Fraction(self.bpm)

    def frames(self, bars: int, sample_rate: int) -> int:
        """Frames of `bars` bars: bars x quarters per bar x 60 / bpm x sample_rate, rounded once, half up."""
        return math.floor(bars * self.bar_exact_s * sample_rate + Fraction(1, 2))

    def parts(self) -> tuple[Section, Section, Section]:
        """(intro, main, outro). The intro is the section named intro (0 bars when none), the main the
        first A (else the first section that is neither), the outro the last one named outro (else the
        last bar). Without sections: see the module docstring."""
        named = {s.name.lower(): s for s in reversed(self.sections)}  # the first of each name
        outros = [s for s in self.sections if s.name.lower() == "outro"]
        if self.sections:
            intro = named.get("intro", Section("intro", 0, 0))
            outro = outros[-1] if outros else Section("outro", self.bars - 1, 1)
            others = [s for s in self.sections if s.name.lower() not in ("intro", "outro")]
            main = named.get("a") or (others[0] if others else Section("A", intro.end_bar, 0))
            return intro, main, outro
        if self.bars >= MIN_BARS_FOR_PARTS:
            return (Section("intro", 0, EDGE_BARS), Section("A", EDGE_BARS, self.bars - 2 * EDGE_BARS),
                    Section("outro", self.bars - EDGE_BARS, EDGE_BARS))
        return Section("intro", 0, 0), Section("A", 0, self.bars - 1), Section("outro", self.bars - 1, 1)


def _section(item: Mapping[str, Any]) -> Section:
    return Section(str(item["name"]), int(item["start_bar"]), int(item["bars"]))


def loop_segment(form: Form, bars: int | None = None) -> Segment | None:
    """The loop's bars, from the main section's first bar: `bars` halved until they fit before the
    outro; without `bars`, LOOP_BARS halved until they fit in the main section (else before the outro).
    From bar 0 when nothing fits after the main section's start; None when not even one bar fits."""
    _, main, outro = form.parts()
    rooms = [(main.start_bar, main.bars)] if bars is None else []
    rooms += [(main.start_bar, outro.start_bar - main.start_bar), (0, outro.start_bar)]
    for start, room in rooms:
        fitting = [size for size in _halvings(bars or LOOP_BARS) if size <= room]
        if fitting:
            return start, fitting[0]
    return None


def loop_candidates(form: Form, bars: int | None = None) -> list[Segment]:
    """Where the loop may start: loop_segment's bars first, then as many bars from the first bar of
    each later statement of the main section (the second A, the reprise) that holds them (with
    `bars` asked for: that ends before the outro). The loop maker keeps the one whose join is smoothest."""
    first = loop_segment(form, bars)
    if first is None:
        return []
    _, main, outro = form.parts()
    size = first[1]
    later = [(s.start_bar, size) for s in form.sections
             if s.name == main.name and s.start_bar > first[0] and s.start_bar + size <= outro.start_bar
             and (bars is not None or size <= s.bars)]
    return [first, *later]


def _halvings(bars: int) -> list[int]:
    out = [bars]
    while out[-1] > 1:
        out.append(out[-1] // 2)
    return out


def nearest_bars(form: Form, nominal_s: float) -> int:
    """The whole number of bars nearest to `nominal_s`, at least 1; a tie goes to the shorter, so that
    it never runs over the slot."""
    return max(1, math.ceil(Fraction(nominal_s) / form.bar_exact_s - Fraction(1, 2)))


def cutdown_segments(form: Form, nominal_s: float) -> tuple[Segment, ...] | None:
    """The bars of a cut-down of `nominal_s` seconds, in play order, adjacent ones merged; None when
    the track is not longer than that many bars. With n = nearest_bars:
    - ending: the track's last o = min(outro bars, max(1, n // 3)) bars (at least 1): the cadence;
    - intro: its first i = min(intro bars, (n - o) // 3) bars;
    - body: the other n - o - i bars, from the main section's first bar on, up to the ending's first
      bar, starting again at the main section's first bar when they run out (whole bars)."""
    n = nearest_bars(form, nominal_s)
    if n >= form.bars:
        return None
    intro, main, outro = form.parts()
    o = min(n, max(1, min(outro.bars, n // 3)))
    i = min(intro.bars, (n - o) // 3)
    body, end = n - o - i, form.bars - o
    start = main.start_bar if main.start_bar < end else (intro.start_bar + i if intro.start_bar + i < end else 0)
    segments: list[Segment] = [(intro.start_bar, i)] if i else []
    while body > 0:
        take = min(body, end - start)
        segments.append((start, take))
        body -= take
    segments.append((end, o))
    return _merged(segments)


def _merged(segments: list[Segment]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for start, bars in segments:
        if out and out[-1][0] + out[-1][1] == start:
            out[-1] = (out[-1][0], out[-1][1] + bars)
        else:
            out.append((start, bars))
    return tuple(out)
