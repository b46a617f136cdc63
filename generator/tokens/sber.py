"""Sber's encoder and decoder (Sber AI music-composer), reproduced float for float: its quirks
are the point. The time rules (float quantisation, truncated gaps) are those of the SberEncoding
passed in; docs/vocabulary.md lists the behaviour rule by rule. No torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from generator.tokens import vocab
from generator.tokens.notes import Note


class SberTimeGrid(Protocol):
    """What the codec needs of its encoding (encoding.SberEncoding): Sber's float time rules."""

    step_s: float

    def quantise(self, seconds: float) -> float: ...
    def gap_shifts(self, seconds: float) -> list[int]: ...
    def ticks_of(self, token: int) -> int: ...


SBER_DEFAULT_VELOCITY = 100  # a NOTE_ON decoded before any VELOCITY token
SBER_PITCH_RANGE = (21, 96)  # the encoder keeps the piano range only

_VELOCITY, _ON, _OFF = 0, 1, 2


def encode(notes: Sequence[Note], encoding: SberTimeGrid) -> list[int]:
    """Sber's `encode(midi, use_piano_range=True)` of these notes."""
    low, high = SBER_PITCH_RANGE
    events: list[tuple[float, int, int]] = []
    for n in notes:
        if n.instrument == vocab.DRUMS_FAMILY or not low <= n.pitch <= high:
            continue
        events += [(n.start_s, _VELOCITY, n.velocity), (n.start_s, _ON, n.pitch), (n.end_s, _OFF, n.pitch)]
    events.sort(key=lambda e: e[0])  # stable: simultaneous events keep file order
    out: list[int] = []
    previous = None
    for time_s, kind, value in events:
        time_s = encoding.quantise(time_s)
        if previous is not None and time_s != previous:
            out += encoding.gap_shifts(time_s - previous)  # no shift before the first event
        previous = time_s
        if kind == _VELOCITY:
            out.append(vocab.VELOCITY + value * vocab.N_VELOCITY_BINS // 128)
        elif kind == _ON:
            out.append(vocab.NOTE_ON + value)
        else:
            out.append(vocab.NOTE_OFF + value)
    return out


def decode(ids: Sequence[int], encoding: SberTimeGrid) -> list[Note]:
    """Sber's `decode`: the notes in NOTE_OFF order, every family read as piano."""
    now = 0.0
    velocity = SBER_DEFAULT_VELOCITY
    sounding: dict[int, tuple[int, float]] = {}  # pitch -> (velocity, start); first ON wins
    notes: list[Note] = []
    for token in ids:
        t = int(token)
        if vocab.NOTE_ON <= t < vocab.NOTE_OFF:
            sounding.setdefault(t, (velocity, now))
        elif vocab.NOTE_OFF <= t < vocab.VELOCITY:
            pitch = t - vocab.NOTE_OFF
            if pitch in sounding:
                vel, start = sounding.pop(pitch)
                notes.append(Note(pitch, start, now, vel))
        elif vocab.VELOCITY <= t < vocab.TIME_SHIFT:
            velocity = max(1, (t - vocab.VELOCITY) * 128 // vocab.N_VELOCITY_BINS)
        elif vocab.TIME_SHIFT <= t < vocab.END:
            now += encoding.ticks_of(t) * encoding.step_s
    for pitch, (vel, start) in sounding.items():
        if start != now:
            notes.append(Note(pitch, start, now, vel))
    return notes
