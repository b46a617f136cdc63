"""Synthetic arrangements for corpus preparation: mma accompaniment, rule-based lead lines, pads.

Everything here is generated from harmony (chord symbols with their beat positions); the results
are labelled synthetic in the corpus manifest. Times are in beats until `to_seconds`.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import pretty_midi

from generator.corpus.arrangers.chords import Chord
from generator.tokens import chords as chord_templates

MMA_TIMEOUT_S = 60


@dataclass(frozen=True)
class ChordEvent:
    start_beat: float
    beats: float
    chord: Chord


@dataclass(frozen=True)
class BeatNote:
    start_beat: float
    beats: float
    pitch: int
    velocity: int


# A chord an arrangement plays, kept in its MIDI as a lyric event at the chord's start, so the beat
# encoding writes the chords the source knows instead of analysing them (tokens/beat_codec.py).
CHORD_LYRIC_PREFIX = "chord:"


def chord_lyric(chord: Chord | None) -> str:
    """'chord:' + the template's name (tokens/chords.py: 'chord:Dm7', 'chord:N.C.')."""
    index = None if chord is None else chord_templates.chord_of_pitch_classes(chord.pitch_classes, chord.root)
    return CHORD_LYRIC_PREFIX + chord_templates.chord_name(index)


def mark_beat_grid(pm: pretty_midi.PrettyMIDI, events: list[ChordEvent], *, beats_per_bar: int,
                   seconds_per_beat: float, offset_beats: float = 0.0) -> None:
    """Give an arrangement its meter (beats_per_bar / 4 from time 0) and its chords as lyrics."""
    pm.time_signature_changes = [pretty_midi.TimeSignature(int(beats_per_bar), 4, 0.0)]
    last = None
    for event in events:
        text = chord_lyric(event.chord)
        if text != last:
            pm.lyrics.append(pretty_midi.Lyric(text, (offset_beats + event.start_beat) * seconds_per_beat))
            last = text


class ArrangeError(Exception):
    """An input that cannot be arranged (unsupported meter, no chords, mma failure)."""


# --------------------------------------------------------------------------- mma


def mma_available() -> bool:
    return shutil.which("mma") is not None


def _bar_text(chords: list[Chord | None], beats_per_bar: int, previous: Chord | None) -> str:
    slots = ["/"] * beats_per_bar
    n = min(len(chords), beats_per_bar)
    for i in range(n):
        chord = chords[i]
        if chord is not None:
            slots[round(i * beats_per_bar / max(1, n))] = chord.mma_name()
    if slots[0] == "/" and previous is not None:
        slots[0] = previous.mma_name()  # mma needs a chord on the first beat of a groove change
    return " ".join(slots)


def render_mma(
    bars: list[list[Chord | None]],
    grooves: list[str],
    *,
    beats_per_bar: int,
    tempo_bpm: float,
    seed: int = 0,
    swing: bool = False,
) -> pretty_midi.PrettyMIDI:
    """Render one groove name per bar through Debian's mma; bar 1 starts at time 0.

    mma humanises with Python's random module; `RndSeed` makes its output reproducible."""
    if not mma_available():
        raise ArrangeError("the `mma` command is missing; fix: apt-get install mma")
    lines = [f"RndSeed {seed}", f"Tempo {tempo_bpm:.0f}", f"Time {beats_per_bar}"]
    if swing:
        lines.append("SwingMode On")
    current = None
    # A bar that opens on a hold ('/') needs a chord before it, even at the very start.
    previous = next((c for bar in bars for c in bar if c is not None), None)
    for number, (chords, groove) in enumerate(zip(bars, grooves), start=1):
        if groove != current:
            lines.append(f"Groove {groove}")
            current = groove
        lines.append(f"{number} {_bar_text(chords, beats_per_bar, previous)}")
        previous = next((c for c in reversed(chords) if c is not None), previous)
    with tempfile.TemporaryDirectory(prefix="gen-mma-") as tmp:
        source, target = Path(tmp) / "song.mma", Path(tmp) / "song.mid"
        source.write_text("\n".join(lines) + "\n")
        done = subprocess.run(
            ["mma", "-f", str(target), str(source)], capture_output=True, text=True,
            timeout=MMA_TIMEOUT_S, cwd=tmp,
        )
        if done.returncode != 0 or not target.is_file():
            detail = " ".join((done.stdout + done.stderr).split())[-200:]
            raise ArrangeError(f"mma failed: {detail}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(str(target))


# --------------------------------------------------------------------------- lead lines

_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 9, 10),
    "dominant": (0, 2, 4, 5, 7, 9, 10),
    "half_dim": (0, 1, 3, 5, 6, 8, 10),
    "dim": (0, 2, 3, 5, 6, 8, 9, 11),
}

