import inspect
import random
import re
from pathlib import Path

import pytest

from generator.sampling.loops import (
    DETECTORS,
    GENRE_LIMITS,
    LoopLimits,
    calibrate,
    calibration_pieces,
    calibration_table,
    detect,
    genre_limits_source,
    measure,
)
from generator.tokens import vocab
from generator.tokens.tokenizer import Note, midi_to_ids, notes_to_ids
from paths import SBER_MIDI

DEFAULTS = LoopLimits()


def _melody(seconds: float = 30.0, start_s: float = 0.0, seed: int = 0) -> list[Note]:
    """A plausible line: 4 notes a second, varied pitches, durations and velocities."""
    rng = random.Random(seed)
    notes, t, pitch = [], start_s, 60
    while t < start_s + seconds:
        pitch = 48 + (pitch - 48 + rng.choice([-5, -3, -2, -1, 1, 2, 3, 4, 7])) % 36
        notes.append(Note(pitch, t, t + rng.choice([0.15, 0.2, 0.3, 0.45]), rng.randint(50, 90)))
        t += rng.choice([0.2, 0.25, 0.3])
    return notes


def _reason(notes: list[Note]) -> str | None:
    return detect(notes_to_ids(notes), limits=DEFAULTS)


def test_a_plausible_melody_passes_every_detector():
    for seed in range(5):
        assert _reason(_melody(seed=seed)) is None


def test_too_few_notes():
    sparse = [Note(60, 0.0, 0.5, 80), Note(64, 10.0, 10.5, 80), Note(67, 29.0, 30.0, 80)]
    assert _reason(sparse).startswith("too_few_notes")
    assert detect([vocab.TIME_SHIFT + 99] * 30 + [vocab.END], limits=DEFAULTS).startswith("too_few_notes")
    assert detect([], limits=DEFAULTS).startswith("too_few_notes")


def test_stuck_note():
    assert _reason(_melody() + [Note(30, 2.0, 22.0, 60)]).startswith("stuck_note")


def test_long_silence_inside_the_track():
    gap = _melody(10.0) + _melody(10.0, start_s=14.0, seed=1)
    assert _reason(gap).startswith("long_silence")
    short_gap = _melody(10.0) + _melody(10.0, start_s=12.0, seed=1)
    assert _reason(short_gap) is None


def test_glued_repetitions_like_the_sber_rule():
    # four voices, each re-striking its pitch exactly when the last stroke ends
    glued = [Note(p, i * 0.25, (i + 1) * 0.25, 70) for i in range(120) for p in (48, 55, 64, 71)]
    assert _reason(glued).startswith("glued_notes")


def test_one_pitch_hammered():
    notes = _melody()
    hammered = [Note(62, n.start_s, n.start_s + 0.1, 80) if i % 3 else n for i, n in enumerate(notes)]
    assert _reason(hammered).startswith("hammered_pitch")


def test_a_phrase_repeated_verbatim():
    phrase = [(60, 0.0), (64, 0.25), (67, 0.5), (72, 0.75), (71, 1.25), (67, 1.5), (65, 1.75), (62, 2.0)]
    loop = [Note(p, k * 2.5 + t, k * 2.5 + t + 0.2, 80) for k in range(12) for p, t in phrase]
    assert _reason(loop).startswith("phrase_loop")
    # the same phrase transposed each time is not a verbatim repeat
    varied = [Note(p + k % 5, k * 2.5 + t, k * 2.5 + t + 0.2, 80) for k in range(12) for p, t in phrase]
    assert _reason(varied) is None


def test_drums_are_not_hammered_pitches():
    hats = [Note(42, i * 0.25, i * 0.25 + 0.05, 80, vocab.DRUMS_FAMILY) for i in range(120)]
    assert _reason(_melody() + hats) is None


def test_every_detector_has_a_test_above():
    """Each detector's reason is asserted (`.startswith("<reason>")`) by a test defined above this one,
    and those tests assert no reason that is not a detector."""
    here = test_every_detector_has_a_test_above.__code__.co_firstlineno
    above = [f for name, f in globals().items()
             if name.startswith("test_") and inspect.isfunction(f) and f.__code__.co_firstlineno < here]
    asserted = set(re.findall(r'\.startswith\("(\w+)"\)', "".join(inspect.getsource(f) for f in above)))
    assert asserted == set(DETECTORS), f"untested: {set(DETECTORS) - asserted}, unknown: {asserted - set(DETECTORS)}"


