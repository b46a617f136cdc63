"""A built library checked by tools we did not write: librosa's beat tracker on each track's WAV
against the tempo its sidecar states, music21's key analysis of each MIDI against its key.

    python bench/quality_library.py out/cafe-jazz           # a table per track, then totals
    python bench/quality_library.py out/cafe-jazz --json    # the same as JSON on stdout
    python bench/quality_library.py out/cafe-jazz --seconds 60   # beat-track the first minute only

The folder is `gen batch`'s output: one folder per track holding its `.json` sidecar (track.bpm,
track.key, files.midi, files.wav; generator/library/sidecar.py), its `.mid` and its `.wav`.

- Tempo: `librosa.beat.beat_track` on the WAV (mono, 22,050 Hz, hop 256). It agrees when it is within 2%
  of the sidecar's bpm, of twice it or of half it (beat trackers often lock onto the eighth note
  or the half bar). No bpm in the sidecar or no WAV (a MIDI-only library): not checked.
- Key: `music21.converter.parse(mid).analyze('key')` (Krumhansl-Schmuckler in music21). It agrees
  when it names the sidecar's key or its relative (C major / A minor).

Needs librosa (the `test` extra: pip install -e '.[test]') and music21 (a dependency of gen).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.library.catalogue import find_sidecars  # noqa: E402
from generator.library.sidecar import SidecarError, load_sidecar  # noqa: E402

TEMPO_TOLERANCE = 0.02
SAMPLE_RATE = 22050
# librosa's default hop (512 samples, 23 ms) quantises its tempo in ~2.5% steps near 120 BPM, coarser
# than the 2% it is judged by (a 120 BPM click track reads 117.5); 256 samples halve the steps.
HOP_LENGTH = 256
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class TrackCheck:
    track: str  # the sidecar's folder name
    genre: str
    sidecar_bpm: float | None
    librosa_bpm: float | None
    tempo_agrees: bool | None  # None: not checked
    sidecar_key: str | None
    music21_key: str | None
    key_agrees: bool | None
    note: str = ""  # why something was not checked


def tempo_agrees(measured: float | None, stated: float | None, tolerance: float = TEMPO_TOLERANCE) -> bool | None:
    """Within `tolerance` (relative) of `stated`, of twice it or of half it; None without both."""
    if measured is None or stated is None or not stated > 0:
        return None
    return any(abs(measured - k * stated) <= tolerance * k * stated for k in (1.0, 2.0, 0.5))


def parse_key(text: str | None) -> tuple[int, str] | None:
    """'Eb major' / 'f# minor' / music21's 'E- major' -> (pitch class, mode); None if unreadable."""
    parts = (text or "").split()
    if len(parts) != 2 or parts[1].lower() not in ("major", "minor") or not parts[0]:
        return None
    letter, accidentals = parts[0][0].upper(), parts[0][1:]
    if letter not in _PITCH_CLASS or any(c not in "#b-" for c in accidentals):
        return None
    shift = sum(1 if c == "#" else -1 for c in accidentals)
    return (_PITCH_CLASS[letter] + shift) % 12, parts[1].lower()


def key_name(text: str) -> str:
    """A key in the sidecars' spelling ('E- major' -> 'Eb major'); unreadable text unchanged."""
    parsed = parse_key(text)
    return text if parsed is None else f"{_NAMES[parsed[0]]} {parsed[1]}"


def keys_agree(a: str | None, b: str | None) -> bool | None:
    """The same key, or relative major and minor (C major / A minor); None if either is unreadable."""
    ka, kb = parse_key(a), parse_key(b)
    if ka is None or kb is None:
        return None
    if ka[1] == kb[1]:
        return ka[0] == kb[0]
    major, minor = (ka, kb) if ka[1] == "major" else (kb, ka)
    return (major[0] + 9) % 12 == minor[0]


