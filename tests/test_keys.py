"""A recipe's `key`: key names, the move to the requested key, and transposing token ids."""

from __future__ import annotations

import pytest

from generator.eval.features import estimate_key
from generator.library.keys import Key, estimated_key, parse_key, semitones_to, to_key
from generator.tokens import vocab
from generator.tokens.encoding import DEFAULT, SBER
from generator.tokens.notes import Note
from generator.tokens.tokenizer import ids_to_notes, notes_to_ids
from generator.tokens.transpose import transpose_ids

BASS = vocab.INSTRUMENT_FAMILIES.index("bass")


def c_major_piece() -> list[Note]:
    """I-IV-V-I in C on the piano, a bass line, a melody on the scale, and a drum kit."""
    notes = []
    for bar, chord in enumerate(((60, 64, 67), (65, 69, 72), (67, 71, 74), (60, 64, 67))):
        start = bar * 2.0
        notes += [Note(p, start, start + 1.9, 80, 0) for p in chord]
        notes.append(Note(chord[0] - 24, start, start + 1.9, 90, BASS))
        notes += [Note(36 + 2 * (beat % 2), start + beat * 0.5, start + beat * 0.5 + 0.1, 100, vocab.DRUMS_FAMILY)
                  for beat in range(4)]
    notes += [Note(p, 8 + i * 0.25, 8.2 + i * 0.25, 70, 0) for i, p in enumerate((72, 74, 76, 77, 79, 81, 83, 84))]
    return notes


@pytest.mark.parametrize("text,key", [
    ("C", Key(0, False)), ("Am", Key(9, True)), ("F# minor", Key(6, True)), ("Eb major", Key(3, False)),
    ("Bbm", Key(10, True)), ("c# min", Key(1, True)), ("B♭", Key(10, False)), ("Cb", Key(11, False)),
    ("  g  MAJOR ", Key(7, False)),
])
def test_key_names_parse(text, key):
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["H", "", "any", "C minorish", "CM", "C##", "Am7", 5])
def test_what_is_no_key_parses_to_none(text):
    assert parse_key(text) is None


def test_every_estimated_key_name_parses_back():
    for tonic in range(12):
        for minor in (False, True):
            key = Key(tonic, minor)
            assert parse_key(key.name) == key


def test_the_move_keeps_the_mode_and_is_the_smallest():
    c_major, a_minor = Key(0, False), Key(9, True)
    assert semitones_to(c_major, Key(2, False)) == 2  # C -> D
    assert semitones_to(c_major, Key(7, False)) == -5  # C -> G: down a fourth, not up a fifth
    assert semitones_to(c_major, Key(6, False)) == -6  # a tritone goes down
    assert semitones_to(c_major, Key(11, True)) == 2  # asked for B minor: its relative, D major
    assert semitones_to(a_minor, Key(2, False)) == 2  # asked for D major: its relative, B minor
    assert semitones_to(a_minor, Key(9, True)) == 0
    for piece in (Key(t, m) for t in range(12) for m in (False, True)):
        for wanted in (Key(t, m) for t in range(12) for m in (False, True)):
            move = semitones_to(piece, wanted)
            assert -6 <= move <= 5
            reached = Key((piece.tonic + move) % 12, piece.minor)
            assert reached in (wanted, wanted.relative)


def test_transpose_ids_moves_pitched_notes_and_leaves_drums_and_time():
    ids = notes_to_ids(c_major_piece())
    moved = transpose_ids(ids, 2, DEFAULT)
    assert len(moved) == len(ids)
    before, after = ids_to_notes(ids), ids_to_notes(moved)
    assert [(n.start_s, n.end_s, n.velocity, n.instrument) for n in before] == \
           [(n.start_s, n.end_s, n.velocity, n.instrument) for n in after]
    for old, new in zip(before, after):
        assert new.pitch == old.pitch + (0 if old.instrument == vocab.DRUMS_FAMILY else 2)
    assert transpose_ids(ids, 0, DEFAULT) == ids
    assert transpose_ids(moved, -2, DEFAULT) == ids


def test_transpose_ids_passes_other_tokens_and_drops_notes_pushed_out_of_range():
    ids = [vocab.genre_token("jazz"), vocab.NOTE_ON + 126, vocab.NOTE_ON + 60, vocab.TIME_SHIFT + 9,
           vocab.NOTE_OFF + 126, vocab.NOTE_OFF + 60, vocab.END]
    assert transpose_ids(ids, 3, DEFAULT) == [ids[0], vocab.NOTE_ON + 63, ids[3], vocab.NOTE_OFF + 63, vocab.END]


def test_transpose_ids_without_instrument_tokens_moves_every_note():
    ids = [vocab.NOTE_ON + 60, vocab.TIME_SHIFT + 49, vocab.NOTE_OFF + 60]
    assert transpose_ids(ids, -1, SBER) == [vocab.NOTE_ON + 59, vocab.TIME_SHIFT + 49, vocab.NOTE_OFF + 59]


def test_a_c_major_piece_asked_for_d_comes_out_in_d_with_drums_unmoved():
    ids = notes_to_ids(c_major_piece())
    assert estimate_key(ids_to_notes(ids)) == "C major"
    moved, semitones = to_key(ids, parse_key("D"), DEFAULT)
    assert semitones == 2
    assert estimate_key(ids_to_notes(moved)) == "D major"
    pitches = [(n.instrument, n.pitch) for n in ids_to_notes(moved)]
    expected = [(n.instrument, n.pitch + (0 if n.instrument == vocab.DRUMS_FAMILY else 2))
                for n in ids_to_notes(ids)]
    assert pitches == expected
    # Asked for B minor (D major's relative), a major piece keeps its mode and goes to D major too.
    assert to_key(ids, parse_key("Bm"), DEFAULT) == (moved, 2)


def test_a_piece_without_pitched_notes_stays_as_it_is():
    drums = [Note(36, i * 0.5, i * 0.5 + 0.1, 100, vocab.DRUMS_FAMILY) for i in range(8)]
    ids = notes_to_ids(drums)
    assert estimated_key(ids, DEFAULT) is None
    assert to_key(ids, parse_key("D"), DEFAULT) == (ids, 0)
