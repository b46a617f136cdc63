"""Loops and cut-downs: which bars (audio/edit_plan.py), how they are rendered, folded and mastered
(audio/edits.py), and what export writes of them. The fast tests use a sine stand-in for FluidSynth
(edit_fixtures.sine_render); the slow one renders with FluidSynth and measures with ffmpeg."""

import dataclasses
import json
import shutil

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
from mutagen.wave import WAVE

from edit_fixtures import RELEASE_S, beat_midi, sine_render
from generator.audio.edit_plan import Form, Section, cutdown_segments, loop_candidates, loop_segment, nearest_bars
from generator.audio.edits import (
    EditSettings,
    bars_midi,
    fold_tail,
    join_roughness,
    make_cutdown,
    make_loop,
    track_reference,
)
from generator.audio.ffmpeg_meter import ebur128
from generator.audio.joins import beat_marks, join_measures
from generator.audio.master import integrated_lufs, true_peak_dbtp
from generator.library.catalogue import build_catalogue
from generator.library.export import ExportSettings, export_track
from generator.library.sheet import build_sheet
from track_fixtures import make_info, make_mastered

FORM = Form(120.0, (4, 4), 12)  # bars of 2 s
SR = 24000


# --- plans ------------------------------------------------------------------------------------------

def test_bar_frames_are_the_formula_rounded_once():
    assert Form(96.0, (4, 4), 8).frames(8, 48000) == 960000
    assert Form(132.0, (4, 4), 8).frames(8, 48000) == 698182  # 698181.8...
    assert Form(90.0, (6, 8), 8).frames(4, 44100) == 352800  # 6/8: 3 quarter notes a bar
    assert Form(132.0, (4, 4), 8).frames(3, 48000) != 3 * Form(132.0, (4, 4), 8).frames(1, 48000)


def test_a_form_without_sections_reads_as_intro_main_outro_from_eight_bars():
    assert Form(100.0, (4, 4), 16).parts() == (Section("intro", 0, 2), Section("A", 2, 12), Section("outro", 14, 2))
    assert Form(100.0, (4, 4), 6).parts() == (Section("intro", 0, 0), Section("A", 0, 5), Section("outro", 5, 1))


def test_named_sections_give_intro_main_and_outro():
    form = Form.of(100.0, (3, 4), 32, [{"name": "intro", "start_bar": 0, "bars": 4},
                                        {"name": "A", "start_bar": 4, "bars": 8, "start_s": 7.2, "end_s": 21.6},
                                        {"name": "B", "start_bar": 12, "bars": 8}, Section("A", 20, 8),
                                        {"name": "outro", "start_bar": 28, "bars": 4}])
    assert form.parts() == (Section("intro", 0, 4), Section("A", 4, 8), Section("outro", 28, 4))
    assert loop_segment(form) == (4, 8) and loop_segment(form, 4) == (4, 4)
    assert loop_segment(form, 16) == (4, 16)  # asked for: runs on into B, still before the outro


def test_the_loop_is_halved_until_it_fits():
    assert loop_segment(FORM) == (2, 8)
    assert loop_segment(FORM, 16) == (2, 8)
    assert loop_segment(Form(100.0, (4, 4), 7)) == (0, 4)  # main section: bars 0-5
    assert loop_segment(Form(100.0, (4, 4), 1)) is None


@pytest.mark.parametrize("bpm", [60.0, 96.0, 132.0, 171.0])
@pytest.mark.parametrize("sections", [(), ((0, 4, "intro"), (4, 8, "A"), (12, 8, "B"), (20, 4, "outro"))])
def test_cutdowns_are_the_nearest_whole_bars_and_end_on_the_tracks_last_bars(bpm, sections):
    form = Form(bpm, (4, 4), 24, tuple(Section(name, start, bars) for start, bars, name in sections))
    for nominal_s in (5, 15, 30, 60):
        segments = cutdown_segments(form, nominal_s)
        n = nearest_bars(form, nominal_s)
        assert abs(n * form.bar_s - nominal_s) <= form.bar_s / 2 + 1e-9
        if n >= form.bars:
            assert segments is None
            continue
        assert sum(bars for _, bars in segments) == n
        assert segments[-1][0] + segments[-1][1] == form.bars  # the cadence
        assert all(0 <= start and bars >= 1 and start + bars <= form.bars for start, bars in segments)