def librosa_tempo(wav: Path, seconds: float | None = None) -> float:
    """librosa's global tempo estimate (BPM) of a WAV file."""
    try:
        import librosa
    except ImportError:
        raise SystemExit("librosa is not installed: pip install -e '.[test]' (or pip install librosa)") from None
    import numpy as np

    audio, rate = librosa.load(str(wav), sr=SAMPLE_RATE, mono=True, duration=seconds)
    tempo, _ = librosa.beat.beat_track(y=audio, sr=rate, hop_length=HOP_LENGTH)
    return float(np.atleast_1d(tempo)[0])


def music21_key(mid: Path) -> str:
    """music21's key of a MIDI file, spelled like the sidecars ('Eb major')."""
    import music21

    key = music21.converter.parse(str(mid)).analyze("key")
    return key_name(f"{key.tonic.name} {key.mode}")


def check_track(sidecar: Path, seconds: float | None = None) -> TrackCheck:
    data = load_sidecar(sidecar)
    track, files = data["track"], data["files"]
    bpm, key = track.get("bpm"), track.get("key")
    notes = []
    wav = sidecar.parent / files["wav"] if files.get("wav") else None
    measured_bpm = None
    if wav is None or not wav.is_file():
        notes.append("no WAV")
    elif bpm is None:
        notes.append("no bpm in sidecar")
    else:
        measured_bpm = librosa_tempo(wav, seconds)
    mid = sidecar.parent / files["midi"] if files.get("midi") else None
    measured_key = None
    if mid is None or not mid.is_file():
        notes.append("no MIDI")
    elif key is None:
        notes.append("no key in sidecar")
    else:
        measured_key = music21_key(mid)
    return TrackCheck(sidecar.parent.name, track.get("genre", ""), bpm, measured_bpm,
                      tempo_agrees(measured_bpm, bpm), key, measured_key, keys_agree(measured_key, key),
                      "; ".join(notes))


def check_library(folder: Path, seconds: float | None = None) -> tuple[list[TrackCheck], list[str]]:
    """Every track of the library, and the sidecars that could not be read (with why)."""
    checks, skipped = [], []
    for path in find_sidecars(folder):
        try:
            checks.append(check_track(path, seconds))
        except SidecarError as error:
            if path.with_suffix(".mid").exists():  # a track's sidecar, damaged (else another JSON file)
                skipped.append(str(error))
    return checks, skipped


def totals(checks: list[TrackCheck]) -> dict[str, int | float | None]:
    tempo = [c.tempo_agrees for c in checks if c.tempo_agrees is not None]
    key = [c.key_agrees for c in checks if c.key_agrees is not None]
    return {"tracks": len(checks), "tempo_checked": len(tempo), "tempo_agrees": sum(tempo),
            "tempo_agree_share": sum(tempo) / len(tempo) if tempo else None,
            "key_checked": len(key), "key_agrees": sum(key),
            "key_agree_share": sum(key) / len(key) if key else None}


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.1f}" if math.isfinite(value) else "-"
    return str(value)


def print_table(checks: list[TrackCheck], summary: dict) -> None:
    header = ("track", "genre", "bpm", "librosa", "tempo ok", "key", "music21", "key ok", "note")
    rows = [header] + [tuple(_cell(v) for v in (c.track, c.genre, c.sidecar_bpm, c.librosa_bpm, c.tempo_agrees,
                                                 c.sidecar_key, c.music21_key, c.key_agrees, c.note))
                       for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"\n{summary['tracks']} tracks; tempo agrees {summary['tempo_agrees']} / {summary['tempo_checked']} "
          f"({_share(summary['tempo_agree_share'])}); key agrees {summary['key_agrees']} / "
          f"{summary['key_checked']} ({_share(summary['key_agree_share'])})")


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a library built by gen batch")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--seconds", type=float, default=None, help="beat-track only the first SECONDS of each WAV")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"Error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    checks, skipped = check_library(args.folder, args.seconds)
    for problem in skipped:
        print(f"skipped: {problem}", file=sys.stderr)
    summary = totals(checks)
    if args.json:
        print(json.dumps({"tracks": [asdict(c) for c in checks], "totals": summary, "skipped": skipped}, indent=2))
    else:
        print_table(checks, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
