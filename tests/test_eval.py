import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from generator.corpus.shards import load_shard, write_shard
from generator.eval import features as F
from generator.eval import metrics
from generator.eval.evaluate import (
    EvalSettings,
    GeneratedTrack,
    ending_checks,
    evaluate_tracks,
    prefix_excerpt,
    real_set,
    unigram_baseline,
)
from generator.eval.musicality import NAMES as MUSICALITY_NAMES
from generator.tokens import vocab
from generator.tokens.encoding import BEAT, DEFAULT
from generator.tokens.tokenizer import Note, ids_to_notes, midi_to_ids, midi_to_notes, notes_to_ids
from paths import SBER_MIDI  # noqa: E402

REAL_SHARDS = Path(__file__).resolve().parents[1] / "data" / "shards"
C_MAJOR = [60, 62, 64, 65, 67, 69, 71]


def _midi(tmp_path, notes, drums=()):
    """Write a one-piano (plus optional drum kit) MIDI file of (pitch, start, end, velocity)."""
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(v, p, s, e) for p, s, e, v in notes]
    pm.instruments.append(piano)
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True)
        kit.notes = [pretty_midi.Note(v, p, s, e) for p, s, e, v in drums]
        pm.instruments.append(kit)
    path = tmp_path / "hand.mid"
    pm.write(str(path))
    return midi_to_notes(path)


# --- features on hand-built MIDI ------------------------------------------------------------------


def test_c_major_scale_features(tmp_path):
    notes = _midi(tmp_path, [(p, 0.5 * i, 0.5 * i + 0.4, 60 + 10 * (i % 2)) for i, p in enumerate(C_MAJOR)])
    f = F.features(notes, duration_s=3.5)
    assert f["scale_consistency"] == pytest.approx(1.0)
    assert f["pitch_class_entropy_bits"] == pytest.approx(math.log2(7))
    assert f["polyphony"] == pytest.approx(1.0)
    assert f["note_density_per_s"] == pytest.approx(2.0)
    assert f["empty_beat_rate"] == pytest.approx(0.0)
    assert f["pitch_range_semitones"] == 11
    assert f["mean_duration_s"] == pytest.approx(0.4, abs=1e-3)
    assert f["velocity_mean"] == pytest.approx(450 / 7)
    assert f["velocity_std"] == pytest.approx(np.std([60, 70, 60, 70, 60, 70, 60]))
    h = F.histograms(notes)
    assert h["ioi_histogram"].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]  # every IOI is 0.5 s
    assert h["pitch_range_histogram"][5] == 1.0  # all in octave 60..71


def test_sustained_chord_has_polyphony_three_and_mostly_empty_beats(tmp_path):
    notes = _midi(tmp_path, [(p, 0.0, 4.0, 80) for p in (60, 64, 67)])
    f = F.features(notes)
    assert f["polyphony"] == pytest.approx(3.0)
    assert f["note_density_per_s"] == pytest.approx(0.75)
    assert f["empty_beat_rate"] == pytest.approx(7 / 8)  # one onset in eight 0.5 s windows
    assert f["scale_consistency"] == 1.0
    assert f["pitch_class_entropy_bits"] == pytest.approx(math.log2(3))
    assert F.histograms(notes)["ioi_histogram"].sum() == 0  # one onset: no interval


def test_polyphony_is_time_weighted_over_sounding_time():
    notes = [Note(60, 0.0, 2.0, 80), Note(64, 1.0, 3.0, 80), Note(67, 5.0, 6.0, 80)]
    # sounding 4 s: one note 1 s, two notes 1 s, one note 1 s, one note 1 s -> 5 / 4
    assert F.polyphony(notes) == pytest.approx(5 / 4)


def test_chromatic_scale_and_drums_are_excluded_from_pitch_features():
    chromatic = [Note(60 + i, 0.25 * i, 0.25 * i + 0.2, 80) for i in range(12)]
    drums = [Note(36, 0.25 * i + 0.1, 0.25 * i + 0.2, 120, vocab.DRUMS_FAMILY) for i in range(12)]
    f, g = F.features(chromatic), F.features(chromatic + drums)
    assert f["pitch_class_entropy_bits"] == pytest.approx(math.log2(12))
    assert f["scale_consistency"] == pytest.approx(7 / 12)
    for key in ("pitch_class_entropy_bits", "scale_consistency", "polyphony", "pitch_range_semitones",
                "velocity_mean", "note_density_per_s"):
        assert g[key] == pytest.approx(f[key])
    assert g["drum_density_per_s"] > 0 and f["drum_density_per_s"] == 0