def test_a_cutdown_is_intro_then_main_then_ending_by_rule():
    form = Form(96.0, (4, 4), 32, (Section("intro", 0, 4), Section("A", 4, 8), Section("B", 12, 8),
                                   Section("A", 20, 8), Section("outro", 28, 4)))  # bars of 2.5 s
    assert cutdown_segments(form, 15) == ((0, 1), (4, 3), (30, 2))  # 6 bars: o = 2, i = 1, body 3
    assert cutdown_segments(form, 30) == ((0, 2), (4, 6), (28, 4))  # 12 bars: o = 4, i = 8 // 3 = 2, body 6
    assert cutdown_segments(Form(96.0, (4, 4), 40), 60) == ((0, 22), (38, 2))  # no sections: 2-bar edges


def test_a_cutdown_repeats_the_main_section_by_whole_bars_when_it_runs_out():
    form = Form(120.0, (4, 4), 12, (Section("intro", 0, 8), Section("A", 8, 2), Section("outro", 10, 2)))
    assert cutdown_segments(form, 22) == ((0, 3), (8, 2), (8, 2), (8, 4))


def test_bars_midi_moves_clips_and_restarts_notes():
    midi = beat_midi(4)
    held = midi.instruments[0].notes[0]
    held.end = 5.0  # from bar 0 into bar 2 (bars of 2 s)
    cut = bars_midi(midi, FORM, [(0, 1), (2, 1)])
    pads = cut.instruments[0].notes
    starts = sorted((round(n.start, 6), round(n.end, 6), n.pitch) for n in pads)
    assert (0.0, 2.0, held.pitch) in starts  # clipped at its segment's end
    assert (2.0, 3.0, held.pitch) in starts  # sounding across bar 2's line: starts again there, clipped at 5 s
    assert max(n.end for i in cut.instruments for n in i.notes) == pytest.approx(4.0)
    assert cut.time_signature_changes[0].numerator == 4 and cut.get_tempo_changes()[1][0] == pytest.approx(120.0)


def test_a_loops_note_held_over_its_end_and_its_start_sustains_across_the_join():
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    pad = pretty_midi.Instrument(program=89, name="pad")
    pad.notes = [pretty_midi.Note(60, 60, 3.0, 5.0),  # held into the loop's first bar line (bar 2, 4 s)
                 pretty_midi.Note(60, 60, 10.0, 14.0),  # the same pitch held over its last one (bar 6, 12 s)
                 pretty_midi.Note(60, 64, 10.0, 13.0),  # held over the end, not held at the start: cut there
                 pretty_midi.Note(60, 67, 3.0, 6.0)]  # held at the start, not over the end: struck again at 0
    midi.instruments.append(pad)

    def notes(pm):
        return sorted((round(n.start, 6), round(n.end, 6), n.pitch) for n in pm.instruments[0].notes)

    plain = notes(bars_midi(midi, FORM, [(2, 4)]))
    assert plain == [(0.0, 1.0, 60), (0.0, 2.0, 67), (6.0, 8.0, 60), (6.0, 8.0, 64)]
    looped = notes(bars_midi(midi, FORM, [(2, 4)], loop=True))
    assert looped == [(0.0, 2.0, 67), (6.0, 8.0, 64), (6.0, 9.0, 60)]  # on past the end for its twin's 1 s


# --- audio ------------------------------------------------------------------------------------------

def test_fold_tail_adds_what_rings_past_the_end_to_the_start():
    audio = np.arange(10, dtype=np.float32)[:, None].repeat(2, axis=1)
    np.testing.assert_array_equal(fold_tail(audio, 4)[:, 0], [0 + 4 + 8, 1 + 5 + 9, 2 + 6, 3 + 7])


def test_a_loop_repeats_without_a_click_gap_or_bump():
    edit = make_loop(beat_midi(12), FORM, sine_render, SR, EditSettings(), bars=4)
    assert edit.audio.shape == (FORM.frames(4, SR), 2) == (4 * 2 * SR, 2)
    assert edit.facts["bars"] == 4 and edit.facts["start_bar"] == 2 and edit.facts["frames"] == 4 * 2 * SR
    assert edit.facts["tail_folded_s"] == pytest.approx(RELEASE_S, abs=1e-3)
    m = join_measures(edit.audio, marks=beat_marks(FORM, 4, SR))
    assert m["join_step"] <= m["step_p99"] and m["join_flux"] <= m["flux_p99"], m
    assert abs(integrated_lufs(edit.audio, SR) + 14) <= 0.5 and true_peak_dbtp(edit.audio, SR) <= -1.0


