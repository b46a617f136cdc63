"""bench/quality_library.py: librosa and music21 judge a tiny library whose answers are known."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile

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
    assert report["totals"] == {"tracks": 3, "tempo_checked": 3, "tempo_agrees": 2, "tempo_agree_share": 2 / 3,
                                "key_checked": 3, "key_agrees": 2, "key_agree_share": 2 / 3}
    assert report["skipped"] == []

    assert quality.main([str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "0002-wrong" in table and "tempo agrees 2 / 3" in table and "key agrees 2 / 3" in table
