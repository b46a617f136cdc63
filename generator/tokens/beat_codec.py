"""The beat encoding's codec: a piece on its beat grid (notes, bars, chords) <-> token ids.

Time is counted in steps of 1/48 beat (a quarter note); a TIME_SHIFT(k) advances k + 1 steps. A
piece is held at the reference tempo (vocab.REFERENCE_BPM, 125 bpm), where one step is 10 ms, so
its notes are ordinary `Note`s in *reference seconds* and the default codec's rules serve for them
(velocity and instrument tokens only on change, NOTE_OFFs before NOTE_ONs, retriggers cut).
What the beat encoding adds (docs/vocabulary.md, "Beat time"):

- BAR at every bar line, then METER(n/d) when the bar's meter differs from the last one stated;
- CHORD(index) (tokens/chords.py) or CHORD_NONE where the harmony changes, after the bar tokens;
- drums are one-shot: a drum NOTE_ON has no NOTE_OFF; decoded, a hit lasts DRUM_STEPS (or up to
  the next hit of the same drum).

Within one step the order is BAR, METER, CHORD, then the note events. Like default_codec, this
module never imports the encoding: the encoding passes itself in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from generator.tokens import chords, vocab
from generator.tokens.default_codec import DEFAULT_VELOCITY, Emitter, TimeGrid, resolved_notes
from generator.tokens.notes import Note

DRUM_STEPS = 12  # a decoded drum hit lasts a sixteenth note
# Where a source's note may start or end: the union of the 32nd (6 steps) and sixteenth-triplet
# (8 steps) grids, which holds sixteenths, eighth triplets and everything coarser. Snapping to it
# removes the few-millisecond humanising and strums of rendered arrangements.
GRID_POSITIONS = np.array(sorted({p for p in range(0, 49, 6)} | {p for p in range(0, 49, 8)}))


def on_grid(step: int) -> int:
    """The nearest grid position to `step` (ties to the earlier one)."""
    beat, within = divmod(int(step), 48)
    return beat * 48 + int(GRID_POSITIONS[np.argmin(np.abs(GRID_POSITIONS - within))])


def next_on_grid(step: int) -> int:
    """The first grid position after `step`."""
    beat, within = divmod(int(step), 48)
    return beat * 48 + int(GRID_POSITIONS[GRID_POSITIONS > within][0])


@dataclass(frozen=True)
class Bar:
    step: int  # where the bar starts, in steps from the piece's start
    meter: tuple[int, int] | None  # None: a meter the vocabulary cannot name (the bar is still marked)


@dataclass(frozen=True)
class BeatPiece:
    """Notes in reference seconds, every bar line, and the chord changes (step, chord or None)."""

    notes: tuple[Note, ...]
    bars: tuple[Bar, ...] = ()
    chords: tuple[tuple[int, int | None], ...] = ()


def steps_per_bar(meter: tuple[int, int]) -> int:
    return round(vocab.quarters_per_bar(meter) * vocab.STEPS_PER_BEAT)


def meter_token(meter: tuple[int, int] | None) -> int | None:
    return vocab.METER + vocab.METERS.index(meter) if meter in vocab.METERS else None


def chord_token(chord: int | None) -> int:
    return vocab.CHORD_NONE if chord is None else vocab.CHORD + chord


def regular_bars(meter: tuple[int, int], end_step: int) -> tuple[Bar, ...]:
    """Bars of one meter from step 0 until `end_step` is covered."""
    size = steps_per_bar(meter)
    return tuple(Bar(step, meter) for step in range(0, max(1, end_step), size))


def analysed_chords(notes: Sequence[Note], bars: Sequence[Bar], encoding: TimeGrid,
                    end_step: int) -> tuple[tuple[int, int | None], ...]:
    """Chord changes by the template rule of tokens/chords.py, one chord per half bar (bars of 4 or
    6 quarters: 4/4, 2/2, 12/8) or per bar (the others)."""
    pitched = [(n.pitch, encoding.tick(n.start_s), encoding.tick(n.end_s)) for n in notes
               if n.instrument != vocab.DRUMS_FAMILY]
    starts = [bar.step for bar in bars]
    spans = []
    for i, bar in enumerate(bars):
        end = starts[i + 1] if i + 1 < len(starts) else max(end_step, bar.step + 1)
        length = end - bar.step
        quarters = length / vocab.STEPS_PER_BEAT
        if abs(quarters - 4) < 1e-9 or abs(quarters - 6) < 1e-9:
            spans += [(bar.step, bar.step + length // 2), (bar.step + length // 2, end)]
        else:
            spans.append((bar.step, end))
    out: list[tuple[int, int | None]] = []
    for start, end in spans:
        weights = chords.span_weights(pitched, start, end)
        if weights.sum() <= 0:
            continue  # silence keeps the chord in force
        chord = chords.best_chord(weights)
        if not out or out[-1][1] != chord:
            out.append((start, chord))
    return tuple(out)


def encode(piece: BeatPiece, encoding: TimeGrid) -> list[int]:
    """Token ids of a piece (no GENRE prefix, no END)."""
    marks: dict[int, list[int]] = {}  # step -> BAR / METER / CHORD tokens, in that order
    last_meter = None
    for bar in piece.bars:
        marks.setdefault(bar.step, []).append(vocab.BAR)
        token = meter_token(bar.meter)
        if token is not None and bar.meter != last_meter:
            marks[bar.step].append(token)
            last_meter = bar.meter
    last_chord: object = object()
    for step, chord in piece.chords:
        if chord != last_chord:
            marks.setdefault(step, []).append(chord_token(chord))
            last_chord = chord
    events: dict[int, dict[int, list[tuple[int, int, int | None]]]] = {}
    for start, end, family, pitch, velocity in resolved_notes(piece.notes, encoding):
        velocity_bin = velocity * vocab.N_VELOCITY_BINS // 128
        events.setdefault(start, {}).setdefault(family, []).append((1, pitch, velocity_bin))
        if family != vocab.DRUMS_FAMILY:
            events.setdefault(end, {}).setdefault(family, []).append((0, pitch, None))
    emitter = Emitter(encoding)
    for step in sorted(set(marks) | set(events)):
        emitter.advance_to(step)
        emitter.out += marks.get(step, [])
        if step in events:
            emitter.group(events[step])
    return emitter.out


def decode_piece(ids: Sequence[int], encoding: TimeGrid) -> BeatPiece:
    """The piece the ids describe; never raises (what cannot be decoded is skipped)."""
    now, family, velocity = 0, 0, DEFAULT_VELOCITY
    meter: tuple[int, int] | None = None
    sounding: dict[tuple[int, int], tuple[int, int]] = {}  # (family, pitch) -> (start, velocity)
    done: list[tuple[int, int, int, int, int]] = []
    bars: list[Bar] = []
    changes: list[tuple[int, int | None]] = []

    def close(key: tuple[int, int], at: int) -> None:
        start, vel = sounding.pop(key)
        done.append((start, max(at, start + 1), key[0], key[1], vel))

    for token in ids:
        t = int(token)
        if vocab.NOTE_ON <= t < vocab.NOTE_OFF:
            key = (family, t - vocab.NOTE_ON)
            if key in sounding:
                if sounding[key][0] == now:
                    continue
                close(key, now)
            sounding[key] = (now, velocity)
        elif vocab.NOTE_OFF <= t < vocab.VELOCITY:
            key = (family, t - vocab.NOTE_OFF)
            if key in sounding and family != vocab.DRUMS_FAMILY:
                close(key, now)
        elif vocab.VELOCITY <= t < vocab.TIME_SHIFT:
            velocity = t - vocab.VELOCITY
            velocity = velocity * 4 + 2
        elif vocab.TIME_SHIFT <= t < vocab.END:
            now += encoding.ticks_of(t)
            for key in [k for k, (s, _) in sounding.items() if k[0] == vocab.DRUMS_FAMILY and now - s >= DRUM_STEPS]:
                close(key, sounding[key][0] + DRUM_STEPS)
        elif vocab.is_instrument(t):
            family = t - vocab.INSTRUMENT
        elif t == vocab.BAR:
            bars.append(Bar(now, meter))
        elif vocab.METER <= t < vocab.CHORD:
            meter = vocab.METERS[t - vocab.METER]
            if bars and bars[-1].step == now:
                bars[-1] = Bar(now, meter)
        elif vocab.CHORD <= t <= vocab.CHORD_NONE:
            chord = None if t == vocab.CHORD_NONE else t - vocab.CHORD
            if changes and changes[-1][0] == now:
                changes[-1] = (now, chord)
            else:
                changes.append((now, chord))
    for key in list(sounding):
        start = sounding[key][0]
        close(key, start + DRUM_STEPS if key[0] == vocab.DRUMS_FAMILY else now)
    done.sort()
    notes = tuple(Note(p, encoding.seconds(s), encoding.seconds(e), v, f) for s, e, f, p, v in done)
    return BeatPiece(notes, tuple(bars), tuple(changes))


def state_before(ids: Sequence[int] | np.ndarray, index: int) -> tuple[int | None, int | None, int]:
    """(METER token, CHORD token, instrument family) in force just before ids[index]."""
    meter = chord = None
    family = 0
    for t in ids[:index]:
        t = int(t)
        if vocab.METER <= t < vocab.CHORD:
            meter = t
        elif vocab.CHORD <= t <= vocab.CHORD_NONE:
            chord = t
        elif vocab.is_instrument(t):
            family = t - vocab.INSTRUMENT
    return meter, chord, family


def window_at(ids: Sequence[int] | np.ndarray, index: int) -> list[int]:
    """ids[index:] after what is in force there: METER, CHORD (each once stated) and INSTRUMENT.
    The training windows and the sampler's re-primed windows both start this way."""
    meter, chord, family = state_before(ids, index)
    head = ([meter] if meter is not None else []) + ([chord] if chord is not None else [])
    return head + [vocab.INSTRUMENT + family] + [int(t) for t in ids[index:]]
