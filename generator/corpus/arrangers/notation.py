"""Notated scores (MusicXML, ABC, ...) -> pretty_midi.PrettyMIDI through music21.

music21's own MIDI writer fails on some corpus files (badly formed repeats; ABC scores with a
duplicate time signature), so notes are read from the score and written with pretty_midi: the
first tempo mark gives the tempo, dynamics the velocities, part names the General MIDI programs.

The MIDI keeps the score's beat grid: one MIDI beat is one quarter note at one constant tempo
(later tempo marks are not played: the beat encoding normalises tempo anyway), and every bar line
of the score is a bar line of the MIDI (a time signature at each change of bar length, so a short
bar after a repeat stays short). A pickup bar is padded with rest to a whole bar.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from pathlib import Path

import pretty_midi

log = logging.getLogger(__name__)

DEFAULT_QUARTER_BPM = 100.0
DEFAULT_VELOCITY = 80
GRACE_NOTE_S = 0.06

# Lower-case part-name keyword -> General MIDI program (first match wins, so specific names first).
_PROGRAM_BY_NAME: tuple[tuple[str, int], ...] = (
    ("violoncello", 42), ("cello", 42), ("viola", 41), ("violin", 40), ("contrabass", 43),
    ("double bass", 43), ("harpsichord", 6), ("organ", 19), ("piano", 0), ("pianoforte", 0),
    ("flute", 73), ("piccolo", 72), ("recorder", 74), ("oboe", 68), ("english horn", 69),
    ("clarinet", 71), ("bassoon", 70), ("horn", 60), ("trumpet", 56), ("trombone", 57),
    ("tuba", 58), ("harp", 46), ("guitar", 24), ("lute", 24), ("timpani", 47),
    ("soprano", 52), ("alto", 52), ("tenor", 52), ("bass", 52), ("voice", 53), ("canto", 53),
    ("singstimme", 53), ("gesang", 53), ("chant", 53), ("cantus", 52), ("altus", 52),
    ("quintus", 52), ("sextus", 52), ("choir", 52), ("chorus", 52),
)
_VOCAL_PROGRAMS = (52, 53)


def program_for_part(name: str | None, midi_program: int | None) -> int:
    """General MIDI program of a score part, from its instrument or its name (piano if unknown)."""
    lowered = (name or "").lower()
    by_name = next((program for keyword, program in _PROGRAM_BY_NAME if keyword in lowered), None)
    if by_name in _VOCAL_PROGRAMS:
        return by_name  # encoders give voices arbitrary programs (oboe, sax); sing them
    if midi_program is not None and 0 <= midi_program < 128:
        return int(midi_program)
    return 0 if by_name is None else by_name


class _TempoMap:
    """Quarter-length offsets -> seconds, from the score's metronome marks."""

    def __init__(self, score) -> None:
        self.starts_ql: list[float] = [0.0]
        self.starts_s: list[float] = [0.0]
        self.spq: list[float] = [60.0 / DEFAULT_QUARTER_BPM]
        try:
            boundaries = score.metronomeMarkBoundaries()
        except Exception:  # noqa: BLE001 - a score without readable marks plays at the default
            boundaries = []
        for start_ql, _end_ql, mark in boundaries:
            bpm = mark.getQuarterBPM() if mark is not None else None
            if not bpm or bpm <= 0:
                continue
            start_ql = float(start_ql)
            if start_ql <= self.starts_ql[-1]:
                self.spq[-1] = 60.0 / bpm
                continue
            self.starts_s.append(self.seconds(start_ql))
            self.starts_ql.append(start_ql)
            self.spq.append(60.0 / bpm)

    def seconds(self, offset_ql: float) -> float:
        i = max(0, bisect_right(self.starts_ql, offset_ql) - 1)
        return self.starts_s[i] + (offset_ql - self.starts_ql[i]) * self.spq[i]


def _signature_of(length_ql: float, nominal: tuple[int, int]) -> tuple[int, int] | None:
    """The time signature of a bar `length_ql` quarters long: the nominal one when it fits, else
    the same denominator (or a finer one) with the bar's length as numerator."""
    numerator, denominator = nominal
    if abs(numerator * 4 / denominator - length_ql) < 1e-6:
        return nominal
    for den in (denominator, 8, 16):
        count = length_ql * den / 4
        if count >= 1 and abs(count - round(count)) < 1e-6:
            return int(round(count)), den
    return None


