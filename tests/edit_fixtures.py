"""A beat-time track and a stand-in synthesiser for the loop and cut-down tests (no FluidSynth needed)."""

from __future__ import annotations

import numpy as np
import pretty_midi

RELEASE_S = 0.5  # the stand-in's notes ring this long after their note-off (-60 dB)
CHORDS = ((60, 64, 67), (65, 69, 72), (67, 71, 74), (57, 60, 64))


def beat_midi(bars: int, bpm: float = 120.0, meter: tuple[int, int] = (4, 4)) -> pretty_midi.PrettyMIDI:
    """A chord held through every bar, a bass note per half bar and a melody note per beat, all on the grid."""
    beats = meter[0] * 4 // meter[1]
    beat_s = 60.0 / bpm
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*meter, 0.0))
    pads, bass, lead = (pretty_midi.Instrument(program=p, name=n) for p, n in ((48, "strings"), (33, "bass"),
                                                                              (0, "piano")))
    for bar in range(bars):
        start = bar * beats * beat_s
        chord = CHORDS[bar % len(CHORDS)]
        pads.notes += [pretty_midi.Note(70, p, start, start + beats * beat_s) for p in chord]
        half = beats * beat_s / 2
        bass.notes += [pretty_midi.Note(90, chord[0] - 24, start + k * half, start + (k + 1) * half) for k in (0, 1)]
        lead.notes += [pretty_midi.Note(80 + 10 * (b == 0), chord[b % 3] + 12, start + b * beat_s,
                                        start + (b + 0.75) * beat_s) for b in range(beats)]
    pm.instruments += [pads, bass, lead]
    return pm


def sine_render(midi: pretty_midi.PrettyMIDI, sample_rate: int) -> np.ndarray:
    """A stand-in for FluidSynth: each note a sine with a 5 ms attack, released over RELEASE_S after its
    note-off; (N, 2), sample 0 at MIDI time 0, as long as the last release."""
    end = max((n.end for i in midi.instruments for n in i.notes), default=0.0) + RELEASE_S
    out = np.zeros(int(np.ceil(end * sample_rate)) + 1)
    for inst in midi.instruments:
        for note in inst.notes:
            first, held = round(note.start * sample_rate), round((note.end - note.start) * sample_rate)
            t = np.arange(held + round(RELEASE_S * sample_rate)) / sample_rate  # (n,)
            env = np.minimum(1.0, t / 0.005) * np.exp(-np.maximum(0.0, t - held / sample_rate) * 14.0)
            freq = 440.0 * 2 ** ((note.pitch - 69) / 12)
            out[first:first + len(t)] += (0.05 * note.velocity / 127 * np.sin(2 * np.pi * freq * t) * env)[
                :len(out) - first]
    return np.stack([out, 0.9 * out], axis=1).astype(np.float32)