def test_empty_track_has_finite_features():
    values = F.feature_vector([], duration_s=10.0)
    assert np.all(np.isfinite(values)) and len(values) == len(F.vector_names())
    assert F.features([], 10.0)["empty_beat_rate"] == 1.0


# --- distribution overlap --------------------------------------------------------------------------


def test_overlap_is_one_for_the_same_distribution_and_zero_for_disjoint_ones():
    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, 400)
    assert metrics.overlap_area(real, rng.normal(0, 1, 400)) > 0.85
    assert metrics.overlap_area(real, rng.normal(8, 1, 400)) < 0.02
    assert metrics.overlap_area([2.0] * 5, [2.0] * 3) > 0.99  # constant samples still compare
    # one generated track gets the real set's kernel width: typical scores well, far-out does not
    assert metrics.overlap_area(real, [0.0]) > 0.4 and metrics.overlap_area(real, [5.0]) < 0.05
    assert metrics.histogram_overlap(np.array([[1, 0], [0, 1]]), np.array([[0.5, 0.5]])) == pytest.approx(1.0)


def test_feature_flag_when_generated_median_is_outside_real_iqr():
    real = np.arange(100, dtype=float)
    assert not metrics.compare_feature("x", real, [40, 50, 60]).outside_iqr
    flagged = metrics.compare_feature("x", real, [90, 95, 99])
    assert flagged.outside_iqr and flagged.real_q75 == pytest.approx(74.25)


# --- loops and copies ------------------------------------------------------------------------------


def _random_notes(rng, n, start_s=0.0, step_s=0.23):
    return [Note(int(rng.integers(40, 90)), start_s + step_s * i + float(rng.integers(0, 5)) * 0.01,
                 start_s + step_s * i + 0.2, 80) for i in range(n)]


def test_phrase_counter_finds_a_planted_repetition():
    rng = np.random.default_rng(1)
    phrase = [(62, 0.0), (65, 0.25), (69, 0.5), (72, 0.75), (69, 1.0), (65, 1.5), (64, 1.75), (62, 2.0)]
    notes = _random_notes(rng, 40)
    for r in range(6):  # six copies, 3 s apart, after the random notes
        t0 = 12.0 + 3.0 * r
        notes += [Note(p, t0 + dt, t0 + dt + 0.2, 80) for p, dt in phrase]
    assert metrics.phrase_repeats(notes, 8) == 6
    assert metrics.phrase_repeats(_random_notes(rng, 200), 8) == 1


def test_phrase_counter_counts_non_overlapping_occurrences():
    hammered = [Note(60, 0.25 * i, 0.25 * i + 0.2, 80) for i in range(32)]
    assert metrics.phrase_repeats(hammered, 8) == 4


def test_id_symbols_agree_with_note_symbols_on_real_music():
    for path in sorted(SBER_MIDI.glob("*.mid"))[:2]:
        ids = midi_to_ids(path)
        a, b = metrics.note_symbols(ids_to_notes(ids)), metrics.id_symbols(ids)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.fixture(scope="module")
def sber_pieces():
    return {p.stem.split("_")[0]: midi_to_notes(p) for p in sorted(SBER_MIDI.glob("*.mid"))}


def _shifted(notes, offset_s, transpose=0):
    return [Note(n.pitch + transpose, n.start_s + offset_s, n.end_s + offset_s, n.velocity, n.instrument)
            for n in notes]


