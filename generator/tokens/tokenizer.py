"""MIDI <-> token ids (the event vocabulary of generator.tokens.vocab). No torch.

Two encodings share the vocabulary (docs/vocabulary.md has the full table and rules):

- default (ours): all 128 pitches, integer 10 ms ticks (times rounded to the grid), VELOCITY only
  when the velocity bin changes, INSTRUMENT(family) whenever the family of the next note event
  differs from the last one, leading silence kept, same-pitch overlaps within a family resolved.
- sber: bit-exact with Sber's `encode(midi, use_piano_range=True)` and `decode`, quirks
  included (piano range only, float truncation of some shifts, no leading silence); its codec is
  in sber.py.

The functions here take the encoding as an `Encoding` (encoding.py), DEFAULT unless told.

Sequences produced here never hold GENRE, END or PAD; decoders skip those and any unknown id.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pretty_midi

from generator.tokens import vocab
from generator.tokens.encoding import DEFAULT, Encoding
from generator.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_VELOCITY = 64  # a NOTE_ON decoded before any VELOCITY token (default encoding)
MIDI_RESOLUTION = 600  # ticks per beat at 120 bpm: one 10 ms step is exactly 12 MIDI ticks
MIDI_TEMPO_BPM = 120.0

_OFF, _ON = 0, 1  # order of simultaneous events inside one family: NOTE_OFFs first


@dataclass(frozen=True)
class Note:
    """One note; `instrument` is a family index into vocab.INSTRUMENT_FAMILIES (16 = drums)."""

    pitch: int
    start_s: float
    end_s: float
    velocity: int
    instrument: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"Note pitch {self.pitch} is outside 0..127")
        if not 0 <= self.velocity <= 127:
            raise ValueError(f"Note velocity {self.velocity} is outside 0..127")
        if not 0 <= self.instrument < vocab.N_INSTRUMENTS:
            raise ValueError(f"Note instrument family {self.instrument} is outside 0..{vocab.N_INSTRUMENTS - 1}")


# --------------------------------------------------------------------------- MIDI files


def _load(midi: str | Path | pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    if isinstance(midi, pretty_midi.PrettyMIDI):
        return midi
    path = Path(midi)
    if not path.is_file():
        raise InputError(f"{path}: MIDI file not found; fix: check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about meta events on odd tracks
            return pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # mido/pretty_midi raise many types for broken files
        detail = " ".join(str(error).split())
        reason = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        raise InputError(
            f"{path}: not a readable MIDI file ({reason}); fix: supply a standard MIDI file (.mid)"
        ) from error


def midi_to_notes(midi: str | Path | pretty_midi.PrettyMIDI) -> list[Note]:
    """All notes of a MIDI file in file order (instrument by instrument), times in seconds.

    A corrupt or unreadable file raises InputError naming the file.
    """
    pm = _load(midi)
    notes = []
    for inst in pm.instruments:
        family = int(vocab.instrument_family(int(inst.program), bool(inst.is_drum)))
        for n in inst.notes:
            start, end = float(n.start), float(n.end)
            notes.append(Note(int(n.pitch), start, max(start, end), int(n.velocity), family))
    log.debug("%d notes in %d instruments", len(notes), len(pm.instruments))
    return notes


def midi_to_ids(midi: str | Path | pretty_midi.PrettyMIDI, *, encoding: Encoding = DEFAULT) -> list[int]:
    """Token ids of a MIDI file (a path or a PrettyMIDI)."""
    return notes_to_ids(midi_to_notes(midi), encoding=encoding)


def ids_to_midi(
    ids: Sequence[int],
    *,
    programs: Mapping[int, int] | None = None,
    encoding: Encoding = DEFAULT,
) -> pretty_midi.PrettyMIDI:
    """A PrettyMIDI with one instrument per family present (named after the family).

    `programs` maps family -> General MIDI program (default family * 8; drums use the drum kit).
    Never raises for garbage ids: whatever cannot be decoded is skipped. Every note lasts at
    least 10 ms in the file (a zero-length one would be written as a note that never stops).
    """
    programs = dict(programs or {})
    for family, program in programs.items():
        if not 0 <= int(program) <= 127:
            raise ValueError(f"programs[{family}] = {program} is outside 0..127")
    pm = pretty_midi.PrettyMIDI(resolution=MIDI_RESOLUTION, initial_tempo=MIDI_TEMPO_BPM)
    by_family: dict[int, list[Note]] = {}
    for note in ids_to_notes(ids, encoding=encoding):
        by_family.setdefault(note.instrument, []).append(note)
    for family in sorted(by_family):
        default_program = 0 if family == vocab.DRUMS_FAMILY else family * 8
        inst = pretty_midi.Instrument(
            program=int(programs.get(family, default_program)),
            is_drum=family == vocab.DRUMS_FAMILY,
            name=vocab.INSTRUMENT_FAMILIES[family],
        )
        # A zero-length note (the Sber decoder makes them) would be written OFF-then-ON: a stuck note.
        step_s = 1 / encoding.ticks_per_s
        inst.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start_s, max(n.end_s, n.start_s + step_s))
                      for n in by_family[family]]
        pm.instruments.append(inst)
    return pm


# --------------------------------------------------------------------------- public codec


def notes_to_ids(notes: Sequence[Note], *, encoding: Encoding = DEFAULT) -> list[int]:
    """Token ids for notes (no GENRE prefix, no END)."""
    return encoding.encode(notes)


def ids_to_notes(ids: Sequence[int], *, encoding: Encoding = DEFAULT) -> list[Note]:
    """Notes for token ids; never raises: GENRE/END/PAD/unknown ids and orphan NOTE_OFFs are skipped.

    Default encoding: notes come sorted by (start, family, pitch) and last at least one tick.
    Sber: exactly the notes (and order) of the Sber decoder.
    """
    return encoding.decode(ids)


def seconds_of(ids: Sequence[int], *, encoding: Encoding = DEFAULT) -> float:
    """Music time the ids cover: the sum of their time shifts, in seconds."""
    return encoding.seconds_of(ids)


def names(ids: Sequence[int]) -> list[str]:
    """Readable token names, e.g. NOTE_ON(60), TIME_SHIFT(120ms)."""
    return [vocab.token_name(t) for t in ids]


def augment_ids(ids: Sequence[int], *, transpose: int = 0, stretch: float = 1.0) -> list[int]:
    """Transpose pitched notes by `transpose` semitones and scale time by `stretch` (training).

    Works on the event stream, not on decoded notes, so a window cut from the middle of a piece
    stays that window (open notes, orphan NOTE_OFFs and all): drums are never transposed; notes
    pushed out of 0..127 are dropped (their NOTE_ON and NOTE_OFF alike); absolute times are scaled
    and rounded to the tick grid without drift, and event times that were apart stay at least one
    tick apart. GENRE/END/PAD pass through in place; ids outside the vocabulary are dropped. The
    result is in the canonical default encoding (no redundant VELOCITY or INSTRUMENT tokens).
    Input is expected in the default encoding (notes_to_ids output or a window of it); for other
    streams the result is still valid, but the events of one tick are put in canonical order.
    """
    if not stretch > 0 or not math.isfinite(stretch):
        raise ValueError(f"stretch must be a positive finite number, got {stretch}")
    return _augment(ids, int(transpose), float(stretch))


# --------------------------------------------------------------------------- default encoding


def _resolved_notes(notes: Sequence[Note]) -> list[tuple[int, int, int, int, int]]:
    """(start_tick, end_tick, family, pitch, velocity) with at most one sounding note per
    (family, pitch): same-onset duplicates merge (longest end, loudest velocity) and an earlier
    note is cut where a later one of the same pitch starts (a retrigger, as a synth plays it)."""
    by_key: dict[tuple[int, int], list[list[int]]] = {}
    for n in notes:
        start = DEFAULT.tick(n.start_s)
        end = max(start + 1, DEFAULT.tick(n.end_s))  # zero-length notes survive as one tick
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


class _Emitter:
    """Writes tick groups in the canonical order, with VELOCITY/INSTRUMENT only where they change.

    Inside one tick the family already current goes first (it needs no INSTRUMENT token), then
    the others by ascending index; inside a family NOTE_OFFs precede NOTE_ONs, each by ascending
    pitch (NOTE_ONs of unknown velocity, possible only at the start of a window, go first)."""

    def __init__(self, family: int | None = None) -> None:
        self.out: list[int] = []
        self.family, self.velocity_bin = family, None
        self.tick = 0

    def advance_to(self, tick: int) -> None:
        self.out += DEFAULT.shift_tokens(tick - self.tick)
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


def _encode(notes: Sequence[Note]) -> list[int]:
    events: dict[int, _Group] = {}  # tick -> family -> events
    for start, end, family, pitch, velocity in _resolved_notes(notes):
        velocity_bin = velocity * vocab.N_VELOCITY_BINS // 128
        events.setdefault(start, {}).setdefault(family, []).append((_ON, pitch, velocity_bin))
        events.setdefault(end, {}).setdefault(family, []).append((_OFF, pitch, None))
    emitter = _Emitter()
    for tick in sorted(events):
        emitter.advance_to(tick)
        emitter.group(events[tick])
    return emitter.out


def _bin_velocity(velocity_bin: int) -> int:
    """The centre of a 4-wide velocity bin: 0 -> 2, 31 -> 126."""
    return velocity_bin * 4 + 2


def _decode(ids: Sequence[int]) -> list[Note]:
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
            now += DEFAULT.ticks_of(t)
        elif vocab.INSTRUMENT <= t < vocab.VOCAB_SIZE:
            family = t - vocab.INSTRUMENT
    for key in list(sounding):
        close(key)  # notes left open end at the last time
    done.sort()
    return [Note(p, DEFAULT.seconds(s), DEFAULT.seconds(e), v, f) for s, e, f, p, v in done]


def _augment(ids: Sequence[int], transpose: int, stretch: float) -> list[int]:
    """Parse into tick groups (keeping each event's family and velocity state), transform them,
    and write them back through the canonical emitter."""
    items: list[tuple[int, _Group | int]] = []  # (input tick, events of one group | passed-through id)
    tick, family, velocity_bin = 0, _IMPLICIT, None
    for token in ids:
        t = int(token)
        if vocab.TIME_SHIFT <= t < vocab.END:
            tick += DEFAULT.ticks_of(t)
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
    emitter = _Emitter(family=_IMPLICIT)
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