def test_the_loop_starts_at_the_statement_of_the_main_section_whose_join_is_smoothest():
    """Two like A sections: the first is kept. A loud cluster that opens the first A (an accent heard
    only there) makes that loop's join stand out (it fails the join test), so the loop is the second A's."""
    form = Form(120.0, (4, 4), 12, (Section("intro", 0, 2), Section("A", 2, 4), Section("A", 6, 4),
                                    Section("outro", 10, 2)))
    assert loop_candidates(form) == [(2, 4), (6, 4)] and loop_candidates(form, 8) == [(2, 8)]
    midi = beat_midi(12)
    assert make_loop(midi, form, sine_render, SR, EditSettings()).facts["start_bar"] == 2
    midi.instruments[2].notes += [pretty_midi.Note(127, p, 4.0, 4.5) for p in (84, 85, 88, 91, 95)]  # bar 2 at 4 s
    first = fold_tail(sine_render(bars_midi(midi, form, [(2, 4)], loop=True), SR), form.frames(4, SR))
    assert join_roughness(first, beat_marks(form, 4, SR), SR) > 1.0
    edit = make_loop(midi, form, sine_render, SR, EditSettings())
    assert edit.facts["start_bar"] == 6 and edit.facts["segments_tried"] == [[2, 4], [6, 4]]
    assert edit.facts["join_roughness"] <= 1.0


def test_a_loop_whose_every_place_joins_roughly_is_halved_to_one_that_joins_smoothly():
    """One 8-bar A opened by an accent heard only there: no 8-bar loop passes, and of its halves the
    second (no accent at its start) does. The track's own music is a reference too."""
    form = Form(120.0, (4, 4), 12, (Section("intro", 0, 2), Section("A", 2, 8), Section("outro", 10, 2)))
    midi = beat_midi(12)
    midi.instruments[2].notes += [pretty_midi.Note(127, p, 4.0, 4.5) for p in (84, 85, 88, 91, 95)]  # bar 2 at 4 s
    track = track_reference(sine_render(midi, SR), form, SR)
    edit = make_loop(midi, form, sine_render, SR, EditSettings(), track=track)
    assert edit.facts["segments_tried"] == [[2, 8], [2, 4], [6, 4]]
    assert (edit.facts["start_bar"], edit.facts["bars"]) == (6, 4) and edit.audio.shape[0] == form.frames(4, SR)
    assert edit.facts["join_roughness"] <= 1.0 and edit.facts["join_roughness_in_track"] <= 1.0
    assert make_loop(midi, form, sine_render, SR, EditSettings(), bars=8, track=track).facts["bars"] == 8  # asked for


def test_a_loop_cut_without_its_tail_clicks_at_the_join():
    """The measure sees what the fold fixes: the same bars cut where they end, without the fold."""
    rendered = sine_render(bars_midi(beat_midi(12), FORM, [(2, 4)]), SR)
    m = join_measures(rendered[:FORM.frames(4, SR)], marks=beat_marks(FORM, 4, SR))
    assert m["join_step"] > 3 * m["step_p99"], m


def test_a_cutdown_is_whole_bars_then_the_ring_out_mastered_on_its_own():
    edit = make_cutdown(beat_midi(12), FORM, 15, sine_render, SR, EditSettings(target_lufs=-16.0))
    facts = edit.facts
    assert facts["bars"] == 7 and facts["segments"] == [[0, 1], [2, 4], [10, 2]]  # 7.5 bars: the tie goes down
    music = FORM.frames(7, SR)
    assert facts["music_s"] == 14.0 and facts["frames"] == edit.audio.shape[0] > music
    assert facts["ring_out_s"] == pytest.approx(RELEASE_S, abs=1e-3)
    assert facts["duration_s"] == edit.audio.shape[0] / SR
    assert abs(edit.integrated_lufs + 16) <= 0.5 and edit.true_peak_dbtp <= -1.0
    assert integrated_lufs(edit.audio, SR) == pytest.approx(edit.integrated_lufs, abs=0.01)
    assert np.abs(edit.audio[-10:]).max() < 1e-3  # the ring has died away


