"""Our encoding's codec: notes <-> ids, and the stream transform training augments with.

The time arithmetic comes from the `Encoding` passed in (tokens/encoding.py), so this module
never imports it: the encoding imports its codec, not the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from generator.tokens import vocab
from generator.tokens.notes import Note


class TimeGrid(Protocol):
    """What the codec needs of its encoding (encoding.DefaultEncoding): the tick arithmetic."""

    def tick(self, seconds: float) -> int: ...
    def seconds(self, ticks: int) -> float: ...
    def ticks_of(self, token: int) -> int: ...
    def shift_tokens(self, ticks: int) -> list[int]: ...


DEFAULT_VELOCITY = 64  # a NOTE_ON decoded before any VELOCITY token
_OFF, _ON = 0, 1  # order of simultaneous events inside one family: NOTE_OFFs first


def resolved_notes(notes: Sequence[Note], encoding: TimeGrid) -> list[tuple[int, int, int, int, int]]:
    """(start_tick, end_tick, family, pitch, velocity) with at most one sounding note per
    (family, pitch): same-onset duplicates merge (longest end, loudest velocity) and an earlier
    note is cut where a later one of the same pitch starts (a retrigger, as a synth plays it)."""
    by_key: dict[tuple[int, int], list[list[int]]] = {}
    for n in notes:
        start = encoding.tick(n.start_s)
        end = max(start + 1, encoding.tick(n.end_s))  # zero-length notes survive as one tick
        by_key.setdefault((n.instrument, n.pitch), []).append([start, end, n.velocity])
    out = []
    for (family, pitch), group in by_key.items():
        group.sort()
        merged: list[list[int]] = []
        for start, end, velocity in group:
            if merged and merged[-1][0] == start:
                merged[-1][1] = max(merged[-1][1], end)
                merged[-1][2] = max(merged[-1][2], velocity)
                continue
            if merged and merged[-1][1] > start:
                merged[-1][1] = start
            merged.append([start, end, velocity])
        out.extend((s, e, family, pitch, v) for s, e, v in merged)
    return out


# One event inside a tick: (kind, pitch, velocity bin or None when unknown); grouped by family.
_Group = dict[int, list[tuple[int, int, int | None]]]
_IMPLICIT = -1  # augmenting a window: notes before its first INSTRUMENT token (decoded as piano)


class Emitter:
    """Writes tick groups in the canonical order, with VELOCITY/INSTRUMENT only where they change.

    Inside one tick the family already current goes first (it needs no INSTRUMENT token), then
    the others by ascending index; inside a family NOTE_OFFs precede NOTE_ONs, each by ascending
    pitch (NOTE_ONs of unknown velocity, possible only at the start of a window, go first)."""

    def __init__(self, encoding: TimeGrid, family: int | None = None) -> None:
        self.encoding = encoding
        self.out: list[int] = []
        self.family, self.velocity_bin = family, None
        self.tick = 0

    def advance_to(self, tick: int) -> None:
        self.out += self.encoding.shift_tokens(tick - self.tick)
        self.tick = tick

    def group(self, groups: _Group) -> None:
        for family in sorted(groups, key=lambda f: (f != self.family, f)):
            if family != self.family:
                self.out.append(vocab.INSTRUMENT + family)
                self.family = family
            for kind, _, pitch, velocity_bin in sorted((k, b is not None, p, b) for k, p, b in groups[family]):
                if kind == _OFF:
                    self.out.append(vocab.NOTE_OFF + pitch)
                    continue
                if velocity_bin is not None and velocity_bin != self.velocity_bin:
                    self.out.append(vocab.VELOCITY + velocity_bin)
                    self.velocity_bin = velocity_bin
                self.out.append(vocab.NOTE_ON + pitch)


def encode(notes: Sequence[Note], encoding: TimeGrid) -> list[int]:
    """Token ids for notes in our encoding (no GENRE prefix, no END)."""
    events: dict[int, _Group] = {}  # tick -> family -> events
    for start, end, family, pitch, velocity in resolved_notes(notes, encoding):
        velocity_bin = velocity * vocab.N_VELOCITY_BINS // 128
        events.setdefault(start, {}).setdefault(family, []).append((_ON, pitch, velocity_bin))
        events.setdefault(end, {}).setdefault(family, []).append((_OFF, pitch, None))
    emitter = Emitter(encoding)
    for tick in sorted(events):
        emitter.advance_to(tick)
        emitter.group(events[tick])
    return emitter.out


def _bin_velocity(velocity_bin: int) -> int:
    """The centre of a 4-wide velocity bin: 0 -> 2, 31 -> 126."""
    return velocity_bin * 4 + 2


def decode(ids: Sequence[int], encoding: TimeGrid) -> list[Note]:
    """Notes for ids in our encoding; never raises (what cannot be decoded is skipped)."""
    now, family, velocity = 0, 0, DEFAULT_VELOCITY
    sounding: dict[tuple[int, int], tuple[int, int]] = {}  # (family, pitch) -> (start_tick, velocity)
    done: list[tuple[int, int, int, int, int]] = []

    def close(key: tuple[int, int]) -> None:
        start, vel = sounding.pop(key)
        done.append((start, max(now, start + 1), key[0], key[1], vel))

    for token in ids:
        t = int(token)
        if vocab.NOTE_ON <= t < vocab.NOTE_OFF:
            key = (family, t - vocab.NOTE_ON)
            if key in sounding:
                if sounding[key][0] == now:
                    continue  # the same note struck twice at once: keep the first
                close(key)  # a retrigger ends the sounding note
            sounding[key] = (now, velocity)
        elif vocab.NOTE_OFF <= t < vocab.VELOCITY:
            key = (family, t - vocab.NOTE_OFF)
            if key in sounding:
                close(key)
        elif vocab.VELOCITY <= t < vocab.TIME_SHIFT:
            velocity = _bin_velocity(t - vocab.VELOCITY)
        elif vocab.TIME_SHIFT <= t < vocab.END:
            now += encoding.ticks_of(t)
        elif vocab.INSTRUMENT <= t < vocab.VOCAB_SIZE:
            family = t - vocab.INSTRUMENT
    for key in list(sounding):
        close(key)  # notes left open end at the last time
    done.sort()
    return [Note(p, encoding.seconds(s), encoding.seconds(e), v, f) for s, e, f, p, v in done]


def augment(ids: Sequence[int], transpose: int, stretch: float, encoding: TimeGrid) -> list[int]:
    """Parse into tick groups (keeping each event's family and velocity state), transform them,
    and write them back through the canonical emitter."""
    items: list[tuple[int, _Group | int]] = []  # (input tick, events of one group | passed-through id)
    tick, family, velocity_bin = 0, _IMPLICIT, None
    for token in ids:
        t = int(token)
        if vocab.TIME_SHIFT <= t < vocab.END:
            tick += encoding.ticks_of(t)
        elif vocab.VELOCITY <= t < vocab.TIME_SHIFT:
            velocity_bin = t - vocab.VELOCITY
        elif vocab.INSTRUMENT <= t < vocab.VOCAB_SIZE:
            family = t - vocab.INSTRUMENT
        elif vocab.NOTE_ON <= t < vocab.VELOCITY:
            kind = _ON if t < vocab.NOTE_OFF else _OFF
            pitch = t - (vocab.NOTE_ON if kind == _ON else vocab.NOTE_OFF)
            pitch += 0 if family == vocab.DRUMS_FAMILY else transpose
            if not 0 <= pitch <= 127:
                continue  # pushed out of range: its NOTE_ON and NOTE_OFF both go
            if not items or items[-1][0] != tick or not isinstance(items[-1][1], dict):
                items.append((tick, {}))
            items[-1][1].setdefault(family, []).append((kind, pitch, velocity_bin if kind == _ON else None))
        elif vocab.END <= t < vocab.INSTRUMENT:
            items.append((tick, t))  # GENRE/END/PAD stay where they are; unknown ids go
    emitter = Emitter(encoding, family=_IMPLICIT)
    last_in = 0

    def advance(item_tick: int) -> None:
        nonlocal last_in
        if item_tick > last_in:  # distinct times stay at least one tick apart, without drift
            emitter.advance_to(max(emitter.tick + 1, math.floor(item_tick * stretch + 0.5)))
            last_in = item_tick

    for item_tick, item in items:
        advance(item_tick)
        if isinstance(item, dict):
            emitter.group(item)
        else:
            emitter.out.append(item)
    advance(tick)  # trailing time shifts of a window
    return emitter.out
