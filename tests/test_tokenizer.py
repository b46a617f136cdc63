"""Tokenizer: Sber vectors bit-exact, default-encoding round trips on real MIDI, garbage decoding,
augmentation and the `gen tokenize` command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import mido
import pretty_midi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.errors import InputError
from generator.tokens import tokenizer, vocab
from generator.tokens.encoding import DEFAULT, SBER
from generator.tokens.tokenizer import (
    Note,
    augment_ids,
    ids_to_midi,
    ids_to_notes,
    midi_to_ids,
    midi_to_notes,
    names,
    notes_to_ids,
    seconds_of,
)

ROOT = Path(__file__).resolve().parents[1]
from paths import CI_ENV, SBER_MIDI  # noqa: E402

SBER_DIR = SBER_MIDI
SBER_NAMES = ["calm_0", "classic_0", "jazz_0", "pop_0"]
DRUMS = vocab.DRUMS_FAMILY
TICK_S = 0.01


def _tick(seconds: float) -> int:
    """The documented grid rule: seconds * 100 rounded half up."""
    return math.floor(seconds * 100 + 0.5)


def _vector(name: str) -> dict:
    return json.loads((SBER_DIR / f"{name}.tokens.json").read_text())


def _write(pm: pretty_midi.PrettyMIDI, path: Path) -> Path:
    pm.write(str(path))
    return path


def _notes_to_midi(notes: list[Note]) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI()
    for family in sorted({n.instrument for n in notes}):
        inst = pretty_midi.Instrument(program=0 if family == DRUMS else family * 8, is_drum=family == DRUMS)
        inst.notes = [pretty_midi.Note(max(n.velocity, 1), n.pitch, n.start_s, n.end_s)
                      for n in notes if n.instrument == family]
        pm.instruments.append(inst)
    return pm


def _save_case(tmp_path: Path, label: str, original: list[Note], decoded: list[Note]) -> str:
    """Write both versions as MIDI for listening; returns text for the assertion message."""
    a = _write(_notes_to_midi(original), tmp_path / f"{label}_original.mid")
    b = _write(_notes_to_midi(decoded), tmp_path / f"{label}_decoded.mid")
    return f"listen: {a} vs {b}"


def _assert_round_trip(notes: list[Note], tmp_path: Path, label: str) -> None:
    """Default encoding keeps every note: family, pitch, onset within 5 ms, velocity within 4.

    Notes of one family and pitch with the same onset tick merge (longest end, loudest velocity);
    a note still sounding when the next one of its family and pitch starts ends there."""
    decoded = ids_to_notes(notes_to_ids(notes))
    where = _save_case(tmp_path, label, notes, decoded)
    groups: dict[tuple[int, int, int], list[Note]] = {}
    for n in notes:
        groups.setdefault((n.instrument, n.pitch, _tick(n.start_s)), []).append(n)
    got = {(n.instrument, n.pitch, _tick(n.start_s)): n for n in decoded}
    assert len(got) == len(decoded) == len(groups), f"{len(decoded)} notes for {len(groups)} onsets; {where}"
    for (family, pitch, tick), group in groups.items():
        d = got.get((family, pitch, tick))
        assert d is not None, f"lost {group[0]}; {where}"
        later = [t for f, p, t in groups if (f, p) == (family, pitch) and t > tick]
        end = max(max(n.end_s for n in group), (tick + 1) * TICK_S)
        end = min(end, min(later) * TICK_S) if later else end
        for n in group:
            assert abs(d.start_s - n.start_s) <= TICK_S / 2 + 1e-9, f"{n} -> {d}; {where}"
        assert abs(d.velocity - max(n.velocity for n in group)) <= 4, f"{group} -> {d}; {where}"
        assert abs(d.end_s - end) <= TICK_S / 2 + 1e-9, f"{group} -> {d}, expected end {end}; {where}"


# ------------------------------------------------------------------ Sber compatibility


@pytest.mark.parametrize("name", SBER_NAMES)
def test_sber_encoding_is_bit_exact(name):
    assert midi_to_ids(SBER_DIR / f"{name}.mid", encoding=SBER) == _vector(name)["tokens"]


@pytest.mark.parametrize("name", SBER_NAMES)
def test_sber_decoding_gives_the_sber_notes(name):
    vector = _vector(name)
    notes = ids_to_notes(vector["tokens"], encoding=SBER)
    got = [[n.pitch, round(n.start_s, 2), round(n.end_s, 2), n.velocity] for n in notes]
    assert got == vector["decoded_notes_pitch_start_end_velocity"]


def test_sber_quirks_are_reproduced():
    # 0.29 s and 0.58 s gaps encode one step short; every NOTE_ON has its VELOCITY; range 21..96.
    notes = [Note(60, 0.0, 0.29, 80), Note(62, 0.29, 0.87, 81), Note(20, 0.0, 1.0, 80), Note(97, 0, 1, 80)]
    ids = notes_to_ids(notes, encoding=SBER)
    assert ids == [276, 60, 315, 188, 276, 62, 344, 190]
    assert names(ids)[2] == "TIME_SHIFT(280ms)" and names(ids)[6] == "TIME_SHIFT(570ms)"


def test_sber_mode_ignores_instrument_tokens_and_skips_drums():
    notes = [Note(60, 0.0, 0.5, 64, 5), Note(36, 0.0, 0.1, 100, DRUMS)]
    ids = notes_to_ids(notes, encoding=SBER)
    assert ids == [272, 60, 337, 188]
    decoded = ids_to_notes([vocab.INSTRUMENT + 4, *ids], encoding=SBER)
    assert [(n.pitch, n.instrument, n.velocity) for n in decoded] == [(60, 0, 64)]


# ------------------------------------------------------------------ default round trips


@pytest.mark.parametrize("name", SBER_NAMES)
def test_default_round_trip_on_sber_files(name, tmp_path):
    _assert_round_trip(midi_to_notes(SBER_DIR / f"{name}.mid"), tmp_path, name)


def _score_to_midi(tmp_path: Path, name: str, programs: list[int] | None) -> Path:
    music21 = pytest.importorskip("music21")
    score = music21.corpus.parse(name)
    for part, program in zip(score.parts, programs or []):
        inst = music21.instrument.Instrument()
        inst.midiProgram = program
        part.insert(0, inst)
    path = tmp_path / (name.replace("/", "_") + ".mid")
    score.write("midi", fp=str(path))
    return path


SCORES = [
    pytest.param("bach/bwv66.6", None, id="chorale"),
    pytest.param("bach/bwv66.6", [73, 71, 41, 70], id="chorale_winds_and_viola"),
    pytest.param("bach/bwv1.6", None, id="chorale_five_parts"),
    pytest.param("corelli/opus3no1/1grave", [40, 41, 19], id="trio_sonata_strings_organ"),
    pytest.param("schumann_clara/opus17/movement3", None, id="piano_trio", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, programs", SCORES)
def test_default_round_trip_on_music21_scores(name, programs, tmp_path):
    notes = midi_to_notes(_score_to_midi(tmp_path, name, programs))
    assert len(notes) > 100
    if programs:
        assert {n.instrument for n in notes} == {p // 8 for p in programs}
    _assert_round_trip(notes, tmp_path, name.replace("/", "_"))


def _band() -> list[Note]:
    """Piano chords, a bass line, drums and strings sharing onsets: every ordering rule at work."""
    notes = []
    for bar in range(4):
        t = bar * 2.0
        notes += [Note(p, t, t + 1.9, 70 + bar, 0) for p in (60, 64, 67)]
        notes += [Note(36 + bar, t, t + 0.45, 90, 4), Note(43, t + 1.0, t + 1.5, 88, 4)]
        notes += [Note(36, t + k * 0.5, t + k * 0.5, 110, DRUMS) for k in range(4)]  # zero length
        notes += [Note(42, t + k * 0.25, t + k * 0.25 + 0.05, 60 + 8 * k, DRUMS) for k in range(8)]
        notes += [Note(72, t, t + 2.0, 50, 5), Note(127, t + 0.333, t + 0.9, 1, 5), Note(0, t, t + 0.2, 127, 5)]
    return notes


def test_default_round_trip_keeps_instrument_families(tmp_path):
    notes = _band()
    _assert_round_trip(notes, tmp_path, "band")
    ids = notes_to_ids(notes)
    assert [t - vocab.INSTRUMENT for t in ids if t >= vocab.INSTRUMENT][:4] == [0, 4, 5, 16]
    assert all(0 <= t < vocab.VOCAB_SIZE and not vocab.END <= t < vocab.INSTRUMENT for t in ids)


def test_ids_survive_a_trip_through_a_midi_file(tmp_path):
    ids = notes_to_ids(_band())
    path = _write(ids_to_midi(ids), tmp_path / "band.mid")
    assert midi_to_ids(path) == ids
    ids = midi_to_ids(SBER_DIR / "jazz_0.mid")
    assert midi_to_ids(_write(ids_to_midi(ids), tmp_path / "jazz.mid")) == ids


def test_time_is_rounded_to_the_grid_not_truncated():
    ids = notes_to_ids([Note(60, 0.0, 0.29, 80), Note(62, 0.29, 0.58, 80), Note(64, 0.584, 1.996, 80)])
    assert [n for n in names(ids) if n.startswith("TIME")] == [
        "TIME_SHIFT(290ms)", "TIME_SHIFT(290ms)", "TIME_SHIFT(1000ms)", "TIME_SHIFT(420ms)"]
    assert seconds_of(ids) == pytest.approx(2.0)


def test_leading_silence_and_long_gaps_are_kept():
    ids = notes_to_ids([Note(60, 2.5, 2.6, 80), Note(61, 5.0, 5.1, 80)])
    assert names(ids)[:3] == ["TIME_SHIFT(1000ms)", "TIME_SHIFT(1000ms)", "TIME_SHIFT(500ms)"]
    assert [n.start_s for n in ids_to_notes(ids)] == [2.5, 5.0]


def test_simultaneous_events_put_offs_before_ons_and_velocity_only_on_change():
    ids = notes_to_ids([Note(64, 0, 0.5, 80), Note(60, 0, 0.5, 81), Note(67, 0.5, 1, 80), Note(60, 0.5, 1, 40)])
    assert names(ids) == [
        "INSTRUMENT(piano)", "VELOCITY(20)", "NOTE_ON(60)", "NOTE_ON(64)", "TIME_SHIFT(500ms)",
        "NOTE_OFF(60)", "NOTE_OFF(64)", "VELOCITY(10)", "NOTE_ON(60)", "VELOCITY(20)", "NOTE_ON(67)",
        "TIME_SHIFT(500ms)", "NOTE_OFF(60)", "NOTE_OFF(67)"]


def test_zero_length_notes_survive_as_one_tick():
    decoded = ids_to_notes(notes_to_ids([Note(38, 1.0, 1.0, 100, DRUMS), Note(60, 1.0, 1.003, 50)]))
    assert [(n.pitch, n.start_s, n.end_s, n.instrument) for n in decoded] == [
        (60, 1.0, 1.01, 0), (38, 1.0, 1.01, DRUMS)]


def test_overlapping_same_pitch_notes_do_not_corrupt_decoding():
    notes = [Note(60, 0.0, 1.0, 80), Note(60, 0.5, 1.5, 80), Note(60, 0.5, 0.7, 90),  # overlap + duplicate
             Note(60, 0.2, 0.4, 80, 5), Note(62, 0.0, 2.0, 80)]  # same pitch, other family: independent
    decoded = ids_to_notes(notes_to_ids(notes))
    assert [(n.pitch, n.start_s, n.end_s, n.instrument) for n in decoded] == [
        (60, 0.0, 0.5, 0), (62, 0.0, 2.0, 0), (60, 0.2, 0.4, 5), (60, 0.5, 1.5, 0)]
    assert decoded[-1].velocity == 90 // 4 * 4 + 2


# ------------------------------------------------------------------ decoding garbage


def test_decoder_skips_what_it_cannot_use():
    ids = [vocab.GENRE, vocab.NOTE_OFF + 60, vocab.NOTE_ON + 60, vocab.TIME_SHIFT + 9, vocab.PAD, 999, -3,
           vocab.END, vocab.INSTRUMENT + 3, vocab.VELOCITY + 31, vocab.NOTE_ON + 40, vocab.TIME_SHIFT + 4]
    decoded = ids_to_notes(ids)
    assert [(n.pitch, n.start_s, n.end_s, n.velocity, n.instrument) for n in decoded] == [
        (60, 0.0, 0.15, tokenizer.DEFAULT_VELOCITY, 0), (40, 0.1, 0.15, 126, 3)]


def test_a_repeated_note_on_retriggers_or_is_ignored_on_the_same_tick():
    on, off, shift = vocab.NOTE_ON + 60, vocab.NOTE_OFF + 60, vocab.TIME_SHIFT + 9
    decoded = ids_to_notes([on, on, shift, on, shift, off, off])
    assert [(n.start_s, n.end_s) for n in decoded] == [(0.0, 0.1), (0.1, 0.2)]


def test_a_note_open_at_the_very_end_still_lasts_a_tick():
    assert [(n.start_s, n.end_s) for n in ids_to_notes([vocab.TIME_SHIFT, vocab.NOTE_ON + 60])] == [(0.01, 0.02)]


garbage = st.lists(st.one_of(st.integers(0, vocab.VOCAB_SIZE - 1), st.integers(-50, 1000)), max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=garbage, sber_compatible=st.booleans())
def test_any_ids_decode_to_a_midi_file_that_reads_back(ids, sber_compatible, tmp_path):
    encoding = SBER if sber_compatible else DEFAULT
    pm = ids_to_midi(ids, encoding=encoding)
    path = tmp_path / "garbage.mid"
    pm.write(str(path))
    mido.MidiFile(str(path))
    for n in ids_to_notes(ids, encoding=encoding):
        assert 0 <= n.pitch <= 127 and 0 <= n.instrument < vocab.N_INSTRUMENTS and n.end_s >= n.start_s
        assert sber_compatible or n.end_s > n.start_s


@settings(max_examples=100, deadline=None)
@given(ids=garbage)
def test_encoding_decoded_ids_is_a_fixed_point(ids):
    canonical = notes_to_ids(ids_to_notes(ids))
    assert notes_to_ids(ids_to_notes(canonical)) == canonical
    assert augment_ids(canonical) == canonical


random_notes = st.lists(
    st.builds(Note, st.integers(0, 127), st.integers(0, 3000).map(lambda t: t / 1000),
              st.just(0.0), st.integers(0, 127), st.sampled_from([0, 0, 4, 5, DRUMS]))
    .flatmap(lambda n: st.integers(0, 800).map(
        lambda d: Note(n.pitch, n.start_s, n.start_s + d / 1000, n.velocity, n.instrument))),
    max_size=60)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=random_notes)
def test_random_notes_round_trip(notes, tmp_path):
    _assert_round_trip(notes, tmp_path, "random")


all_families_notes = st.lists(
    st.tuples(st.integers(0, 127), st.integers(0, 2000), st.integers(0, 300), st.integers(1, 127),
              st.integers(0, vocab.N_INSTRUMENTS - 1))
    .map(lambda t: Note(t[0], t[1] / 1000, (t[1] + t[2]) / 1000, t[3], t[4])),
    max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=all_families_notes)
def test_canonical_ids_survive_a_midi_file_with_any_families(notes, tmp_path):
    ids = notes_to_ids(notes)
    path = _write(ids_to_midi(ids), tmp_path / "families.mid")
    assert midi_to_ids(path) == ids, f"listen: {path}"


# ------------------------------------------------------------------ augmentation


def test_augment_transposes_pitched_notes_and_never_drums():
    notes = _band()
    decoded = ids_to_notes(augment_ids(notes_to_ids(notes), transpose=3))
    expected = ids_to_notes(notes_to_ids([
        Note(n.pitch + (0 if n.instrument == DRUMS else 3), n.start_s, n.end_s, n.velocity, n.instrument)
        for n in notes if n.instrument == DRUMS or n.pitch + 3 <= 127]))
    assert decoded == expected
    assert not any(n.pitch == 127 and n.instrument == 5 for n in decoded)  # pushed out: dropped
    assert sum(n.instrument == DRUMS for n in decoded) == sum(n.instrument == DRUMS for n in notes)


def test_augment_drops_notes_below_zero_and_tidies_tokens():
    ids = notes_to_ids([Note(1, 0, 0.5, 20, 5), Note(60, 0, 0.5, 100, 0), Note(2, 0.5, 1, 100, 5)])
    out = augment_ids(ids, transpose=-2)
    assert names(out) == ["INSTRUMENT(piano)", "VELOCITY(25)", "NOTE_ON(58)", "TIME_SHIFT(500ms)",
                          "NOTE_OFF(58)", "INSTRUMENT(strings)", "NOTE_ON(0)", "TIME_SHIFT(500ms)", "NOTE_OFF(0)"]


@pytest.mark.parametrize("stretch", [0.95, 1.05, 0.5, 2.0])
def test_augment_stretches_time(stretch):
    notes = midi_to_notes(SBER_DIR / "classic_0.mid")
    ids = notes_to_ids(notes)
    out = augment_ids(ids, stretch=stretch)
    assert seconds_of(out) == pytest.approx(seconds_of(ids) * stretch, abs=0.011)
    before, after = ids_to_notes(ids), ids_to_notes(out)
    assert len(after) == len(before)
    assert notes_to_ids(after) == out
    by_onset = lambda n: (n.start_s, n.pitch)  # noqa: E731
    for a, b in zip(sorted(before, key=by_onset), sorted(after, key=by_onset)):
        assert a.pitch == b.pitch and a.velocity == b.velocity
        assert abs(b.start_s - a.start_s * stretch) <= 0.03


def test_augment_never_collapses_events_that_were_apart():
    notes = [Note(60 + k, k * 0.01, k * 0.01 + 0.01, 80) for k in range(10)]
    out = augment_ids(notes_to_ids(notes), stretch=0.3)
    decoded = ids_to_notes(out)
    assert len({n.start_s for n in decoded}) == 10
    assert all(n.end_s > n.start_s for n in decoded)
    assert notes_to_ids(decoded) == out
    assert seconds_of(out) == pytest.approx(0.10)  # 11 event times kept one tick apart: 10 ticks


def test_augment_keeps_a_window_cut_mid_piece():
    ids = notes_to_ids(_band())
    start = next(i for i in range(37, len(ids)) if vocab.NOTE_OFF <= ids[i] < vocab.VELOCITY)
    window = [vocab.genre_token("jazz"), *ids[start:start + 150], vocab.END]
    assert any(vocab.NOTE_OFF <= t < vocab.VELOCITY for t in window[:5]), "window should open on orphan NOTE_OFFs"
    out = augment_ids(window, transpose=-1)
    assert out[0] == window[0] and out[-1] == vocab.END
    assert seconds_of(out) == seconds_of(window)
    expected = [Note(n.pitch - (n.instrument != DRUMS), n.start_s, n.end_s, n.velocity, n.instrument)
                for n in ids_to_notes(window) if n.instrument == DRUMS or n.pitch > 0]
    assert ids_to_notes(out) == expected


def test_augment_rejects_a_non_positive_stretch():
    with pytest.raises(ValueError, match="stretch"):
        augment_ids([vocab.NOTE_ON + 60], stretch=0)


# ------------------------------------------------------------------ MIDI objects, files and CLI


def test_ids_to_midi_makes_one_named_instrument_per_family():
    pm = ids_to_midi(notes_to_ids(_band()), programs={4: 33})
    assert [(i.name, i.program, i.is_drum) for i in pm.instruments] == [
        ("piano", 0, False), ("bass", 33, False), ("strings", 40, False), ("drums", 0, True)]


def test_zero_length_sber_notes_do_not_become_stuck_notes_in_the_file(tmp_path):
    ids = [vocab.NOTE_ON + 60, vocab.NOTE_OFF + 60, vocab.TIME_SHIFT + 99, vocab.NOTE_ON + 62, vocab.NOTE_OFF + 62]
    assert [(n.start_s, n.end_s) for n in ids_to_notes(ids, encoding=SBER)] == [(0, 0), (1.0, 1.0)]
    path = _write(ids_to_midi(ids, encoding=SBER), tmp_path / "zero.mid")
    notes = midi_to_notes(path)
    assert [(n.pitch, n.start_s, round(n.end_s, 3)) for n in notes] == [(60, 0.0, 0.01), (62, 1.0, 1.01)]


def test_a_corrupt_file_raises_input_error_naming_it(tmp_path):
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01")
    with pytest.raises(InputError, match="broken.mid") as info:
        midi_to_notes(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="missing.mid"):
        midi_to_ids(tmp_path / "missing.mid")


def _gen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args],
                          cwd=ROOT, env=CI_ENV, capture_output=True, text=True, timeout=120)


def test_gen_tokenize_prints_ids_and_names():
    result = _gen("tokenize", str(SBER_DIR / "pop_0.mid"), "--sber-compatible")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [int(x) for x in lines[1].split()] == _vector("pop_0")["tokens"]
    assert lines[2].split()[:3] == ["VELOCITY(18)", "NOTE_ON(64)", "TIME_SHIFT(1000ms)"]


def test_gen_tokenize_json():
    result = _gen("tokenize", str(SBER_DIR / "calm_0.mid"), "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["ids"] == midi_to_ids(SBER_DIR / "calm_0.mid")
    assert record["encoding"] == "default" and record["seconds"] == seconds_of(record["ids"])


def test_gen_tokenize_on_a_corrupt_file_fails_cleanly(tmp_path):
    bad = tmp_path / "noise.mid"
    bad.write_bytes(b"not midi at all")
    result = _gen("tokenize", str(bad))
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and "noise.mid" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