def test_limits_for_genre_accept_aliases_and_default_otherwise():
    assert LoopLimits.for_genre("ambient") == GENRE_LIMITS["calm"]
    assert LoopLimits.for_genre(None) == LoopLimits() == LoopLimits.for_genre("nonexistent")


@pytest.mark.parametrize("genre", vocab.GENRES)
def test_detectors_pass_the_sber_files_at_their_genre_limits(genre):
    ids = midi_to_ids(SBER_MIDI / f"{genre}_0.mid")
    assert detect(ids, genre) is None


def test_calibration_loosens_limits_only_as_far_as_real_music_needs():
    pieces = list(calibration_pieces(sber_midi_dir=SBER_MIDI, test_shard=None))
    assert sorted(g for g, _ in pieces) == sorted(vocab.GENRES)
    result = calibrate(pieces)
    for cal in result.values():
        assert cal.rejected_with_limits == 0  # one piece per genre here: none may be rejected
        assert cal.limits.max_silence_s >= DEFAULTS.max_silence_s
        assert cal.limits.min_notes_per_s <= DEFAULTS.min_notes_per_s
    assert result["calm"].rejected_with_defaults.get("long_silence") == 1  # its 24 s pause
    assert result["jazz"].limits.max_silence_s == DEFAULTS.max_silence_s  # jazz_0 needs no change
    assert "| calm |" in calibration_table(result)
    assert '    "jazz": LoopLimits(),' in genre_limits_source(result).splitlines()  # no change: no arguments


def test_calibration_tolerates_five_percent_of_real_pieces():
    plain = [_melody(20.0, seed=s) for s in range(40)]
    one_pause = plain[:39] + [_melody(10.0) + _melody(10.0, start_s=16.0, seed=1)]  # 1 of 40: 2.5%
    cal = calibrate([("jazz", notes) for notes in one_pause])["jazz"]
    assert cal.limits.max_silence_s == DEFAULTS.max_silence_s and cal.rejected_with_limits == 1
    anchored = calibrate([("jazz", notes) for notes in plain[:39]], anchors=[("jazz", one_pause[-1])])["jazz"]
    assert anchored.limits.max_silence_s > 5.0 and anchored.rejected_with_limits == 0  # anchors always pass
    four_pauses = plain[:36] + [_melody(10.0) + _melody(10.0, start_s=16.0, seed=s) for s in range(4)]  # 10%
    cal = calibrate([("jazz", notes) for notes in four_pauses])["jazz"]
    assert cal.limits.max_silence_s > 5.0 and cal.rejected_with_limits == 0
    assert cal.rejected_with_defaults == {"long_silence": 4}


def test_calibration_bounds_the_rejections_of_all_detectors_together():
    pieces = [_melody(20.0, seed=s) for s in range(34)]
    pieces += [_melody(10.0, seed=s) + _melody(10.0, start_s=15.0 + s, seed=s) for s in range(2)]  # pauses
    pieces += [_melody(20.0, seed=s) + [Note(30, 1.0, 12.0 + s, 60)] for s in range(2)]  # long notes
    pieces += [[Note(p + s, i * 0.25, (i + 1) * 0.25, 70) for i in range(80) for p in (48, 55, 64, 71)]
               for s in range(2)]  # glued chords
    cal = calibrate([("pop", notes) for notes in pieces])["pop"]
    assert sum(cal.rejected_with_defaults.values()) == 6  # 15% at the defaults
    assert cal.rejected_with_limits <= 0.05 * len(pieces)


def test_measure_reports_the_statistics():
    stats = measure(_melody(), 30.0)
    assert 3.0 < stats.notes_per_s < 5.0 and stats.longest_silence_s < 0.2 and stats.phrase_share < 0.2


def test_release_times_are_the_real_note_lengths_of_the_committed_corpus():
    from generator.sampling.loops import GENRE_RELEASE_S, note_length_quantiles, release_after_s, training_pieces

    shard = Path(__file__).resolve().parent.parent / "data" / "shards" / "train.npz"
    measured = note_length_quantiles(training_pieces(shard), 0.999)
    assert measured == pytest.approx(GENRE_RELEASE_S, abs=0.1)
    assert release_after_s(LoopLimits(max_note_s=3.0), "jazz") == pytest.approx(2.4)  # the detector's cap wins
    assert release_after_s(LoopLimits(max_note_s=100.0), "ambient") == GENRE_RELEASE_S["calm"]
    assert release_after_s(LoopLimits(max_note_s=10.0)) == pytest.approx(8.0)
