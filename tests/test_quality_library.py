"""bench/quality_library.py: librosa, music21 and ffmpeg judge tiny libraries whose answers are known."""

import dataclasses
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile

from generator.audio.riff import put_chunks, read_chunks

BENCH = Path(__file__).resolve().parents[1] / "bench" / "quality_library.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_library", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _click_track(path: Path, bpm: float, seconds: float = 12.0, rate: int = 22050) -> None:
    audio = np.zeros(int(seconds * rate))
    click = np.sin(2 * np.pi * 1000 * np.arange(int(0.03 * rate)) / rate) * np.exp(-np.arange(int(0.03 * rate)) / 100)
    for t in np.arange(0.0, seconds - 0.05, 60.0 / bpm):
        start = int(t * rate)
        audio[start:start + click.size] += click
    soundfile.write(str(path), 0.8 * audio, rate)


def _c_major_midi(path: Path) -> None:
    """I-IV-V-I in C, a scale on top: music21 has no doubt."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(0)
    for bar, chord in enumerate(((60, 64, 67), (60, 65, 69), (59, 62, 67), (60, 64, 67)) * 2):
        piano.notes += [pretty_midi.Note(80, p, 2.0 * bar, 2.0 * bar + 1.9) for p in chord]
    for i, p in enumerate((72, 74, 76, 77, 79, 81, 83, 84) * 2):
        piano.notes.append(pretty_midi.Note(90, p, 0.5 * i, 0.5 * i + 0.45))
    midi.instruments.append(piano)
    midi.write(str(path))


def _track(library: Path, name: str, bpm: float | None, key: str | None, click_bpm: float = 120.0) -> None:
    folder = library / name
    folder.mkdir(parents=True)
    _click_track(folder / f"{name}.wav", click_bpm)
    _c_major_midi(folder / f"{name}.mid")
    sidecar = {"schema": "gen.track", "schema_version": 1,
               "track": {"track_id": name, "title": name, "genre": "pop", "tags": [], "bpm": bpm, "key": key},
               "loudness": {}, "audio": {"duration_s": 12.0},
               "files": {"midi": f"{name}.mid", "wav": f"{name}.wav", "sidecar": f"{name}.json"}}
    (folder / f"{name}.json").write_text(json.dumps(sidecar))


def test_key_and_tempo_rules(quality):
    assert quality.parse_key("Eb major") == quality.parse_key("E- major") == (3, "major")
    assert quality.keys_agree("C major", "A minor") and quality.keys_agree("A minor", "C major")
    assert quality.keys_agree("F# minor", "F# minor") and not quality.keys_agree("C major", "C minor")
    assert quality.keys_agree("C major", None) is None and quality.key_name("B- minor") == "Bb minor"
    assert quality.tempo_agrees(121.0, 120.0) and quality.tempo_agrees(240.0, 120.0)
    assert quality.tempo_agrees(60.5, 120.0) and not quality.tempo_agrees(126.0, 120.0)
    assert quality.tempo_agrees(None, 120.0) is None


@pytest.mark.slow  # librosa's first beat_track compiles with numba: ~10 s on a busy machine
def test_a_tiny_library_is_checked_by_librosa_and_music21(quality, tmp_path, capsys):
    _track(tmp_path, "0000-right", 120.0, "C major")
    _track(tmp_path, "0001-relative", 60.0, "A minor")  # half the tempo and the relative key agree
    _track(tmp_path, "0002-wrong", 90.0, "F# major")
    (tmp_path / "manifest.json").write_text("{}")  # not a track: ignored

    assert quality.main([str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {t["track"]: t for t in report["tracks"]}
    assert set(by_name) == {"0000-right", "0001-relative", "0002-wrong"}
    assert by_name["0000-right"]["librosa_bpm"] == pytest.approx(120.0, rel=0.03)
    assert by_name["0000-right"]["music21_key"] == "C major"
    assert [by_name[n]["tempo_agrees"] for n in sorted(by_name)] == [True, True, False]
    assert [by_name[n]["key_agrees"] for n in sorted(by_name)] == [True, True, False]
    totals = report["totals"]
    assert {k: v for k, v in totals.items() if k.startswith(("tracks", "tempo", "key"))} == {
        "tracks": 3, "tempo_checked": 3, "tempo_agrees": 2, "tempo_agree_share": 2 / 3,
        "key_checked": 3, "key_agrees": 2, "key_agree_share": 2 / 3, "tracks_without_edits": 3}
    assert totals["edit_files_measured"] == 0 and totals["loop_joins_checked"] == 0  # no loop, no cut-downs:
    assert {t["edits"]["note"] for t in report["tracks"]} == {"edits not checked: no loop, no cut-downs"}  # no failure
    assert report["skipped"] == []

    assert quality.main([str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "0002-wrong" in table and "tempo agrees 2 / 3" in table and "key agrees 2 / 3" in table
    assert "3 tracks without a loop or cut-downs: not checked" in table


# --- loops and cut-downs ----------------------------------------------------------------------------

def _exported_track(library: Path, bars: bool = True) -> Path:
    """A 24 s track exported as gen does, with a 15 s cut-down: its folder. With `bars` a beat-time
    track (12 bars of 2 s) whose loop and cut-down the sine stand-in renders, else a track without
    bars: no loop, the cut-down faded."""
    from edit_fixtures import beat_midi, sine_render
    from generator.audio.edit_plan import Form
    from generator.library.export import ExportSettings, export_track
    from track_fixtures import make_info, make_mastered

    info = dataclasses.replace(make_info(title="Morning Light" if bars else "Plain", duration_s=24.0),
                               extra={"music_duration_s": 24.0})
    edits = {"form": Form(120.0, (4, 4), 12), "render": sine_render} if bars else {}
    files = export_track(library, info, beat_midi(12), make_mastered(24.5, 48000),
                         ExportSettings(write_stems=False, cutdowns_s=(15,), loop_bars=4), **edits)
    return files.folder


def _rewrite_wav(path: Path, change) -> None:
    """The WAV's audio changed, its tags (every chunk but fmt and data) kept as they were."""
    kept = [c for c in read_chunks(path.read_bytes()) if c[0] not in (b"fmt ", b"data")]
    audio, rate = soundfile.read(str(path), dtype="float32")
    soundfile.write(str(path), change(audio), rate, subtype="PCM_24")
    put_chunks(path, kept)


