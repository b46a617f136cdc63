"""The musicality measures (eval/musicality.py) on hand-built pieces whose answer is known, and their
table in `gen eval`'s report."""

import json

import numpy as np
import pytest

from generator.corpus.shards import load_shard, write_shard
from generator.eval import musicality as M
from generator.eval.evaluate import EvalSettings, GeneratedTrack, evaluate_tracks
from generator.eval.report import report_to_dict, report_to_markdown
from generator.tokens.tokenizer import Note, ids_to_notes, notes_to_ids
from generator.tokens.vocab import DRUMS_FAMILY

KICK, SNARE, HAT = 36, 38, 42


def metronome(bpm: float = 120.0, seconds: float = 60.0, offset_s: float = 0.0) -> list[Note]:
    """Kick and snare on the beats, hi-hat eighths, a C chord per bar and a four-note tune on the beats."""
    beat, notes = 60.0 / bpm, []
    for b in range(int(seconds / beat)):
        t = offset_s + b * beat
        notes += [Note(KICK if b % 2 == 0 else SNARE, t, t + 0.1, 100, DRUMS_FAMILY),
                  Note(HAT, t, t + 0.05, 80, DRUMS_FAMILY),
                  Note(HAT, t + beat / 2, t + beat / 2 + 0.05, 70, DRUMS_FAMILY),
                  Note(72 + (0, 2, 4, 7)[b % 4], t, t + 0.9 * beat, 80)]
        if b % 4 == 0:
            notes += [Note(p, t, t + 4 * beat - 0.01, 70) for p in (48, 52, 55)]
    return notes


def random_onsets(seed: int, per_s: float = 4.0, seconds: float = 60.0) -> list[Note]:
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.0, seconds, int(per_s * seconds)))
    return [Note(int(rng.integers(48, 84)), float(t), float(t) + 0.2, 80) for t in times]


def accelerating(start_bpm: float = 120.0, speedup: float = 0.2, seconds: float = 60.0) -> list[Note]:
    """A kick and a note on each beat, the tempo rising linearly by `speedup` over `seconds`."""
    notes, t, b = [], 0.0, 0
    while t < seconds:
        notes += [Note(KICK, t, t + 0.1, 100, DRUMS_FAMILY), Note(60 + b % 5, t, t + 0.2, 80)]
        t += 60.0 / (start_bpm * (1 + speedup * t / seconds))
        b += 1
    return notes


def held(pitches, seconds: float = 8.0) -> list[Note]:
    return [Note(p, 0.0, seconds, 80) for p in pitches]


# --- the beat ------------------------------------------------------------------------------------


def test_a_metronomic_drum_and_piano_pattern_has_a_clear_steady_grid():
    m = M.musicality(metronome(120.0))
    assert m["pulse_clarity"] > 0.7
    assert m["tempo_drift_pct"] < 1.0
    assert m["groove"] > 0.95
    assert m["drum_pattern_consistency"] > 0.95
    grid = M.estimate_grid(metronome(120.0))
    assert grid.beat_s == pytest.approx(0.5, rel=1e-3)


def test_the_grid_follows_the_tempo_and_the_phase():
    grid = M.estimate_grid(metronome(90.0, offset_s=0.13))
    assert grid.beat_s == pytest.approx(60 / 90, rel=1e-3)
    slots, distance = grid.slots(np.array([0.13 + 60 / 90 * k for k in range(10)]))
    assert np.all(distance < 0.002) and np.all((slots - grid.beat_slot) % M.GRID_PER_BEAT == 0)
    assert M.groove(metronome(90.0, offset_s=0.13)) > 0.95


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_onsets_have_no_pulse_and_chance_groove(seed):
    notes = random_onsets(seed)
    assert M.pulse_clarity(notes) < 0.4
    assert M.groove(notes) < 0.7  # chance is 0.5: a quarter grid step either side of each slot
    assert M.drum_pattern_consistency(notes) is None  # no drums


def test_a_tempo_that_speeds_up_by_a_fifth_drifts():
    assert M.tempo_drift_pct(accelerating()) > 3.0
    assert M.tempo_drift_pct(accelerating(speedup=0.0)) < 0.5


def test_drums_off_the_pattern_are_inconsistent():
    beat, notes = 0.5, []
    for b in range(120):
        t = b * beat
        notes += [Note(60, t, t + 0.4, 90), Note(48, t, t + 0.4, 90)]
        notes += [Note(HAT, t + k * beat / 5, t + k * beat / 5 + 0.03, 70, DRUMS_FAMILY) for k in range(1, 5)]
    assert M.drum_pattern_consistency(notes) < 0.5  # quintuplets: neither duple nor triple


def test_autocorrelation_is_pearson_at_every_lag():
    rng = np.random.default_rng(0)
    envelope = rng.random(1000) ** 3
    lags, r = M.autocorrelation(envelope)
    assert (lags[0], lags[-1]) == (25, 150)
    expected = [np.corrcoef(envelope[:-k], envelope[k:])[0, 1] for k in lags]
    np.testing.assert_allclose(r, expected, atol=1e-12)


def test_fold_lag_brings_octaves_within_a_factor_sqrt2():
    assert M.fold_lag(1.0, 0.5) == pytest.approx(0.5)
    assert M.fold_lag(0.26, 0.5) == pytest.approx(0.52)
    assert M.fold_lag(0.75, 0.5) == pytest.approx(0.375)  # a bar of three beats folds to no beat


# --- harmony and melody ------------------------------------------------------------------------------