# --- export -----------------------------------------------------------------------------------------

def export_with_bars(out_dir, **settings):
    info = make_info(duration_s=24.0)
    base = dict(write_stems=False, write_mp3=False, cutdowns_s=(15,), loop_bars=4)
    return export_track(out_dir, info, beat_midi(12), make_mastered(24.5, 48000),
                        ExportSettings(**{**base, **settings}), form=FORM, render=sine_render)


def test_export_writes_the_loop_and_bar_cutdowns_with_their_own_loudness(tmp_path):
    files = export_with_bars(tmp_path)
    data = json.loads(files.sidecar.read_text())
    loop, cut = data["files"]["loop"], data["files"]["cutdowns"]["15"]
    assert sf.info(str(files.loop["wav"])).frames == loop["frames"] == FORM.frames(4, 48000) == 384000
    assert (loop["bars"], loop["start_bar"], loop["sample_rate"], loop["duration_s"]) == (4, 2, 48000, 8.0)
    assert sf.info(str(files.cutdowns[15]["wav"])).frames == cut["frames"]
    assert (cut["bars"], cut["nominal_s"], cut["music_s"]) == (7, 15.0, 14.0)
    assert cut["duration_s"] == pytest.approx(14.0 + cut["ring_out_s"]) and "nearest" in cut["length_rule"]
    for entry, path, version in ((loop, files.loop["wav"], "loop"), (cut, files.cutdowns[15]["wav"], "15")):
        assert abs(entry["integrated_lufs"] + 14) <= 0.5 and entry["true_peak_dbtp"] <= -1.0
        tags = WAVE(str(path)).tags
        assert str(tags["TXXX:INTEGRATED_LUFS"]) == f"{entry['integrated_lufs']:.2f}"
        assert str(tags["TXXX:VERSION"]) == version
    assert str(WAVE(str(files.loop["wav"])).tags["TIT2"]) == "Morning Light (loop)"
    csv_path, _ = build_sheet([tmp_path], tmp_path)
    rows = [line.split(",") for line in csv_path.read_text().splitlines()]
    loop_rows = [r for r in rows if "loop" in r]
    assert len(loop_rows) == 1 and any(cell.endswith("-loop.wav") for cell in loop_rows[0])
    page = build_catalogue([tmp_path], tmp_path).read_text(encoding="utf-8")
    assert f'{files.folder.name}/{files.loop["wav"].name}' in page and "4 bars WAV" in page


def test_no_loop_when_the_recipe_says_so_or_the_track_has_no_bars(tmp_path):
    assert export_with_bars(tmp_path / "off", loop=False, cutdowns_s=()).loop == {}
    plain = export_track(tmp_path / "plain", make_info(duration_s=20.0), beat_midi(10), make_mastered(20.0, 48000),
                         ExportSettings(write_stems=False, write_mp3=False, cutdowns_s=(15,)))
    data = json.loads(plain.sidecar.read_text())
    assert plain.loop == {} and data["files"]["loop"] is None
    cut = data["files"]["cutdowns"]["15"]
    assert cut["bars"] is None and cut["duration_s"] == 15.0 and "faded" in cut["length_rule"]
    assert abs(cut["integrated_lufs"] + 14) <= 0.5 and cut["true_peak_dbtp"] <= -1.0


