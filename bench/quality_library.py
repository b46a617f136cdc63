"""A built library checked by tools we did not write, as a user would: librosa's beat tracker on each
track's WAV against the tempo its sidecar states, music21's key analysis of each MIDI against its key,
and each track's loop and cut-downs played and measured (ffmpeg's EBU R128 meter, soundfile, mutagen).

    python bench/quality_library.py out/cafe-jazz           # a table per track, then totals
    python bench/quality_library.py out/cafe-jazz --json    # the same as JSON on stdout
    python bench/quality_library.py out/cafe-jazz --seconds 60   # beat-track the first minute only
    python bench/quality_library.py out/cafe-jazz --target-lufs -16 --ceiling-dbtp -2  # the recipe's mastering

The folder is `gen batch`'s output: one folder per track holding its `.json` sidecar (track.bpm,
track.key, files.midi, files.wav, files.loop, files.cutdowns; generator/library/sidecar.py), its
`.mid`, its `.wav` and its edits (docs/delivery.md "Loops and cut-downs").

- Tempo: `librosa.beat.beat_track` on the WAV (mono, 22,050 Hz, hop 256). It agrees when it is within 2%
  of the sidecar's bpm, of twice it or of half it (beat trackers often lock onto the eighth note
  or the half bar). No bpm in the sidecar or no WAV (a MIDI-only library): not checked.
- Key: `music21.converter.parse(mid).analyze('key')` (Krumhansl-Schmuckler in music21). It agrees
  when it names the sidecar's key or its relative (C major / A minor).
- The track's bars, which the edits are held to: the sidecar's bpm, the meter its MIDI file states
  (else the recipe's, track.extra.planned.meter), and as many bars as its music lasts
  (track.extra.music_duration_s / bar seconds, rounded). A bar lasts quarter notes per bar x 60 / bpm
  seconds; `b` bars are Form.frames: b x quarter notes per bar x 60 / bpm x sample rate, rounded once.
- Loop (files.loop): its length is right when the sidecar's frames, the formula's frames for its bars
  at its sample_rate and the WAV's frames (soundfile) are one number, at that rate. Its joins are
  smooth when the WAV played 4 times (generator/audio/joins.py) steps no further at any join, sample
  to sample, than the 99th percentile of its steps elsewhere, and its spectrum (1024 samples before
  and after) changes no more than the 99th percentile of that change at its own beats; printed as
  the ratios join / p99 (at most 1 passes). Issue 12 holds the joins to "the track's own 99th
  percentile elsewhere": the same joins are also measured against the full track's WAV (its sample
  steps, its spectral change at all its beats), reported as loop_joins_in_track.
- Cut-downs (files.cutdowns): whole bars when its segments add up to its bars, its music_s and
  bar_s are its bars' by the formula (to a frame) and its WAV holds music_s and the ring-out, as
  many frames as the sidecar says; it ends on the cadence when its last segment ends at the track's
  last bar. A faded cut-down (a track without bars, `bars` null): neither is checked.
- Loudness, of every cut-down and loop file, WAV and MP3: ffmpeg's ebur128 filter
  (generator/audio/ffmpeg_meter.py). Integrated loudness within 0.5 LU of the target and true peak
  at most the ceiling (-14 LUFS and -1 dBTP, gen's defaults; the sidecar does not record the
  recipe's mastering, so --target-lufs / --ceiling-dbtp give another). Its tags carry its own
  loudness when every loudness it records is within 0.1 LU of ffmpeg's: the ID3 TXXX:INTEGRATED_LUFS
  (an MP3's tag, a WAV's id3 chunk), a WAV's bext LoudnessValue, and for a WAV the sidecar's
  integrated_lufs (the MP3's is not recorded there).
- No loop or no cut-downs (a library built without them, a MIDI-only one) and no ffmpeg: not
  checked, and the note says so; a file the sidecar names that is not there fails.

Needs librosa (the `test` extra: pip install -e '.[test]'), music21 (a dependency of gen) and, for
the loudness, ffmpeg.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.audio.edit_plan import Form  # noqa: E402
from generator.audio.ffmpeg_meter import ebur128  # noqa: E402
from generator.audio.joins import beat_marks, join_measures, track_p99  # noqa: E402
from generator.audio.master import LOUDNESS_TOLERANCE_LU  # noqa: E402
from generator.audio.riff import read_bext, read_chunks  # noqa: E402
from generator.library.sidecar import SidecarError, find_sidecars, load_sidecar  # noqa: E402

TEMPO_TOLERANCE = 0.02
SAMPLE_RATE = 22050
# librosa's default hop (512 samples, 23 ms) quantises its tempo in ~2.5% steps near 120 BPM, coarser
# than the 2% it is judged by (a 120 BPM click track reads 117.5); 256 samples halve the steps.
HOP_LENGTH = 256
TARGET_LUFS = -14.0  # gen's mastering defaults (recipe mastering.target_lufs, ceiling_dbtp)
CEILING_DBTP = -1.0
TAG_TOLERANCE_LU = 0.1  # a recorded loudness this close to ffmpeg's is the file's own
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class LoopCheck:
    file: str  # the loop's WAV, in the track folder
    bars: int
    start_bar: int
    frames: int | None  # the WAV's; None: the file is missing
    expected_frames: int | None  # Form.frames of its bars at its sample_rate; None: the track's bars are unknown
    length_ok: bool | None  # None: not checked
    join_step_ratio: float | None  # the largest step at a join / the 99th percentile of the step elsewhere
    join_flux_ratio: float | None  # the largest spectral change at a join / its 99th percentile at the beats
    joins_ok: bool | None  # both ratios at most 1
    # the same joins against the whole track's percentiles (issue 12's words: "the track's own 99th
    # percentile elsewhere"): its sample steps, its spectral change at its beats
    track_step_ratio: float | None = None
    track_flux_ratio: float | None = None
    joins_ok_in_track: bool | None = None


@dataclass(frozen=True)
class CutdownCheck:
    nominal: str  # its key in files.cutdowns: the nominal seconds
    bars: int | None  # None: faded, the track has no bars
    music_s: float | None
    whole_bars: bool | None  # None: not checked
    ends_on_cadence: bool | None


@dataclass(frozen=True)
class EditFileCheck:
    file: str  # a cut-down's or the loop's WAV or MP3, in the track folder
    version: str  # loop | the cut-down's nominal seconds
    lufs: float  # ffmpeg's integrated loudness
    true_peak_dbtp: float  # ffmpeg's true peak
    loudness_ok: bool
    peak_ok: bool
    recorded_lufs: dict[str, float]  # what its tags (and, for a WAV, the sidecar) say it measures
    tag_gap_lu: float | None  # the largest |recorded - ffmpeg's|; None: it records none
    tags_ok: bool


@dataclass(frozen=True)
class EditsCheck:
    loop: LoopCheck | None  # None: no loop
    cutdowns: tuple[CutdownCheck, ...]
    files: tuple[EditFileCheck, ...]  # every edit file ffmpeg measured
    missing: tuple[str, ...]  # files the sidecar names that are not there: failures
    note: str = ""  # what was not checked, and why


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
    edits: EditsCheck | None = None  # the loop and cut-downs


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


@dataclass(frozen=True)
class Norms:
    """What the edits' loudness is held to: the recipe's mastering (gen's defaults unless told)."""

    target_lufs: float = TARGET_LUFS
    ceiling_dbtp: float = CEILING_DBTP


def track_bars(data: dict, mid: Path | None) -> tuple[Form | None, int | None, str]:
    """The track's bars as its files state them (the module docstring): (a Form of its bpm and meter,
    how many bars its music lasts or None when its length is not recorded, ''); (None, None, why)
    without a bpm or a meter."""
    bpm, extra = data["track"].get("bpm"), data["track"].get("extra") or {}
    if not isinstance(bpm, int | float) or not bpm > 0:
        return None, None, "no bpm"
    meter = None
    if mid is not None and mid.is_file():
        import pretty_midi

        signatures = pretty_midi.PrettyMIDI(str(mid)).time_signature_changes
        meter = (signatures[0].numerator, signatures[0].denominator) if signatures else None
    planned = str((extra.get("planned") or {}).get("meter") or "")
    if meter is None and planned.count("/") == 1:
        meter = tuple(int(x) for x in planned.split("/"))
    if meter is None:
        return None, None, "no meter"
    form = Form.of(bpm, meter, 1)
    music_s = extra.get("music_duration_s")
    bars = round(music_s / form.bar_s) if isinstance(music_s, int | float) and music_s > 0 else None
    return form, bars, ""


def check_loop(folder: Path, entry: dict, form: Form | None, track_wav: Path | None = None,
               track_bars: int | None = None) -> tuple[LoopCheck, list[str]]:
    """The loop's length and joins (the module docstring), and what was not checked; its joins also
    against the whole track's percentiles when its WAV (`track_wav`) and its bars are known."""
    import soundfile

    bars, rate = int(entry["bars"]), int(entry["sample_rate"])
    expected = form.frames(bars, rate) if form is not None else None
    if not entry.get("wav"):
        return LoopCheck("", bars, int(entry["start_bar"]), None, expected, None, None, None, None), ["loop: no WAV"]
    wav = folder / entry["wav"]
    if not wav.is_file():
        return LoopCheck(wav.name, bars, int(entry["start_bar"]), None, expected, False, None, None, None), []
    info = soundfile.info(str(wav))
    length_ok = None if expected is None else entry["frames"] == expected == info.frames and info.samplerate == rate
    if form is None:
        return LoopCheck(wav.name, bars, int(entry["start_bar"]), info.frames, expected, length_ok, None, None,
                         None), ["loop not checked: the track's bars are unknown"]
    audio, _ = soundfile.read(str(wav), dtype="float32", always_2d=True)
    m = join_measures(audio, marks=beat_marks(form, bars, info.samplerate))
    step, flux = m["join_step"] / m["step_p99"], m["join_flux"] / m["flux_p99"]
    in_track: tuple[float | None, float | None, bool | None] = (None, None, None)
    if track_wav is not None and track_wav.is_file() and track_bars:
        track, track_rate = soundfile.read(str(track_wav), dtype="float32", always_2d=True)
        if track_rate == info.samplerate:
            t = track_p99(track, beat_marks(form, track_bars, track_rate))
            t_step, t_flux = m["join_step"] / t["step_p99"], m["join_flux"] / t["flux_p99"]
            in_track = (t_step, t_flux, t_step <= 1.0 and t_flux <= 1.0)
    return LoopCheck(wav.name, bars, int(entry["start_bar"]), info.frames, expected, length_ok, step, flux,
                     step <= 1.0 and flux <= 1.0, *in_track), []


def check_cutdown(folder: Path, nominal: str, entry: dict, form: Form | None, track_bars: int | None,
                  rate: int | None) -> CutdownCheck:
    """Whole bars and the cadence of one cut-down (the module docstring); neither is checked when it
    is faded or the track's bars are unknown, the cadence not when the track's length is not recorded.
    `rate`: the library's WAV rate, for a cut-down without a WAV (an MP3-only library)."""
    import soundfile

    bars = entry.get("bars")
    if bars is None or form is None:
        return CutdownCheck(nominal, bars, entry.get("music_s"), None, None)
    segments = [tuple(s) for s in entry.get("segments") or []]
    frames = None  # no WAV: the sidecar's frames stand
    if entry.get("wav"):
        wav = folder / entry["wav"]
        info = soundfile.info(str(wav)) if wav.is_file() else None
        rate, frames = (info.samplerate, info.frames) if info else (rate, -1)  # a missing WAV fails
    music = form.frames(bars, rate) if rate else None
    stated = {k: entry.get(k) if isinstance(entry.get(k), int | float) else -1.0
              for k in ("music_s", "bar_s", "frames")}  # -1: not stated, which fails
    whole = (music is not None and sum(n for _, n in segments) == bars and abs(stated["music_s"] * rate - music) < 0.5
             and abs(stated["bar_s"] - form.bar_s) < 1e-9 and stated["frames"] >= music
             and frames in (None, stated["frames"]))
    cadence = None if track_bars is None or not segments else sum(segments[-1]) == track_bars
    return CutdownCheck(nominal, bars, entry.get("music_s"), whole, cadence)


def recorded_lufs(path: Path, entry: dict) -> dict[str, float]:
    """The integrated loudness a file says it has: its ID3 TXXX:INTEGRATED_LUFS (an MP3's tag, a WAV's
    id3 chunk), a WAV's bext LoudnessValue, and for a WAV the sidecar's integrated_lufs."""
    import mutagen

    found = {}
    tags = getattr(mutagen.File(str(path)), "tags", None)
    frame = tags.get("TXXX:INTEGRATED_LUFS") if tags is not None else None
    if frame is not None and str(frame).strip():
        found["id3"] = float(str(frame))
    if path.suffix.lower() == ".wav":
        bext = [read_bext(payload) for ident, payload in read_chunks(path.read_bytes()) if ident == b"bext"]
        if bext and bext[0]["loudness_value"] is not None:
            found["bext"] = float(bext[0]["loudness_value"])
        if entry.get("integrated_lufs") is not None:
            found["sidecar"] = float(entry["integrated_lufs"])
    return found


def check_edit_file(path: Path, version: str, entry: dict, norms: Norms) -> EditFileCheck:
    """ffmpeg's loudness and true peak of one edit file, against the norms and against what it records."""
    lufs, peak = ebur128(path)
    recorded = recorded_lufs(path, entry)
    gap = max((abs(v - lufs) for v in recorded.values()), default=None)
    return EditFileCheck(path.name, version, lufs, peak, abs(lufs - norms.target_lufs) <= LOUDNESS_TOLERANCE_LU,
                         peak <= norms.ceiling_dbtp, recorded, gap, gap is not None and gap <= TAG_TOLERANCE_LU)


def check_edits(folder: Path, data: dict, norms: Norms) -> EditsCheck:
    """The track's loop and cut-downs, each file as a user gets it."""
    files = data["files"]
    loop_entry = files.get("loop") if isinstance(files.get("loop"), dict) else None
    cut_entries = sorted((files.get("cutdowns") or {}).items(), key=lambda kv: -float(kv[0]))  # longest first
    if loop_entry is None and not cut_entries:
        return EditsCheck(None, (), (), (), "edits not checked: no loop, no cut-downs")
    form, bars, notes = None, None, []
    if loop_entry is not None or any(entry.get("bars") is not None for _, entry in cut_entries):
        form, bars, why = track_bars(data, folder / files["midi"] if files.get("midi") else None)
        notes += [f"bars not checked: {why}"] if form is None else []
        if form is not None and bars is None:
            notes.append("cadence not checked: the music's length is not recorded")
    loop = None
    if loop_entry is None:
        notes.append("no loop")
    else:
        loop, loop_notes = check_loop(folder, loop_entry, form, folder / files["wav"] if files.get("wav") else None,
                                      bars)
        notes += loop_notes
    rate = (data.get("audio") or {}).get("wav_sample_rate")
    cutdowns = tuple(check_cutdown(folder, k, v, form, bars, rate) for k, v in cut_entries)
    if not cut_entries:
        notes.append("no cut-downs")
    elif any(c.bars is None for c in cutdowns):
        notes.append("faded cut-downs: bars not checked")
    named = [(version, entry, entry[fmt]) for version, entry in ([("loop", loop_entry)] if loop_entry else [])
             + cut_entries for fmt in ("wav", "mp3") if entry.get(fmt)]
    missing = tuple(rel for _, _, rel in named if not (folder / rel).is_file())
    measured = ()
    if shutil.which("ffmpeg") is None:
        notes.append("loudness not checked: no ffmpeg")
    else:
        measured = tuple(check_edit_file(folder / rel, version, entry, norms)
                         for version, entry, rel in named if rel not in missing)
    return EditsCheck(loop, cutdowns, measured, missing, "; ".join(notes))


def check_track(sidecar: Path, seconds: float | None = None, norms: Norms = Norms()) -> TrackCheck:
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
                      "; ".join(notes), check_edits(sidecar.parent, data, norms))


