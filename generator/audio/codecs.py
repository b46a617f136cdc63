"""Audio encoders: PCM WAV/FLAC via soundfile, CBR MP3 via pedalboard.

They write to the path they are given; callers that deliver files wrap them in files.atomic_path.
A failed write (a full disk) raises OSError, as any other file write does.

An MP3 decodes with peaks the WAV never had (the codec's filter bank rings: measured +0.23 dB over
a -1.1 dBTP master), so `write_mp3_under_ceiling` measures the decoded file and encodes it again,
with its peaks lowered, until it meets the true-peak ceiling that the WAV meets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator.audio.dsp import quantise
from generator.audio.master import TP_MARGIN_DB, integrated_lufs, lower_peaks, true_peak_dbtp
from generator.files import encoder_failure

MP3_TRIES = 5  # encodes at most; the second one lands under the ceiling in 239 of 240 edits measured
MP3_FIRST_TRIM_MIN_DB = -0.3  # a first encode trims no deeper than this (a deeper trim is a track's own peak)


@dataclass(frozen=True)
class Mp3Level:
    """What the delivered MP3 measures once decoded, and how far its peaks were trimmed."""

    true_peak_dbtp: float
    peak_trim_db: float  # 0 when the first encode met the ceiling; else how far its input's peaks were lowered
    integrated_lufs: float  # of the decoded file: its own loudness tag


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, bits: int, rng: np.random.Generator) -> None:
    import soundfile as sf

    fmt = "FLAC" if path.suffix == ".flac" else "WAV"
    try:
        sf.write(str(path), quantise(audio, bits, rng), sample_rate, subtype=f"PCM_{bits}", format=fmt)
    except sf.SoundFileRuntimeError as error:  # libsndfile says "System error." for a full disk
        raise encoder_failure(path, error) from error


def write_mp3(path: Path, audio: np.ndarray, sample_rate: int, kbps: int) -> None:
    """CBR MP3 via pedalboard's bundled LAME.

    Why not the ffmpeg CLI: measured here on a 2-minute 48 kHz stereo mix at 320 kbps CBR (3 runs),
    pedalboard took 1.45-1.57 s, ffmpeg (raw float piped to libmp3lame) 1.90-1.99 s. ffprobe reads
    the same duration back from both (120.024 s: it counts whole frames and does not subtract the
    encoder delay, so it over-reads by at most 47 ms at 48 kHz), both decode to exactly the input
    length, and pedalboard's LAME header gives mutagen the exact length (ffmpeg's: +24 ms). It needs
    no subprocess and no external binary.
    """
    from pedalboard.io import AudioFile

    try:
        with AudioFile(str(path), "w", sample_rate, audio.shape[1], quality=str(kbps)) as handle:
            handle.write(np.clip(audio, -1.0, 1.0).T)  # pedalboard takes (channels, frames)
    except RuntimeError as error:  # "Unable to write data to audio file." for a full disk
        raise encoder_failure(path, error) from error


def read_mp3(path: Path) -> np.ndarray:
    """The decoded samples of an MP3, (N, C) float32."""
    from pedalboard.io import AudioFile

    with AudioFile(str(path)) as handle:
        return handle.read(handle.frames).T


def write_mp3_under_ceiling(path: Path, audio: np.ndarray, sample_rate: int, kbps: int,
                            ceiling_dbtp: float, first_trim_db: float = 0.0) -> Mp3Level:
    """write_mp3, then decode and measure the true peak; over the ceiling (less half the mastering
    margin, as other meters read a little higher), encode again from `audio` with its peaks lowered
    through the limiter (master.lower_peaks: its loudness is made up) by the overshoot, down to the
    mastering's aim, ceiling - TP_MARGIN_DB, and TP_MARGIN_DB lower at each further try (an encode's
    peaks move by a few tenths of a dB with its input). The level says what the decoded file measures:
    true peak and integrated loudness.

    Until stop 21 the re-encode was lowered by a plain gain, and a jazz 30 s cut-down whose brush-kit
    accents rang 0.6 dB over came out at -14.6 LUFS from a -14.0 master; peak-trimmed, it decodes at -14.0.

    first_trim_db starts lower (to MP3_FIRST_TRIM_MIN_DB at most): an edit starts at the trim its own
    track's MP3 needed, since it is the same music through the same master (from the track's trim, 31
    of 32 cafe-jazz edits needed one encode, against 37 of 40 files from 0 dB). A deeper trim than
    -0.3 dB is one peak of the full track, not the edit's."""
    trim_db = min(0.0, max(MP3_FIRST_TRIM_MIN_DB, first_trim_db))
    for attempt in range(MP3_TRIES):
        write_mp3(path, lower_peaks(audio, sample_rate, trim_db), sample_rate, kbps)
        decoded = read_mp3(path)
        peak = true_peak_dbtp(decoded, sample_rate)
        if peak <= ceiling_dbtp - TP_MARGIN_DB / 2 or attempt == MP3_TRIES - 1:
            break
        trim_db += (ceiling_dbtp - TP_MARGIN_DB * (attempt + 1)) - peak
    return Mp3Level(peak, trim_db, integrated_lufs(decoded, sample_rate))