def test_copy_index_finds_a_planted_20_note_copy_and_not_unrelated_music(sber_pieces):
    train = [sber_pieces[g] for g in ("classic", "jazz", "calm")]
    index = metrics.CopyIndex((metrics.note_symbols(p) for p in train), ngram=16)
    rng = np.random.default_rng(2)
    source = sorted(F.pitched(train[1]), key=lambda n: (n.start_s, n.pitch))[300:320]
    planted = _shifted(source, 20.0 - source[0].start_s)
    gap_end = planted[-1].start_s + 1.0
    track = _random_notes(rng, 80, 0.0) + planted + _random_notes(rng, 80, gap_end)
    copy = index.longest_copy(*metrics.note_symbols(track))
    assert copy.notes == 20 and copy.piece == 1 and copy.track_position == 80
    assert index.longest_copy(*metrics.note_symbols(_random_notes(rng, 300))).notes == 0
    assert index.longest_copy(*metrics.note_symbols(sber_pieces["pop"])).notes == 0  # unseen real piece
    # transposed: only the interval index finds it
    moved = _random_notes(rng, 80) + _shifted(planted, 0.0, transpose=3) + _random_notes(rng, 80, gap_end)
    assert index.longest_copy(*metrics.note_symbols(moved)).notes == 0
    invariant = metrics.CopyIndex(metrics.note_symbols(p, transposition_invariant=True) for p in train)
    found = invariant.longest_copy(*metrics.note_symbols(moved, transposition_invariant=True))
    assert found.notes >= 19 and found.piece == 1  # the first interval belongs to the random note before


def test_a_whole_training_piece_is_one_long_copy(sber_pieces):
    index = metrics.CopyIndex([metrics.note_symbols(sber_pieces["jazz"])])
    excerpt = F.excerpt(sber_pieces["jazz"], 30.0, 20.0)
    copy = index.longest_copy(*metrics.note_symbols(excerpt))
    assert copy.notes == len(F.pitched(excerpt)) > 40


# --- endings and baselines -------------------------------------------------------------------------


def _track(ids, encoding=DEFAULT, bpm=None):
    return GeneratedTrack("jazz", 0, 1.0, tuple(ids), (), encoding, bpm)


def test_ending_checks_find_unreleased_notes():
    T = vocab.TIME_SHIFT
    clean = [vocab.NOTE_ON + 60, T + 49, vocab.NOTE_OFF + 60, vocab.END]
    assert ending_checks(_track(clean)) == (True, True)
    hanging = [vocab.NOTE_ON + 60, T + 49, vocab.NOTE_ON + 64, T + 9, vocab.NOTE_OFF + 60, vocab.END]
    assert ending_checks(_track(hanging))[0] is False
    # NOTE_OFF of the same pitch on another instrument does not release it
    other = [vocab.NOTE_ON + 60, T + 49, vocab.INSTRUMENT + 4, vocab.NOTE_OFF + 60]
    assert ending_checks(_track(other))[0] is False
    assert ending_checks(_track([T + 9, vocab.NOTE_ON + 60]))[1] is False  # a note struck at the very end


def test_beat_tracks_are_measured_at_their_tempo_with_one_shot_drums():
    T = vocab.TIME_SHIFT
    drums = vocab.INSTRUMENT + vocab.DRUMS_FAMILY
    ids = [vocab.BAR, vocab.METER + 2, drums, vocab.NOTE_ON + 36, vocab.INSTRUMENT, vocab.NOTE_ON + 60,
           T + 47, T + 47, T + 47, T + 47, vocab.NOTE_OFF + 60, vocab.END]  # one 4/4 bar: 192 steps
    at_125 = _track(ids, BEAT)
    assert ending_checks(at_125) == (True, True)  # the kick has no NOTE_OFF and needs none
    assert at_125.seconds() == pytest.approx(1.92)
    at_100 = _track(ids, BEAT, bpm=100.0)
    assert at_100.seconds() == pytest.approx(2.4)  # a 4/4 bar at 100 bpm
    assert max(n.end_s for n in at_100.notes()) == pytest.approx(2.4)


def test_unigram_baseline_matches_a_hand_count(tmp_path):
    train = [[1, 1, 2], [2]]
    write_shard(tmp_path / "train.npz", train, [0, 0])
    write_shard(tmp_path / "test.npz", [[1]], [0])
    got = unigram_baseline(load_shard(tmp_path / "train.npz"), load_shard(tmp_path / "test.npz"), None)
    total = 4 + 2 + vocab.VOCAB_SIZE  # tokens + one END per piece + add-one smoothing
    expected = -(math.log(3 / total) + math.log(3 / total)) / 2  # targets: token 1 then END
    assert got == {"classic": pytest.approx(expected)}


