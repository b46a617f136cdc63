"""Audio maths for export, apart from file writing: resampling, quantising, cut-downs, envelopes.

All functions are pure: arrays in, arrays out; shapes are (frames, channels) float32 unless named.
"""

from __future__ import annotations

import math

import numpy as np

RMS_WINDOW_S = 0.05  # 50 ms: short enough to find the gap between two phrases, long enough to ignore a cycle
LULL_RATIO = 0.5  # a window at least 6 dB quieter than the plain fade start counts as a lull


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """(N,) / (N,1) / (N,2) -> (N,2) float32; anything else is an internal error."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    assert audio.ndim == 2 and audio.shape[1] in (1, 2), f"audio shape {audio.shape} is not (N, 1|2)"
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    return np.ascontiguousarray(audio)


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (N,2) -> (round(N * out / in), 2); identity when the rates agree."""
    if rate_in == rate_out:
        return audio
    from scipy.signal import resample_poly

    g = math.gcd(rate_in, rate_out)
    out = resample_poly(audio, rate_out // g, rate_in // g, axis=0)  # (ceil(N*up/down), 2)
    frames = round(audio.shape[0] * rate_out / rate_in)
    return np.ascontiguousarray(out[:frames], dtype=np.float32)


def fit_length(audio: np.ndarray, frames: int) -> np.ndarray:
    """Pad with silence or trim to exactly `frames` (N,2)."""
    if audio.shape[0] >= frames:
        return audio[:frames]
    pad = np.zeros((frames - audio.shape[0], audio.shape[1]), dtype=audio.dtype)
    return np.concatenate([audio, pad])


def quantise(audio: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Float (N,2) -> integers for soundfile: int16 with TPDF dither for 16 bits, int32 (left-aligned) for 24.

    24 bits gets no dither: its rounding noise (-144 dBFS) is far below any playback floor.
    Rounding ourselves (instead of letting libsndfile convert floats) clips overs instead of wrapping.
    """
    scale = float(2 ** (bits - 1))
    # float32 is exact here: scaling by a power of two keeps every sample's mantissa, and below 2**24
    # float32 steps are at most 1, so rounding lands on the right integer (4x faster than float64).
    x = audio.astype(np.float32) * np.float32(scale)  # (N, C)
    if bits == 16:
        # Triangular dither of +-1 LSB: the difference of two uniform variables.
        x += rng.random(x.shape, dtype=np.float32)
        x -= rng.random(x.shape, dtype=np.float32)
    np.rint(x, out=x)
    np.clip(x, -scale, scale - 1, out=x)
    if bits == 16:
        return x.astype(np.int16)
    assert bits == 24, bits
    return x.astype(np.int32) << 8  # libsndfile keeps the top 24 bits of int32 for PCM_24


def rms_curve(mono: np.ndarray, window: int) -> np.ndarray:
    """RMS of non-overlapping windows (hop = window); (N,) -> (N // window,)."""
    usable = (mono.shape[0] // window) * window
    blocks = mono[:usable].reshape(-1, window)
    return np.sqrt(np.mean(blocks.astype(np.float64) ** 2, axis=1))


def cutdown(audio: np.ndarray, sample_rate: int, length_s: float, fade_s: float, search_s: float) -> np.ndarray:
    """An excerpt of exactly round(length_s * sample_rate) frames that fades to silence on its last frame.

    The fade always ends exactly at the cut length. It starts at the quietest moment (RMS minimum of
    50 ms windows) in the `search_s` seconds before `length_s - fade_s` when that moment is a real
    lull (6 dB below the plain start), so it begins between phrases rather than in a loud note;
    otherwise at `length_s - fade_s`. The fade is therefore at least `fade_s` long.
    Raises ValueError when the track is shorter than the cut-down.
    """
    frames = round(length_s * sample_rate)
    if frames > audio.shape[0]:
        raise ValueError(f"track of {audio.shape[0]} frames is shorter than a {length_s} s cut-down")
    fade_frames = min(frames, max(1, round(fade_s * sample_rate)))
    latest_start = frames - fade_frames
    window = max(1, round(RMS_WINDOW_S * sample_rate))
    count = min(round(search_s * sample_rate), latest_start) // window
    start = latest_start
    if count >= 2:
        # Windows that end exactly at the latest start, so "no lull" means a fade of exactly fade_s.
        first = latest_start - count * window
        rms = rms_curve(audio[first:latest_start].mean(axis=1), window)  # (count,)
        quietest = count - 1 - int(np.argmin(rms[::-1]))  # ties go to the latest window
        if rms[quietest] < LULL_RATIO * rms[-1]:
            start = first + quietest * window
    out = audio[:frames].astype(np.float32, copy=True)
    fade_len = frames - start
    # Raised cosine from 1 down to exactly 0 on the last frame: no click, true silence at the end.
    gain = 0.5 * (1.0 + np.cos(np.pi * np.arange(1, fade_len + 1) / fade_len))  # (fade_len,)
    out[start:] *= gain[:, None].astype(np.float32)
    return out


def envelope(audio: np.ndarray, points: int) -> tuple[list[float], list[float]]:
    """Per-bucket min and max over both channels, `points` buckets (fewer for very short audio)."""
    n = audio.shape[0]
    points = max(1, min(points, n))
    edges = np.linspace(0, n, points + 1).astype(np.int64)  # (points+1,)
    lows = np.minimum.reduceat(audio.min(axis=1), edges[:-1])
    highs = np.maximum.reduceat(audio.max(axis=1), edges[:-1])
    return [round(float(v), 3) for v in lows], [round(float(v), 3) for v in highs]
