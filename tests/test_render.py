"""SoundFont resolution (fast) and one-pass FluidSynth rendering with stems (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from generator.audio.render import MAX_STEMS, _trim, plan_stems, render_midi, synthesize
from generator.audio.soundfonts import REGISTRY_PATH, load_registry, resolve_soundfont
from generator.errors import SoundFontError

SR = 48000


def tiny_midi(seconds: float = 4.0) -> pretty_midi.PrettyMIDI:
    """Piano chords, a bass line and a drum beat at 120 BPM, with a pedal and a pitch bend."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(0, name="piano")
    bass = pretty_midi.Instrument(33, name="bass")
    drums = pretty_midi.Instrument(0, is_drum=True, name="drums")
    for bar in range(int(seconds / 2)):
        t = bar * 2.0
        piano.notes += [pretty_midi.Note(80, p, t, t + 1.9) for p in (60, 64, 67)]
        bass.notes += [pretty_midi.Note(90, 36 + 7 * (k % 2), t + k * 0.5, t + k * 0.5 + 0.45) for k in range(4)]
        drums.notes += [pretty_midi.Note(100, 36 if k % 2 == 0 else 38, t + k * 0.5, t + k * 0.5 + 0.1)
                        for k in range(4)]
        drums.notes += [pretty_midi.Note(70, 42, t + k * 0.25, t + k * 0.25 + 0.05) for k in range(8)]
    piano.control_changes += [pretty_midi.ControlChange(64, 127, 0.0), pretty_midi.ControlChange(64, 0, 1.95)]
    bass.pitch_bends += [pretty_midi.PitchBend(1024, 0.3), pretty_midi.PitchBend(0, 0.6)]
    midi.instruments += [piano, bass, drums]
    return midi


def residual_db(parts: np.ndarray, whole: np.ndarray) -> float:
    """Energy of (parts - whole) relative to whole, in dB."""
    err = np.sqrt(np.mean((parts.astype(np.float64) - whole) ** 2))
    return float(20 * np.log10(max(err, 1e-30) / np.sqrt(np.mean(whole.astype(np.float64) ** 2))))


# --- fast: SoundFont registry and stem planning ------------------------------------------------

def write_registry(folder: Path, font_path: str) -> Path:
    registry = folder / "registry.yaml"
    registry.write_text(
        "default: myfont\nfonts:\n  myfont:\n"
        f"    paths: [{font_path}]\n    licence: MIT\n    commercial_ok: true\n"
        "    install: apt-get install my-font-package\n", encoding="utf-8")
    return registry


def fake_sf2(path: Path) -> Path:
    path.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    return path


def test_registry_lists_licences_and_timgm_is_not_for_sale():
    default, entries = load_registry(REGISTRY_PATH)
    assert default == "fluidr3_gm"
    assert entries["fluidr3_gm"].licence == "MIT" and entries["fluidr3_gm"].commercial_ok
    assert entries["musescore_general"].commercial_ok
    assert entries["timgm6mb"].licence.startswith("GPL") and not entries["timgm6mb"].commercial_ok


def test_default_soundfont_is_fluidr3_gm():
    font = resolve_soundfont(None)
    assert font.name == "fluidr3_gm"
    assert font.path == Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    assert font.licence == "MIT" and font.commercial_ok


