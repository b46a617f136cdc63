"""Mastering: loudness target, true-peak ceiling, shared gain on stems. Fast tests use numpy signals
and our own meter; slow ones check a real render with ffmpeg's ebur128 meter, independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile

from generator.audio.ffmpeg_meter import ebur128
from generator.audio.master import MasterSettings, integrated_lufs, master, true_peak_dbtp
from generator.audio.render import Rendered

SR = 48000


def stereo(x: np.ndarray) -> np.ndarray:
    return np.stack([x, 0.8 * x], axis=1).astype(np.float32)  # (N, 2)


def sine(seconds: float = 6.0, hz: float = 997.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return stereo(amp * np.sin(2 * np.pi * hz * t))


def clicks(seconds: float = 6.0) -> np.ndarray:
    """Sparse single-sample clicks: loud peaks, almost no loudness."""
    x = np.zeros(int(seconds * SR))
    x[:: SR // 2] = 0.9
    return stereo(x)


def band_stems(seconds: float = 6.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Three stems: a bass sine, noise bursts and a melody; peaky enough that limiting is needed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    beat = (t * 2.0) % 1.0
    return {
        "bass": stereo(0.2 * np.sin(2 * np.pi * 55 * t)),
        "drums": stereo(0.6 * np.clip(rng.standard_normal(len(t)), -4, 4) * np.exp(-beat * 25)),
        "melody": stereo(0.15 * np.sin(2 * np.pi * 440 * t) * (beat < 0.7)),
    }


def as_rendered(stems: dict[str, np.ndarray]) -> Rendered:
    return Rendered(sum(stems.values()).astype(np.float32), stems, SR)


def residual_db(parts: np.ndarray, whole: np.ndarray) -> float:
    err = np.sqrt(np.mean((parts.astype(np.float64) - whole) ** 2))
    return float(20 * np.log10(max(err, 1e-30) / np.sqrt(np.mean(whole.astype(np.float64) ** 2))))


# --- fast -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [-14.0, -23.0])
def test_sine_masters_to_target_under_ceiling(target):
    out = master(Rendered(sine(), {"tone": sine()}, SR), MasterSettings(target_lufs=target))
    assert out.reached_target
    assert abs(out.integrated_lufs - target) < 0.1
    assert abs(integrated_lufs(out.mix, SR) - target) < 0.1
    assert out.true_peak_dbtp <= -1.0
    assert out.mix.dtype == np.float32 and out.mix.shape == sine().shape


def test_loudness_matches_pyloudnorm():
    import pyloudnorm

    rng = np.random.default_rng(1)
    for x in (sine(3.0), stereo(0.1 * rng.standard_normal(SR * 5)), sum(band_stems(4.0).values())):
        expected = pyloudnorm.Meter(SR).integrated_loudness(x.astype(np.float64))
        assert integrated_lufs(x, SR) == pytest.approx(expected, abs=1e-6)


def test_true_peak_finds_the_peak_between_samples():
    """A sine at fs/4 sampled 45 degrees off its peaks: samples read -3 dB, the true peak is 0 dBTP."""
    n = np.arange(SR)
    fade = np.clip(np.minimum(n, SR - 1 - n) / 2000, 0, 1)  # no hard edges: they ring in any interpolator
    x = np.sin(2 * np.pi * n / 4 + np.pi / 4) * fade
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(x, SR) == pytest.approx(0.0, abs=0.05)
    assert true_peak_dbtp(np.zeros((100, 2)), SR) == -math.inf


def test_limiting_holds_the_ceiling_and_stems_follow():
    rendered = as_rendered(band_stems())
    out = master(rendered, MasterSettings(target_lufs=-16.0, ceiling_dbtp=-1.0, max_gain_reduction_db=12.0))
    assert out.reached_target and abs(out.integrated_lufs + 16.0) < 0.1
    assert out.true_peak_dbtp <= -1.0
    assert "limiting" in out.note
    assert residual_db(sum(out.stems.values()), out.mix) <= -100
    # the limiter really worked: without it the peaks would pass the ceiling by several dB
    assert true_peak_dbtp(rendered.mix, SR) + out.gain_db > 2.0


def test_limiter_gain_moves_smoothly():
    """No clipping or gain steps: the gain (output / input of a stem) changes by well under 1% a frame."""
    stems = band_stems()
    out = master(as_rendered(stems), MasterSettings(target_lufs=-16.0, max_gain_reduction_db=12.0))
    x, y = stems["bass"][:, 0].astype(np.float64), out.stems["bass"][:, 0].astype(np.float64)
    ok = np.abs(x) > 0.05
    gain = y[ok] / x[ok]
    steps = np.abs(np.diff(gain)) / gain[1:]
    adjacent = np.diff(np.flatnonzero(ok)) == 1
    assert gain.max() / gain.min() > 2.0  # it did limit, by more than 6 dB at times
    assert steps[adjacent].max() < 0.01


@pytest.mark.parametrize("seed", range(3))
def test_limiter_never_passes_the_ceiling(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(SR * 3) * np.exp(rng.uniform(-6, 0, SR * 3)) * 0.3  # (N,)
    x[rng.integers(0, len(x), 20)] = rng.choice([-1.0, 1.0], 20)
    out = master(Rendered(stereo(x), {}, SR), MasterSettings(target_lufs=-10.0, max_gain_reduction_db=20.0))
    assert out.true_peak_dbtp <= -1.0
    assert np.abs(out.mix).max() < 10 ** (-1.0 / 20)


def test_peaky_signal_stops_short_and_says_so():
    out = master(Rendered(clicks(), {"clicks": clicks()}, SR), MasterSettings(target_lufs=-14.0))
    assert not out.reached_target
    assert out.integrated_lufs < -14.5
    assert out.true_peak_dbtp <= -1.0
    assert "short of the -14.0 LUFS target" in out.note and "6.0 dB" in out.note
    # it used the allowed limiting and no more: the peaks went 6 dB over the ceiling (less a 0.1 dB margin)
    assert out.gain_db == pytest.approx(-1.0 - 0.1 + 6.0 - true_peak_dbtp(clicks(), SR), abs=0.01)


def test_silence_and_empty_input_do_not_crash():
    for mix in (np.zeros((SR, 2), np.float32), np.zeros((0, 2), np.float32)):
        out = master(Rendered(mix, {"a": mix.copy()}, SR), MasterSettings())
        assert not out.reached_target and "silent" in out.note
        assert out.integrated_lufs == -math.inf and out.mix.shape == mix.shape
        assert not out.mix.any()


def test_too_short_to_measure_still_holds_the_ceiling():
    x = sine(0.2, amp=1.5)
    out = master(Rendered(x, {"a": x}, SR), MasterSettings())
    assert math.isnan(out.integrated_lufs) and not out.reached_target
    assert "not measurable" in out.note
    assert out.true_peak_dbtp <= -1.0


def test_fade_out_ends_in_silence_and_applies_to_stems():
    stems = band_stems()
    out = master(as_rendered(stems), MasterSettings(target_lufs=-16.0, fade_out_s=2.0))
    assert np.abs(out.mix[-10:]).max() < 1e-4
    head = np.sqrt(np.mean(out.mix[: 2 * SR].astype(np.float64) ** 2))
    tail = np.sqrt(np.mean(out.mix[-SR // 2:].astype(np.float64) ** 2))
    assert tail < 0.2 * head
    assert np.abs(out.stems["bass"][-10:]).max() < 1e-4
    assert residual_db(sum(out.stems.values()), out.mix) <= -100


def test_settings_are_validated():
    with pytest.raises(ValueError, match="ceiling_dbtp"):
        MasterSettings(ceiling_dbtp=0.5)
    with pytest.raises(ValueError, match="target_lufs"):
        MasterSettings(target_lufs=3.0)


# --- slow: real render, measured by ffmpeg -----------------------------------------------------

def ffmpeg_ebur128(audio: np.ndarray, sample_rate: int, path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of audio written with soundfile, as ffmpeg measures it."""
    soundfile.write(path, audio, sample_rate, subtype="PCM_24")
    return ebur128(path)


