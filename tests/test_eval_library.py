"""`gen eval --library`: a built library's MIDI files read back and measured as gen eval measures samples."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pretty_midi
import pytest

from generator.eval.library import library_sidecars, library_track
from generator.eval.musicality import NAMES as MUSICALITY_NAMES
from generator.tokens import vocab
from generator.tokens.encoding import BEAT, DEFAULT
from paths import CI_ENV
from test_eval import sber_pieces, write_beat_shards  # noqa: F401  (sber_pieces: the fixture)

ROOT = Path(__file__).resolve().parent.parent
GENRES = {"pop": 2, "jazz": 1, "calm": 1}
LENGTH_S = 12


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """A MIDI-only beat-time library as `gen batch` builds it: planned form and harmony, moved to G."""
    import generator.audio.render as render
    import generator.audio.soundfonts as soundfonts
    from generator.library.pipeline import run_batch
    from generator.library.recipe import load_recipe
    from generator.model.checkpoint import save_checkpoint
    from test_beat import _tiny_beat_model
    from test_pipeline import MIDI_ONLY, PERMISSIVE_LOOPS

    root = tmp_path_factory.mktemp("library")
    checkpoint = root / "tiny-beat.pt"
    save_checkpoint(checkpoint, _tiny_beat_model(3, 3.0, up_to_steps=24), {"name": "tiny-beat"})  # 7-170 notes a track
    recipe = root / "recipe.yaml"
    recipe.write_text(json.dumps({"name": "Measured", "seed": 2, "model": str(checkpoint), "genres": GENRES,
                                  "duration_s": LENGTH_S, "form": "auto", "key": "G", "loops": PERMISSIVE_LOOPS,
                                  "outputs": MIDI_ONLY}))

    def refuse(*args, **kwargs):
        raise AssertionError("a MIDI-only batch rendered or looked up a SoundFont")

    with pytest.MonkeyPatch.context() as patch:  # as test_pipeline's no_audio_tools, for the whole module
        patch.setitem(sys.modules, "fluidsynth", None)
        patch.setattr(render, "render_midi", refuse)
        patch.setattr(soundfonts, "resolve_soundfont", refuse)
        report = run_batch(load_recipe(recipe), "recipe.yaml", out_dir=root / "out")
    assert [t.status for t in report.tracks] == ["done"] * sum(GENRES.values())
    return root / "out"


@pytest.fixture(scope="module")
def beat_data(tmp_path_factory, sber_pieces) -> Path:  # noqa: F811
    """Beat-time shards of 20 s pieces cut from the four Sber files."""
    return write_beat_shards(tmp_path_factory.mktemp("data"), sber_pieces, train=slice(0, 4), test=slice(4, 7))


@pytest.mark.parametrize("encoding,tolerance_s", [(BEAT, 0.002), (DEFAULT, 0.006)])
def test_library_midi_notes_come_back_at_their_pitches_and_onsets(library, encoding, tolerance_s):
    """Read in either encoding, a track plays the MIDI file's notes: beat time on its grid at the
    file's tempo (the sidecar's BPM), time shifts on their 10 ms grid."""
    sidecars = library_sidecars(library)
    assert len(sidecars) == sum(GENRES.values())
    for data, path in sidecars:
        track = library_track(data, path, encoding)
        pm = pretty_midi.PrettyMIDI(str(path.parent / data["files"]["midi"]))
        written = sorted((n.start, n.pitch) for inst in pm.instruments for n in inst.notes)
        read = sorted((n.start_s, n.pitch) for n in track.notes())
        assert written and [p for _, p in read] == [p for _, p in written]
        assert max(abs(a - b) for (a, _), (b, _) in zip(read, written)) <= tolerance_s
        assert track.genre == data["track"]["genre"] and track.seed == data["track"]["seed"]
        assert track.bpm == (data["track"]["bpm"] if encoding.has_bars else None)
        assert track.target_s == LENGTH_S
        assert track.seconds() == data["track"]["extra"]["music_duration_s"] >= max(s for s, _ in written)
        notes, length_s = track.measured(5.0)  # the first 5 s, as a real excerpt is cut
        assert length_s == 5.0 and notes and all(n.start_s < 5.0 and n.end_s <= 5.0 for n in notes)
        assert len(notes) == sum(1 for s, _ in read if s < 5.0)


def test_gen_eval_measures_a_built_library_against_real_pieces(library, beat_data, tmp_path):
    from typer.testing import CliRunner

    from cli import app

    sidecars = {data["track"]["track_id"]: data["track"] for data, _ in library_sidecars(library)}
    result = CliRunner().invoke(app, [
        "eval", "--library", str(library), "--data", str(beat_data), "--seconds", "8",
        "--reference-per-genre", "4", "--json", str(tmp_path / "lib.json"), "--markdown", str(tmp_path / "lib.md"),
        "--per-genre", "9", "--genres", "classic", "--top-k", "5"])  # sampling options: ignored
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "lib.json").read_text())
    meta = report["meta"]
    assert (meta["library"], meta["sampled"], meta["checkpoint"], meta["made_by"]) == \
        (str(library), False, None, ["tiny-beat"])
    assert meta["tracks_per_genre"] == {g: GENRES[g] for g in vocab.GENRES if g in GENRES}
    assert Counter(t["genre"] for t in report["tracks"]) == Counter(GENRES)
    assert report["summary"]["kept"] == report["summary"]["tracks"] == sum(GENRES.values())
    assert report["settings"]["genres"] == ["jazz", "calm", "pop"] and report["settings"]["seconds"] == 8
    confusion = report["genre_generated"]["matrix"]
    assert [sum(row) for row in confusion] == [GENRES.get(g, 0) for g in vocab.GENRES]
    assert report["nll"] == {} and report["unigram_nll"] == {}
    assert {(m["genre"], m["name"]) for m in report["musicality"]} == {
        (g, n) for g in GENRES for n in MUSICALITY_NAMES}
    assert all(m["real_n"] > 0 for m in report["musicality"] if m["name"] == "chord_fit")
    music_s = sorted(t["extra"]["music_duration_s"] for t in sidecars.values())
    assert sorted(t["actual_s"] for t in report["tracks"]) == pytest.approx(music_s)  # the whole track
    assert all(t["target_s"] == LENGTH_S and t["duration_error_pct"] < 100 * vocab.BAR_FIT
               for t in report["tracks"])
    assert all(t["released"] and t["within_track"] for t in report["tracks"])
    markdown = (tmp_path / "lib.md").read_text()
    assert f"of library `{library}`" in markdown and "no held-out NLL" in markdown
    assert "checkpoint" not in markdown and "Held-out NLL" not in markdown
    assert "| genre accuracy, library |" in markdown and "### Genre classifier on library tracks" in markdown
    assert f"library {library}" in " ".join(result.output.split()) and "held-out NLL" not in result.output


def _gen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env=CI_ENV, timeout=120)


def _error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    return line


def test_gen_eval_library_refuses_a_folder_without_sidecars_and_a_checkpoint_beside_it(tmp_path):
    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "other.json").write_text("{}")  # a JSON file that is not a track sidecar
    assert "no track sidecars" in _error_line(_gen("eval", "--library", str(empty), "--quiet"))
    assert "no such folder" in _error_line(_gen("eval", "--library", str(tmp_path / "missing"), "--quiet"))
    both = _error_line(_gen("eval", "--library", str(empty), "--checkpoint", "models/gen-small.pt"))
    assert "--library and --checkpoint" in both


def test_a_beat_reading_plays_at_the_files_tempo_not_an_estimated_bpm(tmp_path):
    """A time-shift model's track has an estimated BPM in its sidecar and its MIDI file at 120 BPM:
    read as beat time, it plays at the file's tempo, where its notes are."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(80, 60 + i, 0.25 * i, 0.25 * i + 0.2) for i in range(16)]
    pm.instruments.append(piano)
    pm.write(str(tmp_path / "t.mid"))
    data = {"track": {"genre": "ambient", "seed": 5, "bpm": 87.3,
                      "extra": {"target_duration_s": 4.0, "music_duration_s": 4.0, "rejections": ["seed 5: x: y"]}},
            "files": {"midi": "t.mid"}}
    track = library_track(data, tmp_path / "t.json", BEAT)
    assert (track.genre, track.bpm, track.rejections) == ("calm", 120.0, ("x: y",))
    assert [(n.pitch, n.start_s) for n in track.notes()] == [(60 + i, pytest.approx(0.25 * i)) for i in range(16)]
    assert library_track({**data, "files": {"midi": None}}, tmp_path / "t.json", BEAT) is None