def test_known_font_reached_by_path_keeps_its_licence():
    font = resolve_soundfont("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    assert (font.name, font.licence, font.commercial_ok) == ("fluidr3_gm", "MIT", True)


def test_missing_registered_font_names_the_install_command(tmp_path):
    registry = write_registry(tmp_path, str(tmp_path / "absent.sf2"))
    with pytest.raises(SoundFontError, match="apt-get install my-font-package") as err:
        resolve_soundfont("myfont", registry_path=registry)
    assert "absent.sf2" in str(err.value) and "\n" not in str(err.value)


def test_missing_font_path_says_where_to_drop_a_font(tmp_path):
    registry = write_registry(tmp_path, str(fake_sf2(tmp_path / "my.sf2")))
    with pytest.raises(SoundFontError, match=r"not found.*drop the font in"):
        resolve_soundfont(str(tmp_path / "nope.sf2"), registry_path=registry)


def test_unknown_name_lists_the_known_ones(tmp_path):
    registry = write_registry(tmp_path, str(fake_sf2(tmp_path / "my.sf2")))
    with pytest.raises(SoundFontError, match=r"unknown SoundFont 'grand'.*myfont"):
        resolve_soundfont("grand", registry_path=registry)


def test_file_that_is_not_a_soundfont_is_refused(tmp_path):
    registry = write_registry(tmp_path, str(fake_sf2(tmp_path / "my.sf2")))
    bad = tmp_path / "song.sf2"
    bad.write_bytes(b"MThd\x00\x00\x00\x06")
    with pytest.raises(SoundFontError, match="not a SoundFont"):
        resolve_soundfont(str(bad), registry_path=registry)


def test_dropped_font_is_found_by_name_with_unknown_licence(tmp_path):
    registry = write_registry(tmp_path, str(fake_sf2(tmp_path / "my.sf2")))
    fake_sf2(tmp_path / "strings.sf3")
    font = resolve_soundfont("strings", registry_path=registry)
    assert font.path == (tmp_path / "strings.sf3").resolve()
    assert font.licence == "unknown" and not font.commercial_ok


def test_one_stem_per_instrument_with_unique_names():
    insts = [pretty_midi.Instrument(0, name="piano"), pretty_midi.Instrument(1, name="piano"),
             pretty_midi.Instrument(0, is_drum=True), pretty_midi.Instrument(40)]
    names, stem_of = plan_stems(insts)
    assert names == ["piano", "piano_2", "drums", "violin"]
    assert stem_of == [0, 1, 2, 3]


def test_many_instruments_merge_by_family():
    insts = [pretty_midi.Instrument(p, name=f"i{p}") for p in (0, 1, 2, 3, 24, 25, 26, 27, 32, 33, 40, 41,
                                                                 42, 56, 57, 64, 65, 73)]
    insts += [pretty_midi.Instrument(0, is_drum=True, name="kick"), pretty_midi.Instrument(0, is_drum=True)]
    names, stem_of = plan_stems(insts)
    assert len(names) <= MAX_STEMS and len(set(names)) == len(names)
    assert {"drums", "piano", "guitar", "bass", "strings", "brass", "reed", "pipe"} == set(names)
    assert names[stem_of[-1]] == names[stem_of[-2]] == "drums"
    assert names[stem_of[4]] == names[stem_of[7]] == "guitar"


def test_all_sixteen_families_keep_at_most_sixteen_stems():
    insts = [pretty_midi.Instrument(8 * f + k, name=f"f{f}k{k}") for f in range(16) for k in range(2)]
    insts.append(pretty_midi.Instrument(0, is_drum=True))
    names, stem_of = plan_stems(insts)
    assert len(names) == MAX_STEMS and "other" in names and "drums" in names
    assert sorted(set(stem_of)) == list(range(MAX_STEMS))


# --- slow: FluidSynth ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered():
    return render_midi(tiny_midi(), resolve_soundfont("fluidr3_gm"), sample_rate=SR)


@pytest.mark.slow
def test_tiny_midi_renders_stereo_48k_with_a_stem_per_role(rendered):
    assert rendered.sample_rate == SR
    assert rendered.mix.dtype == np.float32 and rendered.mix.ndim == 2 and rendered.mix.shape[1] == 2
    assert list(rendered.stems) == ["piano", "bass", "drums"]
    for name, stem in rendered.stems.items():
        assert stem.shape == rendered.mix.shape and stem.dtype == np.float32
        assert np.sqrt(np.mean(stem.astype(np.float64) ** 2)) > 1e-3, name
    # 4 s of music + up to 2 s of tail, trailing silence trimmed
    assert 4.0 <= rendered.duration_s <= 6.0
    assert not np.allclose(rendered.mix[:, 0], rendered.mix[:, 1])  # real stereo (pan, reverb)


@pytest.mark.slow
def test_stems_sum_to_the_mix(rendered):
    assert residual_db(sum(rendered.stems.values()), rendered.mix) <= -60


@pytest.mark.slow
def test_stems_sum_to_a_single_output_render():
    """The wet stems add up to what FluidSynth renders with everything in one output."""
    insts = tiny_midi().instruments
    font = resolve_soundfont(None)
    split = synthesize(insts, [0, 1, 2], 3, font, SR, 6.0)
    whole = synthesize(insts, [0, 0, 0], 1, font, SR, 6.0)[0]
    assert residual_db(sum(split), whole) <= -60


@pytest.mark.slow
def test_rerender_is_byte_identical(rendered):
    again = render_midi(tiny_midi(), resolve_soundfont("fluidr3_gm"), sample_rate=SR)
    assert again.mix.tobytes() == rendered.mix.tobytes()
    assert all(again.stems[k].tobytes() == v.tobytes() for k, v in rendered.stems.items())


@pytest.mark.slow
def test_drums_play_the_drum_kit():
    """A closed hi-hat (42) on a drum instrument is bright noise; on a piano it would be an F#2."""
    def centroid_hz(is_drum: bool) -> float:
        midi = pretty_midi.PrettyMIDI()
        inst = pretty_midi.Instrument(0, is_drum=is_drum)
        inst.notes.append(pretty_midi.Note(100, 42, 0.0, 0.3))
        midi.instruments.append(inst)
        x = render_midi(midi, resolve_soundfont(None), tail_s=0.5).mix[:, 0]
        spectrum = np.abs(np.fft.rfft(x))
        return float((spectrum * np.fft.rfftfreq(len(x), 1 / SR)).sum() / spectrum.sum())

    assert centroid_hz(True) > 5000 > 2000 > centroid_hz(False)


@pytest.mark.slow
def test_note_onsets_land_within_one_block_of_their_midi_time():
    midi = pretty_midi.PrettyMIDI()
    for start in (0.5, 1.7321):
        inst = pretty_midi.Instrument(0 if start < 1 else 33, name=f"at{start}")
        inst.notes.append(pretty_midi.Note(110, 60, start, start + 0.4))
        midi.instruments.append(inst)
    out = render_midi(midi, resolve_soundfont(None), tail_s=0.2)
    for name, start in (("at0.5", 0.5), ("at1.7321", 1.7321)):
        level = np.abs(out.stems[name]).max(axis=1)
        onset = np.flatnonzero(level > 1e-4)[0] / SR  # sample 0 is MIDI time 0: no leading trim
        assert abs(onset - start) < 1.5 * 64 / SR, (name, onset)


def test_trimming_keeps_leading_silence_so_sample_0_is_midi_time_0():
    """Only the tail is cut: the audio of a note at 0.25 s starts 0.25 s in, where the MIDI has it."""
    rate = 1000
    buffers = [np.zeros((2, 3 * rate), np.float32) for _ in range(2)]  # (2, N) per stem, FluidSynth's layout
    buffers[0][:, 250:1250] = 0.5  # a note from 0.25 s to 1.25 s on the first stem
    buffers[1][:, 400:600] = 0.1
    out = _trim(["piano", "bass"], buffers, rate)
    assert out.mix.shape == (1250, 2)  # trailing silence gone
    assert np.flatnonzero(np.abs(out.mix[:, 0]) > 1e-3)[0] == 250
    assert np.flatnonzero(np.abs(out.stems["bass"][:, 0]) > 1e-3)[0] == 400


@pytest.mark.slow
def test_audio_onset_matches_the_first_midi_note_within_5_ms():
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0, name="piano")
    piano.notes += [pretty_midi.Note(100, 60, 0.23, 0.8), pretty_midi.Note(100, 64, 0.5, 1.0)]
    midi.instruments.append(piano)
    out = render_midi(midi, resolve_soundfont(None), tail_s=0.2)
    level = np.abs(out.mix).max(axis=1) / np.abs(out.mix).max()  # relative to the peak, as mastering would set it
    onset_s = np.flatnonzero(level > 10 ** (-60 / 20))[0] / SR
    assert abs(onset_s - 0.23) <= 0.005, onset_s


def test_empty_midi_renders_to_nothing():
    midi = pretty_midi.PrettyMIDI()
    midi.instruments.append(pretty_midi.Instrument(0, name="piano"))
    out = render_midi(midi, resolve_soundfont(None))
    assert out.mix.shape == (0, 2) and out.stems == {}


@pytest.mark.slow
def test_corrupt_soundfont_fails_with_soundfont_error(tmp_path):
    from generator.audio.soundfonts import SoundFont

    font = SoundFont("broken", fake_sf2(tmp_path / "broken.sf2"), "unknown", False)
    with pytest.raises(SoundFontError, match="could not load"):
        render_midi(tiny_midi(2.0), font)