def test_unigram_baseline_counts_in_the_shards_own_vocabulary(tmp_path):
    write_shard(tmp_path / "train.npz", [[vocab.BAR, 1, vocab.CHORD_NONE]], [0], encoding=BEAT)
    write_shard(tmp_path / "test.npz", [[vocab.BAR]], [0], encoding=BEAT)
    got = unigram_baseline(load_shard(tmp_path / "train.npz"), load_shard(tmp_path / "test.npz"), None)
    total = 3 + 1 + BEAT.vocab_size
    assert got == {"classic": pytest.approx(-(math.log(2 / total) + math.log(2 / total)) / 2)}


# --- real music: classifier and the whole measurement ----------------------------------------------


def _chunks(notes, length_s):
    end = max(n.end_s for n in notes)
    return [F.excerpt(notes, s, length_s) for s in np.arange(0.0, end - length_s / 2, length_s)]


def write_beat_shards(root: Path, sber_pieces, **parts: slice) -> Path:
    """Beat-time shards under root/shards of 20 s pieces cut from the Sber files: `parts` maps a
    split to the slice of each file's pieces it gets."""
    for split, part in parts.items():
        pieces, genres = [], []
        for genre, notes in sber_pieces.items():
            chunks = [c for c in _chunks(notes, 20.0) if len(c) > 8][part]
            pieces += [BEAT.encode(c) for c in chunks]
            genres += [genre] * len(chunks)
        write_shard(root / "shards" / f"{split}.npz", pieces, genres, encoding=BEAT)
    return root


@pytest.fixture(scope="module")
def sber_shards(tmp_path_factory, sber_pieces):
    """Shards cut from the four Sber files: 20 s pieces, the first 70% of each file train, the rest test."""
    root = tmp_path_factory.mktemp("data")
    splits = {"train": ([], []), "test": ([], [])}
    for genre, notes in sber_pieces.items():
        chunks = [c for c in _chunks(notes, 20.0) if len(c) > 8]
        cut = int(0.7 * len(chunks))
        for split, part in (("train", chunks[:cut]), ("test", chunks[cut:])):
            splits[split][0].extend(notes_to_ids(c) for c in part)
            splits[split][1].extend([genre] * len(part))
    for split, (pieces, genres) in splits.items():
        write_shard(root / "shards" / f"{split}.npz", pieces, genres)
    return root


def test_prefix_excerpt_cuts_at_the_length(sber_shards):
    shard = load_shard(sber_shards / "shards" / "train.npz")
    notes, length_s = prefix_excerpt(shard.ids(0), 7.5)
    assert length_s == 7.5 and notes and max(n.end_s for n in notes) <= 7.5
    assert notes == F.excerpt(ids_to_notes(shard.ids(0).tolist()), 0.0, 7.5)


def _classifier_accuracy(train, test, seconds, per_genre):
    rng = np.random.default_rng(0)
    ref, out = real_set(train, per_genre, seconds, rng), real_set(test, per_genre, seconds, rng)
    x_ref = np.stack([F.feature_vector(n, d) for n, d in zip(ref.notes, ref.durations_s)])
    x_out = np.stack([F.feature_vector(n, d) for n, d in zip(out.notes, out.durations_s)])
    model = metrics.fit_genre_classifier(x_ref, np.array(ref.genre))
    return metrics.confusion(model, x_out, np.array(out.genre), vocab.GENRES).accuracy


def test_classifier_separates_real_genres_on_held_out_excerpts(sber_shards):
    train = load_shard(sber_shards / "shards" / "train.npz")
    test = load_shard(sber_shards / "shards" / "test.npz")
    assert _classifier_accuracy(train, test, 20.0, 50) >= 0.6  # chance is 0.25


def test_classifier_separates_real_genres_on_the_corpus_test_split():
    train, test = load_shard(REAL_SHARDS / "train.npz"), load_shard(REAL_SHARDS / "test.npz")
    assert _classifier_accuracy(train, test, 30.0, 60) > 0.4