@pytest.mark.slow  # FluidSynth-free, but librosa, ffmpeg and MP3 encodes
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_loops_and_cutdowns_are_measured_and_tampering_is_caught(quality, tmp_path, capsys):
    good, plain = _exported_track(tmp_path), _exported_track(tmp_path, bars=False)
    bad = tmp_path / "tampered"
    shutil.copytree(good, bad)
    data = json.loads(next(bad.glob("*.json")).read_text())
    loop, cut = data["files"]["loop"], data["files"]["cutdowns"]["15"]
    _rewrite_wav(bad / loop["wav"], lambda a: a[:-2400])  # 50 ms short: a click at every join
    _rewrite_wav(bad / cut["wav"], lambda a: a * 10 ** (-3 / 20))  # 3 dB down, its tags still say -14
    cut["segments"][-1][0] -= 1  # ends a bar before the track's last
    next(bad.glob("*.json")).write_text(json.dumps(data))

    assert quality.main([str(tmp_path), "--json", "--seconds", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    edits = {t["track"]: t["edits"] for t in report["tracks"]}
    ok, tampered, faded = edits[good.name], edits["tampered"], edits[plain.name]

    assert ok["loop"]["frames"] == ok["loop"]["expected_frames"] == 4 * 2 * 48000
    assert ok["loop"]["length_ok"] and ok["loop"]["joins_ok"] and ok["loop"]["join_step_ratio"] <= 1.0
    assert ok["cutdowns"] == [{"nominal": "15", "bars": 7, "music_s": 14.0, "whole_bars": True,
                               "ends_on_cadence": True}]
    assert sorted(f["file"].rsplit("-", 1)[1] for f in ok["files"]) == ["15s.mp3", "15s.wav", "loop.mp3", "loop.wav"]
    for f in ok["files"]:
        assert f["loudness_ok"] and f["peak_ok"] and abs(f["lufs"] + 14) <= 0.5, f
        assert f["tags_ok"] and set(f["recorded_lufs"]) == ({"id3", "bext", "sidecar"} if f["file"].endswith(".wav")
                                                            else {"id3"}), f
    assert ok["missing"] == [] and ok["note"] == ""

    assert tampered["loop"]["frames"] == 4 * 2 * 48000 - 2400 and tampered["loop"]["length_ok"] is False
    assert tampered["loop"]["joins_ok"] is False and tampered["loop"]["join_step_ratio"] > 1.0
    # against the whole track (noise here, steps far larger than the sine loop's) the click is seen but
    # passes: why the loop's own percentiles stay the check, and the track's are reported beside them
    assert tampered["loop"]["track_step_ratio"] > 10 * ok["loop"]["track_step_ratio"]
    assert tampered["loop"]["joins_ok_in_track"] is True
    assert tampered["cutdowns"][0]["whole_bars"] is True and tampered["cutdowns"][0]["ends_on_cadence"] is False
    quiet = next(f for f in tampered["files"] if f["file"] == cut["wav"])
    assert quiet["lufs"] == pytest.approx(-17.0, abs=0.6) and not quiet["loudness_ok"] and quiet["peak_ok"]
    assert not quiet["tags_ok"] and quiet["tag_gap_lu"] > 2.5
    assert [f["file"] for f in tampered["files"] if not (f["loudness_ok"] and f["tags_ok"])] == [cut["wav"]]

    # Without bars: no loop and a faded cut-down, whose bars are not checked (not failed); its loudness is.
    assert faded["loop"] is None and faded["note"] == "no loop; faded cut-downs: bars not checked"
    assert faded["cutdowns"] == [{"nominal": "15", "bars": None, "music_s": None, "whole_bars": None,
                                  "ends_on_cadence": None}]
    assert len(faded["files"]) == 2 and all(f["loudness_ok"] and f["peak_ok"] and f["tags_ok"] for f in faded["files"])

    totals = report["totals"]
    counts = {k: v for k, v in totals.items() if k.endswith(("_checked", "_ok", "_measured", "_missing"))}
    assert counts == {"tempo_checked": 3, "key_checked": 3, "loop_length_checked": 2, "loop_length_ok": 1,
                      "loop_joins_checked": 2, "loop_joins_ok": 1, "loop_joins_in_track_checked": 2,
                      "loop_joins_in_track_ok": 2, "cutdown_whole_bars_checked": 2,
                      "cutdown_whole_bars_ok": 2, "cutdown_cadence_checked": 2, "cutdown_cadence_ok": 1,
                      "edit_files_measured": 10, "edit_files_missing": 0, "loudness_ok": 9, "true_peak_ok": 10,
                      "tags_ok": 9}
    assert totals["min_lufs"] == quiet["lufs"] and totals["max_true_peak_dbtp"] <= -1.0
    assert totals["max_join_step_ratio"] == tampered["loop"]["join_step_ratio"] and totals["tracks_without_edits"] == 0

    assert quality.main([str(tmp_path), "--seconds", "5"]) == 0
    table = capsys.readouterr().out
    assert "joins smooth 1 / 2" in table and "end on the cadence 1 / 2" in table
    assert "tags within 0.1 LU 9 / 10" in table and "faded cut-downs: bars not checked" in table