# Rhythm cells of two bars of 4/4 (onset, length) in beats, by feel.
_CELLS_4 = {
    "swing": [
        [(0, 1), (1, 0.5), (1.5, 0.5), (2, 1.5), (4, 0.5), (4.5, 0.5), (5, 0.5), (5.5, 0.5), (6, 2)],
        [(0.5, 0.5), (1, 0.5), (1.5, 1), (2.5, 1.5), (4, 1), (5, 1), (6, 1.5)],
        [(0, 0.5), (0.5, 0.5), (1, 0.5), (1.5, 0.5), (2, 0.5), (2.5, 0.5), (3, 1), (4.5, 0.5), (5, 0.5),
         (5.5, 0.5), (6, 1)],
        [(0, 2), (2, 1), (3, 1), (4, 3)],
        [(1, 0.5), (1.5, 0.5), (2, 0.5), (2.5, 1), (3.5, 0.5), (4, 2), (6.5, 0.5), (7, 1)],
    ],
    "straight": [
        [(0, 1), (1, 1), (2, 1.5), (3.5, 0.5), (4, 2), (6, 2)],
        [(0, 0.5), (0.5, 0.5), (1, 1), (2, 2), (4, 1), (5, 1), (6, 2)],
        [(0.5, 1), (1.5, 1), (2.5, 1.5), (4.5, 1), (5.5, 0.5), (6, 2)],
        [(0, 3), (3, 1), (4, 4)],
        [(0, 1.5), (1.5, 0.5), (2, 1), (3, 1), (4, 1.5), (5.5, 2.5)],
    ],
    "ballad": [
        [(0, 2), (2, 1), (3, 1), (4, 4)],
        [(0, 3), (3, 1), (4, 2), (6, 2)],
        [(1, 1), (2, 2), (4, 1.5), (5.5, 0.5), (6, 2)],
        [(0, 4), (4, 2), (6, 1), (7, 1)],
    ],
}
_CELLS_3 = [
    [(0, 2), (2, 1), (3, 3)],
    [(0, 1), (1, 1), (2, 1), (3, 2), (5, 1)],
    [(0, 1.5), (1.5, 0.5), (2, 1), (3, 3)],
    [(1, 1), (2, 1), (3, 1), (4, 2)],
    [(0, 3), (3, 1), (4, 1), (5, 1)],
]


def _scale_of(chord: Chord) -> tuple[int, ...]:
    intervals = set(chord.intervals)
    if {3, 6, 9} <= intervals:
        kind = "dim"
    elif {3, 6} <= intervals:
        kind = "half_dim"
    elif chord.is_minor:
        kind = "minor"
    elif 10 in intervals:
        kind = "dominant"
    else:
        kind = "major"
    return tuple(sorted((chord.root + i) % 12 for i in _SCALES[kind]))


def chord_at(events: list[ChordEvent], beat: float) -> Chord:
    """The chord sounding at a beat (the first chord before the first event)."""
    current = events[0].chord
    for event in events:
        if event.start_beat > beat + 1e-6:
            break
        current = event.chord
    return current


def _nearest(pitch: int, pcs: tuple[int, ...], low: int, high: int, direction: int = 0) -> int:
    candidates = [p for p in range(low, high + 1) if p % 12 in pcs]
    if direction:
        ahead = [p for p in candidates if (p - pitch) * direction > 0]
        candidates = ahead or candidates
    return min(candidates, key=lambda p: (abs(p - pitch), p))