def check_library(folder: Path, seconds: float | None = None,
                  norms: Norms = Norms()) -> tuple[list[TrackCheck], list[str]]:
    """Every track of the library, and the sidecars that could not be read (with why)."""
    checks, skipped = [], []
    for path in find_sidecars(folder):
        try:
            checks.append(check_track(path, seconds, norms))
        except SidecarError as error:
            if path.with_suffix(".mid").exists():  # a track's sidecar, damaged (else another JSON file)
                skipped.append(str(error))
    return checks, skipped


def totals(checks: list[TrackCheck]) -> dict[str, int | float | None]:
    tempo = [c.tempo_agrees for c in checks if c.tempo_agrees is not None]
    key = [c.key_agrees for c in checks if c.key_agrees is not None]
    edits = [c.edits for c in checks if c.edits is not None and (c.edits.loop or c.edits.cutdowns)]
    loops = [e.loop for e in edits if e.loop is not None]
    cuts = [c for e in edits for c in e.cutdowns]
    files = [f for e in edits for f in e.files]
    return {"tracks": len(checks), "tempo_checked": len(tempo), "tempo_agrees": sum(tempo),
            "tempo_agree_share": sum(tempo) / len(tempo) if tempo else None,
            "key_checked": len(key), "key_agrees": sum(key),
            "key_agree_share": sum(key) / len(key) if key else None,
            "tracks_without_edits": len(checks) - len(edits),
            **_passed("loop_length", [lp.length_ok for lp in loops]),
            **_passed("loop_joins", [lp.joins_ok for lp in loops]),
            **_passed("loop_joins_in_track", [lp.joins_ok_in_track for lp in loops]),
            "max_join_step_ratio": _most(lp.join_step_ratio for lp in loops),
            "max_join_flux_ratio": _most(lp.join_flux_ratio for lp in loops),
            **_passed("cutdown_whole_bars", [c.whole_bars for c in cuts]),
            **_passed("cutdown_cadence", [c.ends_on_cadence for c in cuts]),
            "edit_files_measured": len(files), "edit_files_missing": sum(len(e.missing) for e in edits),
            "loudness_ok": sum(f.loudness_ok for f in files), "true_peak_ok": sum(f.peak_ok for f in files),
            "tags_ok": sum(f.tags_ok for f in files),
            "min_lufs": min((f.lufs for f in files), default=None), "max_lufs": _most(f.lufs for f in files),
            "max_true_peak_dbtp": _most(f.true_peak_dbtp for f in files),
            "max_tag_gap_lu": _most(f.tag_gap_lu for f in files)}