def test_a_held_c_major_triad_fits_its_chord_and_does_not_clash():
    notes = held((60, 64, 67))
    assert M.chord_fit(notes) == pytest.approx(1.0)
    assert M.semitone_clash(notes) == 0.0


def test_a_semitone_cluster_clashes_everywhere():
    assert M.semitone_clash(held((60, 61, 62))) == 1.0
    assert M.chord_fit(held((60, 61, 62))) == pytest.approx(2 / 3)  # at most two of three in a chord


def test_chord_fit_weights_windows_by_sounding_time():
    triad, cluster = held((60, 64, 67), 3.0), [Note(p, 3.0, 4.0, 80) for p in (60, 61, 62)]
    # three 1 s windows of C major (3 s of notes each) and one of a cluster (3 s, 2/3 inside)
    assert M.chord_fit(triad + cluster) == pytest.approx((9 * 1.0 + 3 * 2 / 3) / 12)


def test_a_melody_played_four_times_recurs_and_a_random_walk_does_not():
    rng = np.random.default_rng(3)
    tune = [int(p) for p in 60 + rng.integers(-7, 8, 16)]
    repeated = [Note(p, 0.25 * i, 0.25 * i + 0.2, 80) for i, p in enumerate(tune * 4)]
    assert M.recurrence(repeated) > 0.5
    walk = 60 + np.cumsum(rng.choice([-3, -2, -1, 1, 2, 3], 200))
    wandering = [Note(int(np.clip(p, 0, 127)), 0.25 * i, 0.25 * i + 0.2, 80) for i, p in enumerate(walk)]
    assert M.recurrence(wandering) < 0.05


def test_the_top_line_takes_the_highest_note_of_each_onset_and_ignores_drums():
    notes = [Note(48, 0.0, 1.0, 80), Note(64, 0.005, 1.0, 80), Note(60, 1.0, 2.0, 80),
             Note(KICK, 1.5, 1.6, 100, DRUMS_FAMILY)]
    assert M.top_line(notes) == [64, 60]


def test_transposed_repeats_do_not_recur():
    tune = [60, 62, 64, 65, 67, 69, 71, 72]
    notes = [Note(p + 2 * r, 2.0 * r + 0.25 * i, 2.0 * r + 0.25 * i + 0.2, 80)
             for r in range(4) for i, p in enumerate(tune)]
    assert M.recurrence(notes) == 0.0


# --- what is measured --------------------------------------------------------------------------------


def test_only_the_first_minute_counts():
    steady = metronome(120.0)
    noisy_tail = steady + [Note(n.pitch, n.start_s + 60.0, n.end_s + 60.0, 80) for n in random_onsets(4)]
    assert M.musicality(noisy_tail) == M.musicality(steady)
    assert M.musicality(noisy_tail, seconds=120.0)["groove"] < M.musicality(steady)["groove"]


def test_measures_are_none_where_undefined():
    assert all(v is None for v in M.musicality([]).values())
    few = [Note(60, 0.0, 0.5, 80), Note(64, 0.5, 1.0, 80)]
    m = M.musicality(few)
    assert m["pulse_clarity"] is None and m["groove"] is None and m["recurrence"] is None
    assert m["semitone_clash"] is None  # never two pitch classes at once
    assert m["chord_fit"] == pytest.approx(1.0)
    assert M.drum_pattern_consistency(random_onsets(0)) is None
    assert set(M.musicality(metronome())) == set(M.NAMES)


# --- in gen eval ------------------------------------------------------------------------------------


def test_gen_eval_reports_musicality_per_genre_against_held_out_real_pieces(tmp_path):
    steady = [notes_to_ids(metronome(100.0 + 5 * k, seconds=20.0)) for k in range(6)]
    loose = [notes_to_ids(random_onsets(k, seconds=20.0)) for k in range(6)]
    for split, rows in (("train", slice(0, 4)), ("test", slice(4, 6))):
        write_shard(tmp_path / f"{split}.npz", steady[rows] + loose[rows], ["pop"] * len(steady[rows])
                    + ["calm"] * len(loose[rows]))
    train, test = load_shard(tmp_path / "train.npz"), load_shard(tmp_path / "test.npz")
    tracks = [GeneratedTrack("pop", 1, 20.0, tuple(notes_to_ids(random_onsets(9, seconds=20.0)))),
              GeneratedTrack("calm", 2, 20.0, tuple(steady[0]))]
    settings = EvalSettings(per_genre=1, seconds=20.0, genres=("pop", "calm"), reference_per_genre=4)
    report = evaluate_tracks(tracks, train, test, settings)

    pop = {m.name: m for m in report.musicality if m.genre == "pop"}
    assert set(pop) == set(M.NAMES) and len(report.musicality) == 2 * len(M.NAMES)
    assert (pop["groove"].generated_n, pop["groove"].real_n) == (1, 2)
    assert pop["groove"].real_median > 0.95 and pop["groove"].generated_median < 0.8
    assert pop["groove"].outside_iqr and pop["pulse_clarity"].outside_iqr
    assert report.tracks[0].musicality == M.musicality(ids_to_notes(list(tracks[0].ids)), 20.0)

    data = json.loads(json.dumps(report_to_dict(report), allow_nan=False))
    assert {(m["genre"], m["name"]) for m in data["musicality"]} == {(g, n) for g in ("pop", "calm") for n in M.NAMES}
    assert data["summary"]["musicality_outside_real_iqr"] >= 2
    markdown = report_to_markdown(report)
    assert "### Musicality per genre" in markdown
    assert "| groove | pop |" in markdown and "OUTSIDE IQR" in markdown