# --- slow: FluidSynth, measured by ffmpeg ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_fluidsynth_loop_and_cutdowns_meet_the_delivery_norms(tmp_path):
    from generator.audio.render import render_midi
    from generator.audio.soundfonts import resolve_soundfont

    font = resolve_soundfont("fluidr3_gm")

    def render(midi, sample_rate):
        return render_midi(midi, font, sample_rate=sample_rate).mix

    form = Form(96.0, (4, 4), 16)  # 40 s
    midi = beat_midi(16, 96.0)
    mix = render(midi, 48000)
    mastered = type(make_mastered(0.1))(mix=mix, stems={}, sample_rate=48000)
    files = export_track(tmp_path, make_info(duration_s=40.0), midi, mastered,
                         ExportSettings(write_stems=False, cutdowns_s=(30, 15)), form=form, render=render)
    data = json.loads(files.sidecar.read_text())
    for length, paths in files.cutdowns.items():
        entry = data["files"]["cutdowns"][str(length)]
        assert entry["bars"] == {30: 12, 15: 6}[length] and entry["music_s"] == entry["bars"] * 2.5
        assert 0 < entry["ring_out_s"] <= 2.0
        for path in paths.values():
            lufs, peak = ebur128(path)
            assert abs(lufs + 14) <= 0.5 and peak <= -1.0, (path.name, lufs, peak)
    loop, _ = sf.read(str(files.loop["wav"]), dtype="float32")
    assert loop.shape[0] == form.frames(8, 48000) == 8 * 2.5 * 48000
    m = join_measures(loop, marks=beat_marks(form, 8, 48000))
    assert m["join_step"] <= m["step_p99"] and m["join_flux"] <= m["flux_p99"], m
    for path in files.loop.values():
        lufs, peak = ebur128(path)
        assert abs(lufs + 14) <= 0.5 and peak <= -1.0, (path.name, lufs, peak)


@pytest.mark.slow
def test_a_beat_time_batch_delivers_a_loop_and_bar_cutdowns(tmp_path):
    """End to end: a tiny random beat model, FluidSynth, export; the sidecar's facts match the files."""
    import torch
    import yaml

    from generator.library.pipeline import run_batch
    from generator.library.recipe import load_recipe
    from generator.model.checkpoint import save_checkpoint
    from generator.model.transformer import ModelConfig, MusicTransformer
    from generator.tokens import vocab
    from generator.tokens.encoding import encoding_named
    from test_pipeline import PERMISSIVE_LOOPS

    beat = encoding_named("beat")
    torch.manual_seed(0)
    model = MusicTransformer(dataclasses.replace(ModelConfig.tiny(), vocab_size=beat.vocab_size), beat).eval()
    with torch.no_grad():
        model.head.bias[vocab.TIME_SHIFT:vocab.END] += 4.0  # time passes
    save_checkpoint(tmp_path / "beat.pt", model, {"name": "tiny-beat"})
    recipe = {"name": "Beat Lib", "seed": 3, "model": str(tmp_path / "beat.pt"), "genres": {"pop": 1},
              "duration_s": 20, "bpm": 120, "meter": "4/4", "loops": PERMISSIVE_LOOPS,
              "outputs": {"mp3": False, "stems": False, "cutdowns_s": [15], "loop_bars": 4, "catalogue": False},
              "output": str(tmp_path / "out")}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    report = run_batch(load_recipe(tmp_path / "r.yaml"), "r.yaml")
    assert [t.status for t in report.tracks] == ["done"]
    sidecar = next((tmp_path / "out").glob("*/*.json"))
    data = json.loads(sidecar.read_text())
    loop, cut = data["files"]["loop"], data["files"]["cutdowns"]["15"]
    assert (loop["bars"], loop["frames"]) == (4, 4 * 2 * 48000)
    assert sf.info(str(sidecar.parent / loop["wav"])).frames == loop["frames"]
    assert (cut["bars"], cut["music_s"]) == (7, 14.0) and cut["segments"][-1] == [8, 2]  # ends on bars 9-10
    assert sf.info(str(sidecar.parent / cut["wav"])).frames == cut["frames"]

    # With a planned form the loop is the first A and a cut-down is the intro, A and the outro.
    recipe.update(duration_s=24, form="auto", key="G", output=str(tmp_path / "formed"))
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert [t.status for t in run_batch(load_recipe(tmp_path / "f.yaml"), "f.yaml").tracks] == ["done"]
    data = json.loads(next((tmp_path / "formed").glob("*/*.json")).read_text())
    sections = {s["name"]: (s["start_bar"], s["bars"]) for s in data["track"]["sections"]}
    assert sections == {"intro": (0, 2), "A": (2, 4), "B": (6, 4), "outro": (10, 2)}
    loop, cut = data["files"]["loop"], data["files"]["cutdowns"]["15"]
    assert (loop["start_bar"], loop["bars"]) == (2, 4)
    assert cut["segments"] == [[0, 1], [2, 4], [10, 2]]  # 7 bars: intro's first, A whole, the outro