@pytest.fixture(scope="module")
def real_render():
    import pretty_midi

    from generator.audio.render import render_midi
    from generator.audio.soundfonts import resolve_soundfont

    rng = np.random.default_rng(0)
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    for name, program, is_drum in (("piano", 0, False), ("bass", 33, False), ("strings", 48, False),
                                   ("drums", 0, True)):
        inst = pretty_midi.Instrument(program, is_drum=is_drum, name=name)
        for k in range(32):
            pitch = int(rng.integers(35, 52)) if is_drum else int(rng.integers(40, 80))
            inst.notes.append(pretty_midi.Note(int(rng.integers(60, 120)), pitch, k * 0.25, k * 0.25 + 0.4))
        midi.instruments.append(inst)
    return render_midi(midi, resolve_soundfont(None), sample_rate=SR)


@pytest.mark.slow
@pytest.mark.parametrize("target", [-14.0, -23.0])
@pytest.mark.parametrize("source", ["sine", "render"])
def test_ffmpeg_confirms_loudness_and_true_peak(source, target, real_render, tmp_path):
    rendered = Rendered(sine(), {"tone": sine()}, SR) if source == "sine" else real_render
    out = master(rendered, MasterSettings(target_lufs=target, ceiling_dbtp=-1.0))
    lufs, peak = ffmpeg_ebur128(out.mix, SR, tmp_path / "x.wav")
    assert out.reached_target
    assert abs(lufs - target) <= 0.5
    assert abs(lufs - out.integrated_lufs) <= 0.1  # our meter agrees with ffmpeg's
    assert peak <= -1.0
    assert residual_db(sum(out.stems.values()), out.mix) <= -60


@pytest.mark.slow
def test_ffmpeg_confirms_the_ceiling_on_a_peaky_stem(real_render, tmp_path):
    drums = real_render.stems["drums"]
    out = master(Rendered(drums, {"drums": drums}, SR), MasterSettings(target_lufs=-9.0))
    lufs, peak = ffmpeg_ebur128(out.mix, SR, tmp_path / "drums.wav")
    assert not out.reached_target and "short of" in out.note
    assert peak <= -1.0
    assert abs(lufs - out.integrated_lufs) <= 0.1