def bar_lines(score) -> tuple[float, list[tuple[float, int, int]]]:
    """(pickup padding in quarters, [(offset in quarters, numerator, denominator)] at every change
    of bar length), from the first part's measures (offsets before the padding)."""
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    measures = list(parts[0].getElementsByClass("Measure"))
    if not measures:
        return 0.0, []
    starts = [float(m.offset) for m in measures]
    ends = starts[1:] + [starts[-1] + float(measures[-1].duration.quarterLength)]
    nominal, changes, pad = (4, 4), [], 0.0
    for index, (measure, start, end) in enumerate(zip(measures, starts, ends)):
        if measure.timeSignature is not None:
            nominal = (int(measure.timeSignature.numerator), int(measure.timeSignature.denominator))
        length = end - start
        if length <= 0:
            continue
        full = nominal[0] * 4 / nominal[1]
        if index == 0 and length < full - 1e-6:
            pad, length = full - length, full  # a pickup: padded to a whole bar
            start = start - pad
        signature = _signature_of(length, nominal)
        if signature is None:
            continue
        if not changes or changes[-1][1:] != signature:
            changes.append((start, *signature))
    return pad, changes


class _BeatClock:
    """Quarter-length offsets -> seconds at one tempo, after the pickup's padding."""

    def __init__(self, spq: float, pad_ql: float) -> None:
        self.spq, self.pad_ql = spq, pad_ql

    def seconds(self, offset_ql: float) -> float:
        return max(0.0, (offset_ql + self.pad_ql) * self.spq)


def _dynamic_velocities(flat) -> tuple[list[float], list[int]]:
    offsets, velocities = [], []
    for dynamic in flat.getElementsByClass("Dynamic"):
        scalar = getattr(dynamic, "volumeScalar", None)
        if scalar is None:
            continue
        offsets.append(float(dynamic.offset))
        velocities.append(int(min(120, max(25, round(scalar * 127)))))
    return offsets, velocities


def _part_notes(part, tempo: _BeatClock) -> list[pretty_midi.Note]:
    flat = part.stripTies().flatten()
    dyn_offsets, dyn_velocities = _dynamic_velocities(flat)
    notes: list[pretty_midi.Note] = []
    for element in flat.notes:
        offset = float(element.offset)
        i = bisect_right(dyn_offsets, offset) - 1
        velocity = dyn_velocities[i] if i >= 0 else DEFAULT_VELOCITY
        start = tempo.seconds(offset)
        quarter_length = float(element.duration.quarterLength)
        end = tempo.seconds(offset + quarter_length) if quarter_length > 0 else start + GRACE_NOTE_S
        if end <= start:
            continue
        for pitch in element.pitches:
            if 0 <= pitch.midi < 128:
                notes.append(pretty_midi.Note(velocity, int(pitch.midi), start, end))
    return notes


def score_to_midi(score) -> pretty_midi.PrettyMIDI:
    """A music21 Score (or Opus item) -> PrettyMIDI with one instrument per part."""
    try:
        expanded = score.expandRepeats()
        if expanded.highestTime > 0:
            score = expanded
    except Exception as error:  # noqa: BLE001 - badly formed repeats: play the score as written
        log.debug("repeats not expanded: %s", error)
    pad, changes = bar_lines(score)
    tempo = _BeatClock(_TempoMap(score).spq[0], pad)
    pm = pretty_midi.PrettyMIDI(initial_tempo=60.0 / tempo.spq, resolution=480)
    pm.time_signature_changes = [pretty_midi.TimeSignature(n, d, tempo.seconds(offset)) for offset, n, d in changes]
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    for part in parts:
        instrument = part.getInstrument(returnDefault=True)
        name = part.partName or getattr(instrument, "instrumentName", None) or ""
        program = program_for_part(name, getattr(instrument, "midiProgram", None))
        notes = _part_notes(part, tempo)
        if notes:
            track = pretty_midi.Instrument(program=program, name=str(name)[:40])
            track.notes = notes
            pm.instruments.append(track)
    return pm


def parse_to_midi(path: str | Path) -> pretty_midi.PrettyMIDI:
    """Parse a notated score file (MusicXML, .mxl, ABC with one tune) -> PrettyMIDI."""
    import music21

    parsed = music21.converter.parse(str(path))
    if isinstance(parsed, music21.stream.Opus):
        parsed = parsed.scores[0] if parsed.scores else parsed
    return score_to_midi(parsed)
