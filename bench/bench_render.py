"""Speed of render -> master -> MP3 on a synthetic 4-instrument piece.

    python bench/bench_render.py                 # 2 minutes of music
    python bench/bench_render.py --seconds 20    # a short run

Prints, per stage, wall and CPU seconds and the realtime factor per core (seconds of music per
CPU second; every stage runs on one core), plus the stem residual and the loudness reached.
A 4-second warm-up runs first, so the numbers are those of a batch, not of a cold start.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pretty_midi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.audio.master import MasterSettings, master  # noqa: E402
from generator.audio.render import render_midi  # noqa: E402
from generator.audio.soundfonts import resolve_soundfont  # noqa: E402


def piece(seconds: float, seed: int = 0) -> pretty_midi.PrettyMIDI:
    """120 BPM: piano chords, a walking bass, a string melody and a drum beat, random but fixed."""
    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano, bass = pretty_midi.Instrument(0, name="piano"), pretty_midi.Instrument(33, name="bass")
    strings, drums = pretty_midi.Instrument(48, name="strings"), pretty_midi.Instrument(0, True, "drums")
    for bar in range(int(seconds / 2)):
        t, root = bar * 2.0, 48 + int(rng.choice([0, 5, 7, 9]))
        piano.notes += [pretty_midi.Note(75, root + i, t, t + 1.9) for i in (0, 4, 7, 12)]
        bass.notes += [pretty_midi.Note(90, root - 12 + int(rng.choice([0, 4, 7])), t + b * 0.5, t + b * 0.5 + 0.45)
                       for b in range(4)]
        strings.notes += [pretty_midi.Note(70, root + 12 + int(rng.choice([0, 2, 4, 7, 9])), t + b, t + b + 0.95)
                          for b in range(2)]
        drums.notes += [pretty_midi.Note(100, 36 if b % 2 == 0 else 38, t + b * 0.5, t + b * 0.5 + 0.1)
                        for b in range(4)]
        drums.notes += [pretty_midi.Note(65, 42, t + h * 0.25, t + h * 0.25 + 0.05) for h in range(8)]
    midi.instruments += [piano, bass, strings, drums]
    return midi


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the piece")
    parser.add_argument("--soundfont", default=None, help="registry name or path (default: fluidr3_gm)")
    parser.add_argument("--target-lufs", type=float, default=-14.0)
    args = parser.parse_args()

    font = resolve_soundfont(args.soundfont)
    master(render_midi(piece(4.0), font), MasterSettings())  # warm-up: imports and first-touch costs
    midi = piece(args.seconds)
    rows = []
    rendered, wall, cpu = timed(lambda: render_midi(midi, font))
    music_s = rendered.duration_s
    rows.append(("render", wall, cpu))
    mastered, wall, cpu = timed(lambda: master(rendered, MasterSettings(target_lufs=args.target_lufs)))
    rows.append(("master", wall, cpu))
    try:
        from pedalboard.io import AudioFile

        def encode() -> None:
            with tempfile.TemporaryDirectory() as tmp, AudioFile(
                    str(Path(tmp) / "x.mp3"), "w", samplerate=mastered.sample_rate, num_channels=2,
                    quality="320k") as f:
                f.write(np.ascontiguousarray(mastered.mix.T))

        _, wall, cpu = timed(encode)
        rows.append(("mp3 320k", wall, cpu))
    except ImportError:
        print("pedalboard not installed: MP3 stage skipped")

    stems_sum = sum(s.astype(np.float64) for s in mastered.stems.values())
    residual = (np.sqrt(np.mean((stems_sum - mastered.mix) ** 2))
                / np.sqrt(np.mean(mastered.mix.astype(np.float64) ** 2)))
    print(f"{font.name}: {music_s:.1f} s of music, {len(rendered.stems)} stems, {rendered.sample_rate} Hz")
    print(f"{'stage':10s} {'wall s':>8s} {'cpu s':>8s} {'x realtime/core':>16s}")
    for name, wall, cpu in rows + [("total", sum(r[1] for r in rows), sum(r[2] for r in rows))]:
        print(f"{name:10s} {wall:8.2f} {cpu:8.2f} {music_s / max(cpu, 1e-9):16.1f}")
    print(f"mastered: {mastered.integrated_lufs:.2f} LUFS, {mastered.true_peak_dbtp:.2f} dBTP, "
          f"stems residual {20 * np.log10(max(residual, 1e-30)):.0f} dB; {mastered.note}")


if __name__ == "__main__":
    main()