def _tally(results) -> tuple[int, int]:
    """(passed, checked) of results, None meaning not checked."""
    checked = [r for r in results if r is not None]
    return sum(checked), len(checked)


def _passed(name: str, results: list[bool | None]) -> dict[str, int]:
    """{name_checked: how many were checked, name_ok: how many of those passed}."""
    ok, checked = _tally(results)
    return {f"{name}_checked": checked, f"{name}_ok": ok}


def _most(values) -> float | None:
    return max((v for v in values if v is not None), default=None)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.1f}" if math.isfinite(value) else "-"
    return str(value)


def _print_rows(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _of(results) -> str:
    """'k/n' of the results that were checked (not None); '-' when none was."""
    ok, checked = _tally(results)
    return f"{ok}/{checked}" if checked else "-"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def edit_row(c: TrackCheck) -> tuple[str, ...]:
    """The track's loop and cut-downs in one table row."""
    e = c.edits or EditsCheck(None, (), (), ())
    lp, files = e.loop, e.files
    lufs = f"{_num(min(f.lufs for f in files))}..{_num(max(f.lufs for f in files))}" if files else "-"
    note = "; ".join(p for p in (e.note, *(f"{m} is missing" for m in e.missing)) if p)
    return (c.track, f"{lp.bars}" if lp else "-", _cell(lp.length_ok if lp else None),
            _num(lp.join_step_ratio if lp else None), _num(lp.join_flux_ratio if lp else None),
            _cell(lp.joins_ok if lp else None), ",".join(x.nominal for x in e.cutdowns) or "-",
            _of(x.whole_bars for x in e.cutdowns), _of(x.ends_on_cadence for x in e.cutdowns), lufs,
            _num(_most(f.true_peak_dbtp for f in files)), _of(f.loudness_ok for f in files),
            _of(f.peak_ok for f in files), _of(f.tags_ok for f in files), _num(_most(f.tag_gap_lu for f in files)),
            note)


def print_table(checks: list[TrackCheck], summary: dict, norms: Norms = Norms()) -> None:
    header = ("track", "genre", "bpm", "librosa", "tempo ok", "key", "music21", "key ok", "note")
    _print_rows([header] + [tuple(_cell(v) for v in (c.track, c.genre, c.sidecar_bpm, c.librosa_bpm, c.tempo_agrees,
                                                      c.sidecar_key, c.music21_key, c.key_agrees, c.note))
                            for c in checks])
    print(f"\n{summary['tracks']} tracks; tempo agrees {summary['tempo_agrees']} / {summary['tempo_checked']} "
          f"({_share(summary['tempo_agree_share'])}); key agrees {summary['key_agrees']} / "
          f"{summary['key_checked']} ({_share(summary['key_agree_share'])})\n")
    _print_rows([("track", "loop bars", "length ok", "step/p99", "flux/p99", "joins ok", "cut-downs", "whole bars",
                  "cadence", "LUFS (ffmpeg)", "max dBTP", "loudness ok", "peak ok", "tags ok", "tag gap LU",
                  "note")] + [edit_row(c) for c in checks])
    t = summary
    print(f"\nloops: length right {t['loop_length_ok']} / {t['loop_length_checked']}; joins smooth "
          f"{t['loop_joins_ok']} / {t['loop_joins_checked']} (worst join / p99: step {_num(t['max_join_step_ratio'])}, "
          f"spectrum {_num(t['max_join_flux_ratio'])}); against the whole track's p99 "
          f"{t['loop_joins_in_track_ok']} / {t['loop_joins_in_track_checked']}")
    print(f"cut-downs: whole bars {t['cutdown_whole_bars_ok']} / {t['cutdown_whole_bars_checked']}; end on the "
          f"cadence {t['cutdown_cadence_ok']} / {t['cutdown_cadence_checked']}")
    n = t["edit_files_measured"]
    print(f"edit files by ffmpeg: loudness {norms.target_lufs:g} +- {LOUDNESS_TOLERANCE_LU:g} LU {t['loudness_ok']} / "
          f"{n} ({_num(t['min_lufs'])} to {_num(t['max_lufs'])} LUFS); true peak <= {norms.ceiling_dbtp:g} dBTP "
          f"{t['true_peak_ok']} / {n} (max {_num(t['max_true_peak_dbtp'])}); tags within {TAG_TOLERANCE_LU:g} LU "
          f"{t['tags_ok']} / {n} (worst {_num(t['max_tag_gap_lu'])} LU); missing {t['edit_files_missing']}")
    print(f"{t['tracks_without_edits']} tracks without a loop or cut-downs: not checked")


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a library built by gen batch")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--seconds", type=float, default=None, help="beat-track only the first SECONDS of each WAV")
    parser.add_argument("--target-lufs", type=float, default=TARGET_LUFS,
                        help="the recipe's mastering.target_lufs, which the edits are held to (default %(default)s)")
    parser.add_argument("--ceiling-dbtp", type=float, default=CEILING_DBTP,
                        help="the recipe's mastering.ceiling_dbtp (default %(default)s)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"Error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    norms = Norms(args.target_lufs, args.ceiling_dbtp)
    checks, skipped = check_library(args.folder, args.seconds, norms)
    for problem in skipped:
        print(f"skipped: {problem}", file=sys.stderr)
    summary = totals(checks)
    if args.json:
        print(json.dumps({"tracks": [asdict(c) for c in checks], "totals": summary, "norms": asdict(norms),
                          "skipped": skipped}, indent=2))
    else:
        print_table(checks, summary, norms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
