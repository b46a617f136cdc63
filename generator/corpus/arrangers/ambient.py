"""Calm pieces: slow re-voicings of real harmony as pads, strings, a low bass and sparse piano.

The harmony (chord events in beats) comes from a chart or a folk tune's chord track; everything
else is generated, so the pieces are labelled synthetic.
"""

from __future__ import annotations

import random

import pretty_midi

from generator.corpus.arrangers.arranger import ChordEvent, mark_beat_grid
from generator.corpus.arrangers.chords import Chord

PAD_PROGRAMS = (88, 89, 91, 92, 94, 95, 48, 49, 52)
STRING_PROGRAMS = (48, 49, 50, 89, 42)
BASS_PROGRAMS = (43, 89, 32, 42)
SPARKLE_PROGRAMS = (0, 0, 4, 8, 11, 46, 10, 1)
MAX_PIECE_S = 330.0

_SOFTEN = {"7": "9sus", "7b9": "7sus", "7#9": "9sus", "7alt": "7sus", "7#5": "9", "7b13": "9",
           "dim": "m", "07": "m7", "aug": "maj7", "": "add9", "maj7": "maj9", "m": "m9", "m7": "m9",
           "6": "69", "13": "9sus", "7b5": "9sus", "m7b5": "m7b5"}


def soften(chord: Chord) -> Chord:
    """Calmer colours: dominants to sus, triads to added ninths."""
    return Chord(chord.root, _SOFTEN.get(chord.quality, chord.quality), chord.bass)


def _voicing(chord: Chord, previous: list[int] | None, low: int, high: int, size: int) -> list[int]:
    pcs = list(chord.pitch_classes)
    candidates = sorted(p for p in range(low, high + 1) if p % 12 in pcs)
    if previous:
        chosen = []
        for target in previous[:size]:
            options = [p for p in candidates if p not in chosen]
            chosen.append(min(options, key=lambda p: abs(p - target)))
        return sorted(set(chosen))
    middle = (low + high) // 2
    return sorted(sorted(candidates, key=lambda p: abs(p - middle))[:size])


def merge_events(events: list[ChordEvent], min_beats: float) -> list[ChordEvent]:
    """Join repeated chords and chords shorter than `min_beats` into longer spans."""
    merged: list[ChordEvent] = []
    for event in events:
        if merged and (merged[-1].chord == event.chord or event.beats < min_beats / 2):
            last = merged[-1]
            merged[-1] = ChordEvent(last.start_beat, last.beats + event.beats, last.chord)
        else:
            merged.append(event)
    return merged


def ambient_piece(events: list[ChordEvent], rng: random.Random, *, transpose: int = 0,
                  beats_per_bar: int = 4) -> pretty_midi.PrettyMIDI:
    """Chord events -> a slow, sustained piece (50-66 bpm, each chord held at least two beats).

    The MIDI beat is the music's beat (a stretched piece has a slower MIDI tempo), with the
    source's bars and the chords played marked (arranger.mark_beat_grid)."""
    tempo = rng.randint(50, 66)
    stretch = rng.choice((1.0, 2.0)) if tempo > 56 else 1.0
    spb = 60.0 / tempo * stretch
    spans = merge_events(events, 2.0)
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempo) / stretch)
    played = [ChordEvent(s.start_beat, s.beats, soften(s.chord.transposed(transpose))) for s in spans
              if s.start_beat * spb < MAX_PIECE_S]
    mark_beat_grid(pm, played, beats_per_bar=beats_per_bar, seconds_per_beat=spb)
    pad = pretty_midi.Instrument(program=rng.choice(PAD_PROGRAMS), name="pad")
    strings = pretty_midi.Instrument(program=rng.choice(STRING_PROGRAMS), name="strings")
    bass = pretty_midi.Instrument(program=rng.choice(BASS_PROGRAMS), name="bass")
    sparkle = pretty_midi.Instrument(program=rng.choice(SPARKLE_PROGRAMS), name="piano")
    voicing: list[int] | None = None
    top = rng.randint(70, 76)
    strings_on = rng.random() < 0.6
    for index, span in enumerate(spans):
        start, end = span.start_beat * spb, (span.start_beat + span.beats) * spb
        if start >= MAX_PIECE_S:
            break
        chord = soften(span.chord.transposed(transpose))
        voicing = _voicing(chord, voicing, 48, 72, 4)
        for pitch in voicing:
            pad.notes.append(pretty_midi.Note(rng.randint(38, 52), pitch, start, end + 0.4))
        root = 36 + (chord.bass if chord.bass is not None else chord.root) % 12
        bass.notes.append(pretty_midi.Note(rng.randint(36, 48), root, start, end + 0.2))
        if index % 8 == 0:
            strings_on = rng.random() < 0.6
        if strings_on:
            top = _voicing(chord, [top], 64, 84, 1)[0]
            strings.notes.append(pretty_midi.Note(rng.randint(34, 50), top, start + 0.1, end + 0.5))
        _sparkles(sparkle, chord, start, end, spb, rng)
    for track in (pad, bass, strings, sparkle):
        if track.notes:
            pm.instruments.append(track)
    return pm


def _sparkles(track: pretty_midi.Instrument, chord: Chord, start: float, end: float, spb: float,
              rng: random.Random) -> None:
    """A few soft, long, high chord tones scattered over the span (sometimes none)."""
    if rng.random() < 0.3:
        return
    pitches = [p for p in range(62, 90) if p % 12 in chord.pitch_classes]
    count = rng.randint(1, 4)
    beats = max(1, int((end - start) / spb))
    for _ in range(count):
        onset = start + rng.randrange(beats) * spb + rng.choice((0.0, 0.5)) * spb
        if onset >= end:
            continue
        length = rng.uniform(1.5, 4.0) * spb
        track.notes.append(pretty_midi.Note(rng.randint(30, 56), rng.choice(pitches), onset, onset + length))