def lead_line(
    events: list[ChordEvent],
    total_beats: float,
    *,
    beats_per_bar: int,
    feel: str,
    rng: random.Random,
    low: int = 62,
    high: int = 81,
    rest_every_units: int = 4,
) -> list[BeatNote]:
    """A rule-based lead over the changes: chord tones on strong beats, scale steps between,
    two-bar rhythm cells with motif reuse and a breath at the end of each phrase."""
    cells = _CELLS_3 if beats_per_bar == 3 else _CELLS_4.get(feel, _CELLS_4["straight"])
    unit_beats = 2 * beats_per_bar
    notes: list[BeatNote] = []
    pitch = rng.randint(low + 4, high - 5)
    direction = rng.choice((-1, 1))
    cell = rng.choice(cells)
    unit_start, unit_index = 0.0, 0
    while unit_start < total_beats - 1e-6:
        if rng.random() > 0.45:
            cell = rng.choice(cells)
        phrase_end = (unit_index + 1) % rest_every_units == 0
        for onset, length in cell:
            beat = unit_start + onset
            if beat >= total_beats or (phrase_end and onset >= beats_per_bar + 1):
                break
            chord = chord_at(events, beat)
            strong = abs(onset - round(onset)) < 1e-6 and int(round(onset)) % 2 == 0
            if rng.random() < 0.22 or pitch <= low + 2 or pitch >= high - 2:
                direction = -1 if pitch >= high - 2 else 1 if pitch <= low + 2 else -direction
            if strong or length >= 1.5:
                pitch = _nearest(pitch + direction * rng.choice((1, 2, 3, 4)), chord.pitch_classes, low, high)
            else:
                pitch = _nearest(pitch, _scale_of(chord), low, high, direction)
            accent = 12 if strong else 0
            velocity = max(40, min(115, 72 + accent + rng.randint(-10, 10)))
            beats = min(length, total_beats - beat) * (0.92 if feel != "ballad" else 0.98)
            notes.append(BeatNote(beat, beats, pitch, velocity))
        unit_start += unit_beats
        unit_index += 1
    return notes


def swing_beat(beat: float, ratio: float = 2 / 3) -> float:
    """Move off-beat eighths to the swung position."""
    whole = int(beat // 1)
    frac = beat - whole
    return whole + ratio if abs(frac - 0.5) < 1e-6 else beat


def add_beat_notes(
    pm: pretty_midi.PrettyMIDI, notes: list[BeatNote], *, program: int, tempo_bpm: float,
    offset_beats: float = 0.0, swing: bool = False, name: str = "lead",
) -> None:
    """Append beat-timed notes to `pm` as one instrument (constant tempo)."""
    seconds_per_beat = 60.0 / tempo_bpm
    track = pretty_midi.Instrument(program=program, name=name)
    for note in notes:
        start_b = swing_beat(note.start_beat) if swing else note.start_beat
        end_b = note.start_beat + note.beats
        if swing:
            end_b = max(start_b + 0.2, swing_beat(end_b) if end_b % 1 else end_b)
        start = (offset_beats + start_b) * seconds_per_beat
        end = (offset_beats + end_b) * seconds_per_beat
        if end > start:
            track.notes.append(pretty_midi.Note(note.velocity, note.pitch, start, end))
    if track.notes:
        pm.instruments.append(track)


def bars_to_events(bars: list[list[Chord | None]], beats_per_bar: int) -> list[ChordEvent]:
    """Chart bars (chords spread evenly over the bar, None = hold) -> chord events in beats."""
    events: list[ChordEvent] = []
    for index, chords in enumerate(bars):
        n = min(len(chords), beats_per_bar)
        for i in range(n):
            if chords[i] is None:
                continue
            start = index * beats_per_bar + round(i * beats_per_bar / max(1, n))
            if events:
                last = events[-1]
                events[-1] = ChordEvent(last.start_beat, start - last.start_beat, last.chord)
            events.append(ChordEvent(float(start), float(beats_per_bar), chords[i]))
    if events:
        last = events[-1]
        end = len(bars) * beats_per_bar
        events[-1] = ChordEvent(last.start_beat, max(1.0, end - last.start_beat), last.chord)
    return events
