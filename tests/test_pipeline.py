"""End to end: recipe -> files, resume after SIGKILL, the lock, shards, hostile titles."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import yaml

from html_page import parse
from paths import CI_ENV

ROOT = Path(__file__).resolve().parent.parent

PERMISSIVE_LOOPS = {
    "max_attempts": 2,
    "thresholds": {"min_notes": 1, "min_notes_per_s": 0.0, "max_note_s": 1000.0, "max_silence_s": 1000.0,
                   "max_glued_fraction": 1.0, "max_hammer_share": 1.0, "max_phrase_share": 1.0},
}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    import torch

    from generator.model.checkpoint import save_checkpoint
    from generator.model.transformer import ModelConfig, MusicTransformer

    torch.manual_seed(0)
    model = MusicTransformer(ModelConfig.tiny())
    with torch.no_grad():  # lean towards short time shifts and notes so tracks fill quickly
        bias = model.head.bias
        bias.zero_()
        bias[288:300] += 3.0  # TIME_SHIFT 10..120 ms
        bias[48:72] += 3.5  # NOTE_ON, middle register
        bias[176:200] += 3.0  # their NOTE_OFFs
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, {"name": "tiny-test"})
    return path


def write_recipe(folder: Path, checkpoint: Path, **overrides) -> Path:
    recipe = {
        "name": "Test Lib",
        "seed": 7,
        "model": str(checkpoint),
        "genres": {"jazz": 2, "calm": 1},
        "duration_s": [4, 6],
        "sampling": {"temperature": [0.9, 1.0], "top_k": 40},
        "loops": PERMISSIVE_LOOPS,
        "outputs": {"mp3": False, "cutdowns_s": [2], "catalogue": True},
        "output": str(folder / "out"),
    }
    recipe.update(overrides)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def gen(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                            cwd=ROOT, env=CI_ENV)
    if check and result.returncode != 0:
        raise AssertionError(f"gen {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def midi_bytes(out: Path) -> dict[str, bytes]:
    manifest = json.loads((out / "manifest.json").read_text())
    found = {}
    for track_id, record in manifest["tracks"].items():
        (midi,) = (out / record["folder"]).glob("*.mid")
        found[track_id] = midi.read_bytes()
    return found


@pytest.mark.slow
def test_batch_writes_every_file_and_the_catalogue(tmp_path, tiny_checkpoint):
    recipe = write_recipe(tmp_path, tiny_checkpoint)
    result = gen("batch", str(recipe), "--json")
    report = json.loads(result.stdout)
    assert [t["status"] for t in report["tracks"]] == ["done"] * 3
    out = tmp_path / "out"
    assert (out / "index.html").exists()
    for track in report["tracks"]:
        folder = out / track["folder"]
        assert list(folder.glob("*.mid")) and list(folder.glob("*.wav")) and list(folder.glob("*.json"))
    # the deliverables name the recipe file, not the folders of the machine that built them
    assert {s["track"]["recipe"] for s in sidecars(out).values()} == {"recipe.yaml"}
    # a second run finds everything done and skips it
    again = json.loads(gen("batch", str(recipe), "--json").stdout)
    assert [t["status"] for t in again["tracks"]] == ["skipped"] * 3


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_midi_bytes(tmp_path, tiny_checkpoint):
    (tmp_path / "a").mkdir()
    whole = write_recipe(tmp_path / "a", tiny_checkpoint)
    gen("batch", str(whole), "--quiet")
    expected = midi_bytes(tmp_path / "a" / "out")

    (tmp_path / "b").mkdir()
    killed = write_recipe(tmp_path / "b", tiny_checkpoint)
    out = tmp_path / "b" / "out"
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "batch", str(killed), "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill as soon as the first track is in the manifest
        manifest = out / "manifest.json"
        if manifest.exists() and json.loads(manifest.read_text())["tracks"]:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    gen("batch", str(killed), "--quiet")
    assert midi_bytes(out) == expected
    assert not list(out.glob(".partial-*"))


@pytest.mark.slow
def test_second_run_on_a_locked_folder_refuses(tmp_path, tiny_checkpoint):
    from generator.library.lock import OutputLock

    recipe = write_recipe(tmp_path, tiny_checkpoint)
    with OutputLock(tmp_path / "out"):
        result = gen("batch", str(recipe), "--quiet", check=False)
    assert result.returncode == 3
    assert "another gen batch" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_two_shards_build_the_same_library_as_one_run(tmp_path, tiny_checkpoint):
    recipe = write_recipe(tmp_path, tiny_checkpoint, genres={"pop": 10}, duration_s=3,
                          outputs={"mp3": False, "stems": False, "cutdowns_s": [], "catalogue": False})
    whole, s1, s2 = tmp_path / "whole", tmp_path / "s1", tmp_path / "s2"
    gen("batch", str(recipe), "--quiet", "--out", str(whole))
    gen("batch", str(recipe), "--quiet", "--out", str(s1), "--shard", "1/2")
    gen("batch", str(recipe), "--quiet", "--out", str(s2), "--shard", "2/2")
    merged = {**midi_bytes(s1), **midi_bytes(s2)}
    assert set(midi_bytes(s1)).isdisjoint(midi_bytes(s2))
    assert merged == midi_bytes(whole)
    gen("catalogue", str(s1), str(s2), "--out", str(tmp_path / "merged"))
    cards = parse(tmp_path / "merged" / "index.html").cards
    assert len(cards) == 10 and sorted(card["data-track-id"] for card in cards) == sorted(midi_bytes(whole))


@pytest.mark.slow
def test_hostile_title_cannot_escape_or_inject(tmp_path, tiny_checkpoint):
    recipe = write_recipe(tmp_path, tiny_checkpoint, name="../../<script>alert(1)</script>", genres={"jazz": 1},
                          title_template="{name} ../x {n}")
    gen("batch", str(recipe), "--quiet")
    out = tmp_path / "out"
    for path in tmp_path.rglob("*"):
        assert path.resolve().is_relative_to(tmp_path.resolve())
        assert "<" not in path.name and " " not in path.name
    html = (out / "index.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_bad_recipe_is_one_line_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nseed: 1\ngenres: {jazz: 0}\ncount: -1\n", encoding="utf-8")
    result = gen("batch", str(path), check=False)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: ")
    assert not any(tmp_path.glob("output*")) and not (ROOT / "output" / "x").exists()


MIDI_ONLY = {"wav": False, "mp3": False, "stems": False, "cutdowns_s": [], "catalogue": True}


@pytest.fixture
def no_audio_tools(monkeypatch):
    """FluidSynth cannot be imported, no binary is on PATH, and rendering or opening a SoundFont fails."""
    import generator.audio.render as render
    import generator.audio.soundfonts as soundfonts

    def refuse(*args, **kwargs):
        raise AssertionError("a MIDI-only batch rendered or looked up a SoundFont")

    monkeypatch.setitem(sys.modules, "fluidsynth", None)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(render, "render_midi", refuse)
    monkeypatch.setattr(soundfonts, "resolve_soundfont", refuse)


def midi_only_batch(tmp_path: Path, checkpoint: Path, out: str, **options):
    from generator.library.pipeline import run_batch
    from generator.library.recipe import load_recipe

    recipe = load_recipe(write_recipe(tmp_path, checkpoint, genres={"jazz": 6, "calm": 4}, duration_s=2,
                                      outputs=MIDI_ONLY), check_files=False)
    return run_batch(recipe, "recipe.yaml", out_dir=tmp_path / out, **options)


def test_midi_only_batch_delivers_midi_sidecars_and_catalogue_without_audio_tools(tmp_path, tiny_checkpoint,
                                                                                  no_audio_tools):
    import mido
    import pretty_midi

    from generator.library.sidecar import load_sidecar

    report = midi_only_batch(tmp_path, tiny_checkpoint, "out")
    out = tmp_path / "out"
    assert [t.status for t in report.tracks] == ["done"] * 10
    assert report.stage_s["render"] == report.stage_s["master"] == 0.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["tracks"]) == sorted(t.track_id for t in report.tracks)
    for track_id, record in manifest["tracks"].items():
        folder = out / record["folder"]
        (midi,) = folder.glob("*.mid")
        assert len(mido.MidiFile(midi).tracks) > 0
        assert sum(len(i.notes) for i in pretty_midi.PrettyMIDI(str(midi)).instruments) > 0
        assert sorted(p.name for p in folder.iterdir()) == sorted([midi.name, midi.with_suffix(".json").name])
        sidecar = load_sidecar(out / record["sidecar"])
        assert sidecar["track"]["track_id"] == track_id
        assert (sidecar["files"]["wav"], sidecar["files"]["mp3"], sidecar["files"]["stems"]) == (None, None, {})
        assert sidecar["loudness"]["integrated_lufs"] is None and sidecar["audio"]["frames"] is None
        assert sidecar["audio"]["duration_s"] == pytest.approx(record["duration_s"], abs=1e-3)
        assert record["duration_s"] > 0
        assert sidecar["piano_roll"]["notes"]
        assert record["integrated_lufs"] is None
    page = parse(report.catalogue)
    assert sorted(card["data-track-id"] for card in page.cards) == sorted(manifest["tracks"])
    assert not any(url.endswith((".wav", ".mp3")) for url in page.urls)
    assert "MIDI only" in report.catalogue.read_text()

    before = midi_bytes(out)
    again = midi_only_batch(tmp_path, tiny_checkpoint, "out")
    assert [t.status for t in again.tracks] == ["skipped"] * 10
    assert midi_bytes(out) == before


def test_midi_only_track_is_the_same_whatever_the_run_makes(tmp_path, tiny_checkpoint, no_audio_tools):
    midi_only_batch(tmp_path, tiny_checkpoint, "whole")
    whole = midi_bytes(tmp_path / "whole")
    first = midi_only_batch(tmp_path, tiny_checkpoint, "first", limit=1)
    second_group = midi_only_batch(tmp_path, tiny_checkpoint, "shard", shard="2/2")  # tracks 9 and 10
    assert [t.track_id for t in second_group.tracks] == sorted(whole)[8:]
    assert midi_bytes(tmp_path / "first") == {first.tracks[0].track_id: whole[first.tracks[0].track_id]}
    assert midi_bytes(tmp_path / "shard") == {k: whole[k] for k in sorted(whole)[8:]}


def test_a_failed_write_in_one_finishing_thread_stops_the_run_and_keeps_what_is_finished(tmp_path, tiny_checkpoint,
                                                                                         no_audio_tools, monkeypatch):
    import errno

    from generator.errors import GeneratorError
    from generator.library import pipeline

    real_export, calls = pipeline._export, []

    def export_then_fill_the_disk(ctx, plan, *args):
        calls.append(plan.track_id)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out"))
        return real_export(ctx, plan, *args)

    monkeypatch.setattr(pipeline, "_export", export_then_fill_the_disk)
    with pytest.raises(GeneratorError, match="no space left on device"):
        midi_only_batch(tmp_path, tiny_checkpoint, "out", jobs=2)
    out = tmp_path / "out"
    assert len(calls) <= 4  # the other thread stopped: the queued tracks never started
    finished = json.loads((out / "manifest.json").read_text())["tracks"]
    assert len(finished) == len(calls) - 1  # a track already writing its files finished them
    assert all(list((out / r["folder"]).glob("*.mid")) for r in finished.values())
    assert not list(out.glob(".partial-*")) and not (out / ".gen.lock").exists()

    monkeypatch.setattr(pipeline, "_export", real_export)
    again = midi_only_batch(tmp_path, tiny_checkpoint, "out", jobs=2)
    assert sorted(t.status for t in again.tracks).count("skipped") == len(finished)
    midi_only_batch(tmp_path, tiny_checkpoint, "one_thread", jobs=1)
    assert midi_bytes(out) == midi_bytes(tmp_path / "one_thread")


def test_a_failure_that_stops_the_run_before_the_next_group_samples_is_the_error_raised(tmp_path, tiny_checkpoint,
                                                                                        no_audio_tools, monkeypatch):
    import errno
    import threading

    from generator.errors import GeneratorError
    from generator.library import pipeline

    second_group_asked = threading.Event()

    def fill_the_disk(*args):  # fails once the main thread has checked the first group's tracks
        assert second_group_asked.wait(30)
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out"))

    real_stage, samples = pipeline._Ledger.stage, []

    def stage(self, name, track_id):
        if name == "sample":
            samples.append(track_id)
            if len(samples) == 2:  # the first group's failure lands before the second group starts
                second_group_asked.set()
                assert self.stop.wait(30)
        return real_stage(self, name, track_id)

    monkeypatch.setattr(pipeline, "_export", fill_the_disk)
    monkeypatch.setattr(pipeline._Ledger, "stage", stage)
    with pytest.raises(GeneratorError, match="no space left on device"):
        midi_only_batch(tmp_path, tiny_checkpoint, "out", jobs=2)
    assert len(samples) == 2 and not (tmp_path / "out" / ".gen.lock").exists()


@pytest.mark.slow
def test_tracks_finished_side_by_side_are_the_files_one_thread_makes(tmp_path, tiny_checkpoint):
    from generator.library.pipeline import run_batch
    from generator.library.recipe import load_recipe

    recipe = load_recipe(write_recipe(tmp_path, tiny_checkpoint, genres={"jazz": 3, "calm": 1},
                                      outputs={"mp3": True, "stems": True, "cutdowns_s": [2], "catalogue": False}))
    files = {}
    for jobs in (1, 3):
        report = run_batch(recipe, "recipe.yaml", out_dir=tmp_path / f"jobs{jobs}", jobs=jobs)
        assert [t.status for t in report.tracks] == ["done"] * 4
        files[jobs] = {k: (v["checksums"], v["loudness"]) for k, v in sidecars(tmp_path / f"jobs{jobs}").items()}
    assert files[1] == files[3] and len(files[1]) == 4


# --- bpm, meter, grid, key and humanize --------------------------------------------------------------

def style_batch(tmp_path: Path, checkpoint: Path, out: str, outputs: dict | None = None, **overrides):
    from generator.library.pipeline import run_batch
    from generator.library.recipe import load_recipe

    settings = {"genres": {"jazz": 2}, "duration_s": 3, "outputs": outputs or MIDI_ONLY, **overrides}
    recipe = load_recipe(write_recipe(tmp_path, checkpoint, **settings), check_files=False)
    return run_batch(recipe, "recipe.yaml", out_dir=tmp_path / out)


def sidecars(out: Path) -> dict[str, dict]:
    from generator.library.sidecar import load_sidecar

    manifest = json.loads((out / "manifest.json").read_text())
    return {track_id: load_sidecar(out / record["sidecar"]) for track_id, record in manifest["tracks"].items()}


def midi_notes(out: Path) -> dict[str, list[tuple[str, int, float, float]]]:
    import pretty_midi

    manifest = json.loads((out / "manifest.json").read_text())
    found = {}
    for track_id, record in manifest["tracks"].items():
        (path,) = (out / record["folder"]).glob("*.mid")
        instruments = pretty_midi.PrettyMIDI(str(path)).instruments
        found[track_id] = [(inst.name, n.pitch, n.start, n.end) for inst in instruments for n in inst.notes]
    return found


def test_beat_keys_with_a_model_without_bars_stop_before_composing(tmp_path, tiny_checkpoint):
    recipe = write_recipe(tmp_path, tiny_checkpoint, genres={"jazz": 1}, outputs=MIDI_ONLY,
                          genre_settings={"jazz": {"meter": "3/4"}}, bpm=[90, 100])
    result = gen("batch", str(recipe), "--quiet", check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"Error: {recipe}: bpm/meter/grid/form/harmony need a beat-time model")
    assert "bpm, genre_settings.jazz.meter" in result.stderr and "encoding is 'default'" in result.stderr
    assert "fix: " in result.stderr
    assert not list((tmp_path / "out").rglob("*.mid"))


def test_a_requested_key_moves_pitched_notes_and_the_label_is_the_outputs_key(tmp_path, tiny_checkpoint,
                                                                               no_audio_tools):
    from generator.library.keys import parse_key

    style_batch(tmp_path, tiny_checkpoint, "plain")
    style_batch(tmp_path, tiny_checkpoint, "in_d", key="D")
    plain, moved = midi_notes(tmp_path / "plain"), midi_notes(tmp_path / "in_d")
    for track_id, sidecar in sidecars(tmp_path / "in_d").items():
        planned = sidecar["track"]["extra"]["planned"]
        assert planned["requested_key"] == "D major"
        semitones = planned["transposed_semitones"]
        assert -6 <= semitones <= 5
        assert parse_key(sidecar["track"]["key"]) in (parse_key("D"), parse_key("Bm"))  # the piece keeps its mode
        assert moved[track_id] == [(name, pitch + (0 if name == "drums" else semitones), start, end)
                                   for name, pitch, start, end in plain[track_id]]
    assert all("planned" not in s["track"]["extra"] for s in sidecars(tmp_path / "plain").values())


def test_planned_bpm_meter_and_grid_reach_the_sampler_and_bpm_is_the_label(tmp_path, tiny_checkpoint,
                                                                           no_audio_tools, monkeypatch):
    import generator.library.style as style
    import generator.sampling.rejection as rejection

    asked = []
    compose_many = rejection.compose_many

    def beat_free(model, requests, **options):  # the tiny model has no bars: record, then sample without
        asked.extend(requests)
        plain = [dataclasses.replace(r, bpm=None, meter=None, grid=None) for r in requests]
        return compose_many(model, plain, **options)

    monkeypatch.setattr(style, "has_bars", lambda model: True)
    monkeypatch.setattr(rejection, "compose_many", beat_free)
    report = style_batch(tmp_path, tiny_checkpoint, "out", bpm=96, meter=["3/4"],
                         genre_settings={"jazz": {"grid": [3]}})
    assert [(r.bpm, r.meter, r.grid) for r in asked] == [(96.0, (3, 4), (3,))] * 2
    for sidecar in sidecars(tmp_path / "out").values():
        assert sidecar["track"]["bpm"] == 96.0
        assert sidecar["track"]["extra"]["planned"] == {"bpm": 96.0, "meter": "3/4", "grid": [3]}
    shown = re.findall(r'<span class="bpm">([^<]*)</span>', report.catalogue.read_text(encoding="utf-8"))
    assert shown == ["96 BPM"] * 2


def test_humanize_changes_the_notes_the_synth_plays_never_the_midi_file(tmp_path, tiny_checkpoint, monkeypatch):
    import numpy as np

    import generator.audio.render as render
    import generator.audio.soundfonts as soundfonts

    played = []

    def fake_render(midi, soundfont, **options):  # render_midi's keyword options (sample_rate)
        played.append([(n.pitch, n.start, n.end, n.velocity) for inst in midi.instruments for n in inst.notes])
        t = np.arange(48000 * 3) / 48000
        mix = np.stack([0.3 * np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32)  # (N, 2)
        return render.Rendered(mix, {"piano": mix}, 48000)

    monkeypatch.setattr(render, "render_midi", fake_render)
    monkeypatch.setattr(soundfonts, "resolve_soundfont", lambda name: types.SimpleNamespace(path=str(tiny_checkpoint)))
    wav_only = {"wav": True, "mp3": False, "stems": False, "cutdowns_s": [], "catalogue": False}
    for out, humanize in (("plain", False), ("human", True), ("again", True)):
        style_batch(tmp_path, tiny_checkpoint, out, outputs=wav_only, genres={"jazz": 1}, humanize=humanize)
    plain, human, again = played
    assert human == again != plain  # seeded from the track: a re-run renders the same audio
    assert [n[0] for n in human] == [n[0] for n in plain]
    assert all(abs(h[1] - p[1]) <= 0.020 + 1e-9 and abs(h[3] - p[3]) <= 6 for h, p in zip(human, plain))
    assert midi_bytes(tmp_path / "human") == midi_bytes(tmp_path / "plain")  # the MIDI file keeps the composed timing
    (sidecar,) = sidecars(tmp_path / "human").values()
    assert sidecar["track"]["extra"]["planned"] == {"humanize": True}