def test_evaluate_tracks_flags_a_copied_track_and_a_loop(sber_shards):
    train = load_shard(sber_shards / "shards" / "train.npz")
    test = load_shard(sber_shards / "shards" / "test.npz")
    copied = tuple(train.ids(3).tolist()) + (vocab.END,)
    phrase = [vocab.NOTE_ON + p for p in (60, 64, 67, 72, 67, 64, 62, 59)]
    loop = []
    for _ in range(8):
        for on in phrase:
            loop += [on, vocab.TIME_SHIFT + 19, on - vocab.NOTE_ON + vocab.NOTE_OFF]
    loop = tuple(loop) + (vocab.END,)
    tracks = [GeneratedTrack("classic", 1, 20.0, copied), GeneratedTrack("pop", 2, 12.0, loop, ("phrase_loop: x",)),
              GeneratedTrack("jazz", 3, 20.0, None, ("too_few_notes: a", "too_few_notes: b"))]
    settings = EvalSettings(per_genre=1, seconds=20.0, reference_per_genre=40)
    report = evaluate_tracks(tracks, train, test, settings)
    copy_row, loop_row, lost = report.tracks
    assert copy_row.longest_copy_notes >= 16 and copy_row.copy_piece == int(train.piece[3])
    assert copy_row.released and copy_row.within_track
    assert loop_row.phrase_repeats == 8 and loop_row.longest_copy_notes == 0
    assert loop_row.duration_error_pct == pytest.approx(100 * abs(12.8 - 12.0) / 12.0)
    assert not lost.kept and lost.predicted_genre is None
    assert (report.copies_flagged, report.looping_tracks, report.kept, report.given_up) == (1, 1, 2, 1)
    assert (report.attempts, report.rejected_attempts, report.first_try_rejected) == (5, 3, 2)
    assert report.rejection_reasons == {"phrase_loop": 1, "too_few_notes": 2}
    assert report.genre_real_heldout.accuracy >= 0.6
    assert {f.name for f in report.features} == set(F.SCALAR_NAMES)


def test_a_run_where_every_track_was_given_up_still_reports(sber_shards):
    from generator.eval.report import report_to_dict, report_to_markdown

    train = load_shard(sber_shards / "shards" / "train.npz")
    test = load_shard(sber_shards / "shards" / "test.npz")
    tracks = [GeneratedTrack("calm", 1, 10.0, None, ("long_silence: x",))]
    report = evaluate_tracks(tracks, train, test, EvalSettings(seconds=10.0, reference_per_genre=20))
    assert report.kept == 0 and report.given_up == 1 and report.features == ()
    data = json.loads(json.dumps(report_to_dict(report), allow_nan=False))
    assert data["summary"]["duration_mae_pct"] is None
    assert "| tracks kept / asked | 0 / 1 | all |" in report_to_markdown(report)


# --- gen eval end to end ---------------------------------------------------------------------------


def test_gen_eval_end_to_end_on_a_tiny_random_checkpoint(tmp_path, sber_shards):
    import torch
    from typer.testing import CliRunner

    from cli import app
    from generator.model.checkpoint import save_checkpoint
    from generator.model.transformer import ModelConfig, MusicTransformer

    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, MusicTransformer(ModelConfig.tiny()), {"name": "tiny-random"})
    args = ["eval", "--checkpoint", str(checkpoint), "--data", str(sber_shards), "--per-genre", "1",
            "--seconds", "3", "--genres", "jazz,pop", "--reference-per-genre", "12", "--max-attempts", "2",
            "--top-k", "40", "--seed", "7"]
    outputs = []
    for run in ("a", "b"):
        result = CliRunner().invoke(app, [*args, "--json", str(tmp_path / f"{run}.json"),
                                          "--markdown", str(tmp_path / f"{run}.md")])
        assert result.exit_code == 0, result.output
        outputs.append(json.loads((tmp_path / f"{run}.json").read_text()))
    first, second = outputs
    assert "genre accuracy, generated" in result.output  # the terminal table
    assert [t["genre"] for t in first["tracks"]] == ["jazz", "pop"]
    assert first["meta"]["sampling"]["top_k"] == 40 and first["meta"]["model_meta"]["name"] == "tiny-random"
    assert set(first["nll"]) == set(first["unigram_nll"]) == set(vocab.GENRES)
    assert all(v > 0 for v in first["nll"].values())
    for key in ("tracks", "features", "genre_generated", "nll", "summary"):  # deterministic for a seed
        assert first[key] == second[key], key
    markdown = (tmp_path / "a.md").read_text()
    assert markdown.startswith("## Evaluation") and "| genre accuracy, held-out real |" in markdown
    assert "### Musicality per genre" in markdown and "| chord_fit | jazz |" in markdown
    assert "musicality vs held-out real" in result.output
    assert {(m["genre"], m["name"]) for m in first["musicality"]} == {
        (g, n) for g in ("jazz", "pop") for n in MUSICALITY_NAMES}
    assert all(m["real_n"] > 0 for m in first["musicality"] if m["name"] == "chord_fit")
    assert first["musicality"] == second["musicality"]


