"""A recipe's `humanize`: small seeded deviations of the notes the synthesiser plays, never of the MIDI."""

from __future__ import annotations

import pretty_midi

from generator.audio.humanize import TIMING_MAX_S, VELOCITY_MAX, humanized
from track_fixtures import make_midi


def notes_of(midi: pretty_midi.PrettyMIDI) -> list[tuple]:
    return [(i, n.pitch, n.start, n.end, n.velocity) for i, inst in enumerate(midi.instruments) for n in inst.notes]


def test_humanize_moves_notes_a_little_and_leaves_the_input_alone():
    midi = make_midi(8.0)
    before = notes_of(midi)
    played = humanized(midi, seed=1234)
    assert notes_of(midi) == before  # the MIDI file is written from this one
    after = notes_of(played)
    assert len(after) == len(before) and after != before
    moved = [abs(a[2] - b[2]) for a, b in zip(after, before)]
    assert max(moved) <= TIMING_MAX_S + 1e-9 and sum(m > 0.001 for m in moved) > len(moved) // 2
    for (i, pitch, start, end, velocity), (i0, pitch0, start0, end0, velocity0) in zip(after, before):
        assert (i, pitch) == (i0, pitch0)
        assert abs(velocity - velocity0) <= VELOCITY_MAX and 1 <= velocity <= 127
        assert start >= 0 and end > start
        assert end - start <= end0 - start0 + 1e-9  # the length is kept, or cut before a repeat


def test_humanize_is_reproducible_from_the_track_seed():
    midi = make_midi(4.0)
    assert notes_of(humanized(midi, seed=7)) == notes_of(humanized(midi, seed=7))
    assert notes_of(humanized(midi, seed=7)) != notes_of(humanized(midi, seed=8))


def test_a_moved_note_never_overlaps_the_next_of_its_pitch():
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(80, 60, i * 0.1, (i + 1) * 0.1) for i in range(200)]  # repeated, touching
    midi.instruments.append(piano)
    notes = sorted(humanized(midi, seed=3).instruments[0].notes, key=lambda n: n.start)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(notes, notes[1:]))
