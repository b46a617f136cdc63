"""A recipe's `humanize`: tiny, seeded deviations of the notes that go to the synthesiser.

Only the audio hears them: the caller passes a copy to the renderer and writes the MIDI file from
the original, so the delivered MIDI keeps the composed timing. The deviations come from the track
seed (seeds.stable_rng), so a re-run renders the same audio.
"""

from __future__ import annotations

import copy

import numpy as np
import pretty_midi

from generator.seeds import stable_rng

TIMING_SD_S = 0.008  # a player's spread around the grid
TIMING_MAX_S = 0.020  # never further off than this
VELOCITY_MAX = 6  # velocities move by at most this much either way
MIN_NOTE_S = 0.005


def humanized(midi: pretty_midi.PrettyMIDI, seed: int, *, timing_sd_s: float = TIMING_SD_S,
              timing_max_s: float = TIMING_MAX_S, velocity_max: int = VELOCITY_MAX) -> pretty_midi.PrettyMIDI:
    """A copy of `midi` whose every note starts a little early or late (normal, sd `timing_sd_s`,
    clipped to +-`timing_max_s`, its length kept) and is a little softer or louder (uniform, at
    most +-`velocity_max`, kept in 1..127). A note is cut where the next note of its pitch in its
    instrument starts, so no note-off of a moved note silences the next one."""
    rng = stable_rng("humanize", int(seed))
    out = copy.deepcopy(midi)
    for inst in out.instruments:
        n = len(inst.notes)
        shifts = np.clip(rng.normal(0.0, timing_sd_s, n), -timing_max_s, timing_max_s)  # (n,)
        nudges = rng.integers(-velocity_max, velocity_max + 1, n)  # (n,)
        for note, shift, nudge in zip(inst.notes, shifts, nudges):
            length = note.end - note.start
            note.start = max(0.0, note.start + float(shift))
            note.end = note.start + length
            note.velocity = int(np.clip(note.velocity + int(nudge), 1, 127))
        _no_overlaps(inst.notes)
    return out


def _no_overlaps(notes: list[pretty_midi.Note]) -> None:
    """Cut each note at the start of the next one of the same pitch (at least MIN_NOTE_S long)."""
    by_pitch: dict[int, list[pretty_midi.Note]] = {}
    for note in notes:
        by_pitch.setdefault(note.pitch, []).append(note)
    for same in by_pitch.values():
        same.sort(key=lambda note: note.start)
        for note, following in zip(same, same[1:]):
            if note.end > following.start:
                note.end = max(note.start + MIN_NOTE_S, following.start)