def test_gen_eval_end_to_end_on_a_tiny_beat_checkpoint(tmp_path, sber_pieces):
    """A beat-time model against beat shards: tracks measured at their tempo, NLL and the unigram
    baseline in the beat vocabulary (its BAR/METER/CHORD ids are past the default ones)."""
    import torch
    from typer.testing import CliRunner

    from cli import app
    from generator.model.checkpoint import save_checkpoint
    from generator.model.transformer import ModelConfig, MusicTransformer

    root = write_beat_shards(tmp_path / "data", sber_pieces, train=slice(0, 3), test=slice(3, 5))
    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny-beat.pt"
    config = replace(ModelConfig.tiny(), vocab_size=BEAT.vocab_size)
    save_checkpoint(checkpoint, MusicTransformer(config, BEAT), {"name": "tiny-beat"})
    result = CliRunner().invoke(app, [
        "eval", "--checkpoint", str(checkpoint), "--data", str(root), "--per-genre", "1", "--seconds", "4",
        "--genres", "jazz,calm", "--reference-per-genre", "3", "--max-attempts", "1", "--nll-tokens", "500",
        "--json", str(tmp_path / "beat.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "beat.json").read_text())
    assert set(report["nll"]) == set(report["unigram_nll"]) == set(vocab.GENRES)
    assert all(v > 0 for v in report["unigram_nll"].values())
    kept = [t for t in report["tracks"] if t["kept"]]
    assert all(t["duration_error_pct"] <= 100 * vocab.BAR_FIT for t in kept)  # whole bars fill 4 s


def test_eval_tracks_play_the_genres_default_instruments(tmp_path):
    """As `gen batch` without a recipe instrumentation: jazz is piano, bass and drums."""
    import torch

    from generator.eval.evaluate import default_palette, eval_requests, generate_tracks
    from generator.model.transformer import ModelConfig, MusicTransformer
    from generator.sampling.params import SamplingParams

    jazz = tuple(sorted(vocab.INSTRUMENT_FAMILIES.index(f) for f in ("piano", "bass", "drums")))
    assert default_palette("jazz") == jazz
    # 4 attempts: on jazz's swing grid this random model's first take can glue its repeated notes
    settings = EvalSettings(per_genre=2, seconds=6.0, genres=("jazz", "calm"), max_attempts=4)
    assert [r.instruments for r in eval_requests(SamplingParams.plain(), settings)] == \
        [jazz, jazz, default_palette("calm"), default_palette("calm")]
    anything = replace(settings, instrumentation=False)
    assert {r.instruments for r in eval_requests(SamplingParams.plain(), anything)} == {None}
    torch.manual_seed(0)
    model = MusicTransformer(replace(ModelConfig.tiny(), vocab_size=BEAT.vocab_size), BEAT).eval()
    favour = torch.zeros(BEAT.vocab_size)
    favour[vocab.INSTRUMENT:vocab.INSTRUMENT + vocab.N_INSTRUMENTS] = 2.0  # a model that loves to switch
    favour[vocab.TIME_SHIFT:vocab.TIME_SHIFT + BEAT.n_time_shifts] = 4.0  # and moves time, so no take is cut short
    model.head.register_forward_hook(lambda module, args, out: out + favour)
    tracks = generate_tracks(model, SamplingParams.plain(), replace(settings, genres=("jazz",)))
    families = {n.instrument for t in tracks if t.ids for n in t.notes()}
    assert families and families <= set(jazz)
