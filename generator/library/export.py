"""Mastered audio + MIDI -> one folder of delivery files per track, with a JSON sidecar written last.

A track is built in a hidden staging folder (`.partial-<basename>-...`) beside its final folder and
renamed into place only when every file, the sidecar last, is written: a failure or a crash never
leaves a visible half-written track, and a re-run replaces the old folder as a whole.

MP3 encoder: pedalboard.io.AudioFile; see audio.codecs.write_mp3 for the measurement. Each MP3 is
decoded and measured after encoding and, if it passes the true-peak ceiling, encoded again with its
peaks limited lower at the same loudness (audio.codecs.write_mp3_under_ceiling); the sidecar records
what it measures. Every audio file is tagged (library/tags.py) with its version: full, the
cut-down's seconds, loop, or stem:<role>.
The loop and the cut-downs are made by audio/edits.py, each mastered on its own and tagged with its
own loudness: a beat-time track's (given its `form` and a `render`) by whole bars, re-rendered from
its MIDI; a track without bars gets no loop and faded cut-downs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from generator import __version__
from generator.audio.codecs import Mp3Level, write_mp3_under_ceiling, write_wav
from generator.audio.dsp import envelope, fit_length, resample, to_stereo
from generator.audio.edit_plan import Form
from generator.audio.edits import Edit, EditSettings, Render, faded_cutdown, make_cutdown, make_loop, track_reference
from generator.errors import GeneratorError
from generator.files import atomic_path, install_folder
from generator.library.integrity import folder_checksums
from generator.library.sidecar import SCHEMA, SCHEMA_VERSION, piano_roll, write_json_atomic
from generator.library.tags import FileTags, tag_file
from generator.names import slug
from generator.seeds import stable_rng

log = logging.getLogger(__name__)

WAV_RATES = (44100, 48000, 88200, 96000)
MP3_KBPS = (128, 160, 192, 224, 256, 320)
LOOP_BARS = (1, 2, 4, 8, 16)
MAX_NAME_CHARS = 48
WAVEFORM_POINTS = 400


@dataclass(frozen=True)
class ExportSettings:
    wav_sample_rate: int = 48000
    wav_bits: int = 24
    mp3_kbps: int = 320
    write_wav: bool = True
    write_mp3: bool = True
    write_stems: bool = True
    stem_format: str = "wav"
    cutdowns_s: tuple[float, ...] = (60, 30, 15)
    cutdown_fade_s: float = 2.0
    cutdown_search_s: float = 3.0  # how far before the fade the quietest start may lie
    ceiling_dbtp: float = -1.0  # the mastering's true-peak ceiling, which every decoded MP3 must meet too
    target_lufs: float = -14.0  # the mastering's target, which each cut-down and the loop are mastered to
    loop: bool = True  # a loop file, for tracks with bars
    loop_bars: int | None = None  # None: edit_plan.LOOP_BARS, halved until it fits
    ending_fade_s: float = 0.0  # the track ends in a fade of this length (mastering.ending: fade): so do cut-downs

    def __post_init__(self) -> None:
        checks = (
            ("wav_sample_rate", self.wav_sample_rate in WAV_RATES, f"one of {WAV_RATES}"),
            ("wav_bits", self.wav_bits in (16, 24), "16 or 24"),
            ("mp3_kbps", self.mp3_kbps in MP3_KBPS, f"one of {MP3_KBPS}"),
            ("stem_format", self.stem_format in ("wav", "flac"), "'wav' or 'flac'"),
            ("cutdowns_s", all(c > 0 and float(c).is_integer() for c in self.cutdowns_s), "whole seconds > 0"),
            ("cutdown_fade_s", self.cutdown_fade_s > 0, "a positive number of seconds"),
            ("cutdown_search_s", self.cutdown_search_s >= 0, "zero or more seconds"),
            ("ceiling_dbtp", -20 <= self.ceiling_dbtp <= 0, "a number of dBTP in [-20, 0]"),
            ("target_lufs", -70 < self.target_lufs < 0, "a number of LUFS in (-70, 0)"),
            ("loop_bars", self.loop_bars is None or self.loop_bars in LOOP_BARS, f"null or one of {LOOP_BARS}"),
            ("ending_fade_s", self.ending_fade_s >= 0, "zero or more seconds"),
        )
        for key, ok, fix in checks:
            if not ok:
                raise GeneratorError(f"export settings: key '{key}' = {getattr(self, key)!r} is invalid; use {fix}")

    @property
    def mp3_sample_rate(self) -> int:
        # MP3 stops at 48 kHz; keep the WAV's family (44.1 or 48) so resampling stays a simple ratio.
        return 44100 if self.wav_sample_rate % 44100 == 0 else 48000


@dataclass(frozen=True)
class TrackInfo:
    track_id: str
    title: str
    genre: str
    index: int
    seed: int
    bpm: float | None
    key: str | None
    duration_s: float
    model: str
    recipe: str
    licence_note: str
    tags: tuple[str, ...] = ()  # keywords
    sampling: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    mood: tuple[str, ...] = ()
    description: str = ""
    # The library's facts (recipe.Library.facts): name, artist, album, composer, publisher, copyright,
    # year, licence_url.
    library: dict = field(default_factory=dict)
    # The form's sections (library/form.py): [{name, start_bar, bars, start_s, end_s}]; [] without one.
    sections: list = field(default_factory=list)


@dataclass(frozen=True)
class TrackFiles:
    folder: Path
    midi: Path | None
    wav: Path | None
    mp3: Path | None
    stems: dict[str, Path]
    cutdowns: dict[int, dict[str, Path]]
    sidecar: Path
    loop: dict[str, Path] = field(default_factory=dict)  # format -> path; empty without a loop


def safe_name(text: str) -> str:
    """Lowercase ASCII letters, digits and single '-', at most 48 characters, never empty.

    Accents are folded (Café -> cafe); distinct titles keep distinct names (see names.slug).
    """
    return slug(text, max_chars=MAX_NAME_CHARS, fold=True)


def track_basename(info: TrackInfo) -> str:
    """`0007-morning-light-1a2b3c4d`: sorted by index, readable, unique and stable by track_id."""
    digest = hashlib.sha1(info.track_id.encode("utf-8")).hexdigest()[:8]
    return f"{info.index:04d}-{safe_name(info.title)[:32].strip('-')}-{digest}"


def _plain(value: Any) -> Any:
    """json.dumps fallback for the numpy scalars/arrays and paths that recipes and samplers hand over."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_ready(info: TrackInfo) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(asdict(info), default=_plain))
    except (TypeError, ValueError) as error:
        raise GeneratorError(
            f"track {info.track_id!r}: TrackInfo.sampling/extra must hold JSON values ({error}); "
            "pass numbers, strings, lists and dicts only"
        ) from error


def _unique_roles(roles: Iterable[str]) -> dict[str, str]:
    """role -> file-safe name, with a numeric suffix where two roles fold to the same name."""
    out: dict[str, str] = {}
    for role in roles:
        name, n = safe_name(role), 2
        while name in out.values():
            name, n = f"{safe_name(role)}-{n}", n + 1
        out[role] = name
    return out


@dataclass(frozen=True)
class _Job:
    """What every file of one track's export shares."""

    staging: Path
    info: TrackInfo
    settings: ExportSettings
    cover_png: bytes | None
    bars: tuple[Any, Form, Render] | None = None  # (midi, form, render): loop and cut-downs by whole bars
    mp3_first_trim_db: float = 0.0  # the edits start at the peak trim their track's MP3 needed (codecs)


def _write_audio_set(job: _Job, stem: str, wav_audio: np.ndarray, mp3_audio: np.ndarray,
                     tags: FileTags) -> dict[str, Any]:
    """WAV and/or MP3 of one signal, tagged; returns {'wav': name, 'mp3': name, 'mp3_true_peak_dbtp': ..,
    'mp3_peak_trim_db': .., 'mp3_integrated_lufs': ..} of what it wrote."""
    settings, written = job.settings, {}
    if settings.write_wav:
        written["wav"] = _write_wav(job, f"{stem}.wav", wav_audio, tags)
    if settings.write_mp3:
        name = f"{stem}.mp3"
        with atomic_path(job.staging / name) as tmp:
            level = write_mp3_under_ceiling(tmp, mp3_audio, settings.mp3_sample_rate, settings.mp3_kbps,
                                            settings.ceiling_dbtp, job.mp3_first_trim_db)
            own = {} if tags.integrated_lufs is None else {"integrated_lufs": level.integrated_lufs}
            tag_file(tmp, job.info, replace(tags, true_peak_dbtp=level.true_peak_dbtp, **own), job.cover_png)
        written.update(mp3=name, **_mp3_record(level))
    return written


def _write_wav(job: _Job, rel: str, audio: np.ndarray, tags: FileTags) -> str:
    settings = job.settings
    with atomic_path(job.staging / rel) as tmp:
        write_wav(tmp, audio, settings.wav_sample_rate, settings.wav_bits, stable_rng(job.info.track_id, rel))
        tag_file(tmp, job.info, tags, job.cover_png)
    return rel


def _mp3_record(level: Mp3Level) -> dict[str, float]:
    return {"mp3_true_peak_dbtp": round(level.true_peak_dbtp, 3), "mp3_peak_trim_db": round(level.peak_trim_db, 3),
            "mp3_integrated_lufs": round(level.integrated_lufs, 3)}


def _remove_stale_staging(out_dir: Path, base: str) -> None:
    """Staging folders of this track left by a process that died (killed mid-export) are removed."""
    for path in out_dir.glob(f".partial-{base}-*"):
        pid = path.name[len(f".partial-{base}-"):].split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            log.info("removing %s, left by an export that did not finish", path)
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass  # alive (or someone else's): leave it


def export_track(
    out_dir: Path, info: TrackInfo, midi: Any, mastered: Any, settings: ExportSettings, *,
    piano_roll_notes: Iterable[Sequence[Any]] | None = None, cover_png: bytes | None = None,
    form: Form | None = None, render: Render | None = None,
) -> TrackFiles:
    """Write MIDI, WAV, MP3, stems, cut-downs, the loop and the sidecar into `out_dir/<basename>/`;
    every audio file carries the tags of library/tags.py and `cover_png` (the library's cover) as its art.

    `form` (the bars of a beat-time track) and `render` (MIDI -> mix, as the track was rendered)
    make the loop and the cut-downs by whole bars from `midi`; without them there is no loop and the
    cut-downs are the mix faded out.

    `mastered` is any object with mix (N,2), stems {role: (N,2)}, sample_rate, integrated_lufs,
    true_peak_dbtp, gain_db, reached_target and note; or None for a MIDI-only track (settings that
    write no audio): MIDI and sidecar, its loudness and audio fields null but audio.duration_s
    (info.duration_s). All or nothing: see the module docstring.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = track_basename(info)
    track_json = _json_ready(info)
    if mastered is None:
        if midi is None or settings.write_wav or settings.write_mp3 or settings.write_stems:
            raise GeneratorError(f"track {info.track_id!r}: no audio was rendered; export it with MIDI and "
                                 "write_wav, write_mp3 and write_stems all off")
        mix = None
    else:
        mix = to_stereo(mastered.mix)  # (N, 2)
        if mix.shape[0] == 0:
            raise GeneratorError(f"track {info.track_id!r}: the mastered mix is empty; nothing to export")
    _remove_stale_staging(out_dir, base)
    staging = out_dir / f".partial-{base}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        bars = (midi, form, render) if midi is not None and form is not None and render is not None else None
        job = _Job(staging, info, settings, cover_png, bars)
        sidecar = _export_into(job, base, track_json, midi, mix, mastered, piano_roll_notes)
        install_folder(staging, out_dir / base)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _track_files(out_dir / base, sidecar)


def _export_into(
    job: _Job, base: str, track_json: dict[str, Any], midi: Any, mix: np.ndarray, mastered: Any,
    roll_notes: Iterable[Sequence[Any]] | None,
) -> dict[str, Any]:
    staging, info, settings = job.staging, job.info, job.settings
    if mastered is None:
        return _export_midi_only(staging, base, info, track_json, midi, roll_notes)
    rate_in = int(mastered.sample_rate)
    wav_mix = resample(mix, rate_in, settings.wav_sample_rate)  # (Nw, 2)
    mp3_mix = (wav_mix if settings.mp3_sample_rate == settings.wav_sample_rate
               else resample(mix, rate_in, settings.mp3_sample_rate))  # (Nm, 2)
    files: dict[str, Any] = {"midi": None, "wav": None, "mp3": None}
    if midi is not None:
        with atomic_path(staging / f"{base}.mid") as tmp:
            midi.write(str(tmp))
        files["midi"] = f"{base}.mid"
    duration_s = wav_mix.shape[0] / settings.wav_sample_rate
    full = FileTags(info.title, "full", duration_s, float(mastered.integrated_lufs), float(mastered.true_peak_dbtp))
    written = _write_audio_set(job, base, wav_mix, mp3_mix, full)
    files.update({k: v for k, v in written.items() if k in ("wav", "mp3")})
    files["stems"] = _write_stems(job, base, mastered, wav_mix.shape[0]) if settings.write_stems else {}
    edits = replace(job, mp3_first_trim_db=written.get("mp3_peak_trim_db") or 0.0)
    files["cutdowns"] = _write_cutdowns(edits, base, wav_mix)
    files["loop"] = _write_loop(edits, base, wav_mix, float(mastered.integrated_lufs))
    files["sidecar"] = f"{base}.json"
    lows, highs = envelope(wav_mix, WAVEFORM_POINTS)
    data = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "generator": f"gen {__version__}",
        "track": track_json,
        "loudness": {
            "integrated_lufs": float(mastered.integrated_lufs), "true_peak_dbtp": float(mastered.true_peak_dbtp),
            "gain_db": float(mastered.gain_db), "reached_target": bool(mastered.reached_target),
            "note": str(mastered.note),
            **{key: written.get(key) for key in ("mp3_true_peak_dbtp", "mp3_peak_trim_db", "mp3_integrated_lufs")},
        },
        "audio": {
            "duration_s": round(duration_s, 6), "frames": int(wav_mix.shape[0]),
            "wav_sample_rate": settings.wav_sample_rate, "wav_bits": settings.wav_bits,
            "mp3_sample_rate": settings.mp3_sample_rate, "mp3_kbps": settings.mp3_kbps,
        },
        "files": files,
        "piano_roll": piano_roll(midi, roll_notes, duration_s),
        "waveform": {"points": len(lows), "min": lows, "max": highs},
    }
    _write_sidecar(staging, files["sidecar"], data)
    return data


def _export_midi_only(
    staging: Path, base: str, info: TrackInfo, track_json: dict[str, Any], midi: Any,
    roll_notes: Iterable[Sequence[Any]] | None,
) -> dict[str, Any]:
    """MIDI and a sidecar whose audio facts are null: nothing was rendered, so nothing was measured."""
    midi.write(str(staging / f"{base}.mid"))
    files = {"midi": f"{base}.mid", "wav": None, "mp3": None, "stems": {}, "cutdowns": {}, "loop": None,
             "sidecar": f"{base}.json"}
    duration_s = float(info.duration_s)
    data = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "generator": f"gen {__version__}",
        "track": track_json,
        "loudness": {"integrated_lufs": None, "true_peak_dbtp": None, "gain_db": None, "reached_target": None,
                     "note": "MIDI only: no audio rendered", "mp3_true_peak_dbtp": None, "mp3_peak_trim_db": None,
                     "mp3_integrated_lufs": None},
        "audio": {"duration_s": round(duration_s, 6), "frames": None, "wav_sample_rate": None, "wav_bits": None,
                  "mp3_sample_rate": None, "mp3_kbps": None},
        "files": files,
        "piano_roll": piano_roll(midi, roll_notes, duration_s),
        "waveform": {"points": 0, "min": [], "max": []},
    }
    _write_sidecar(staging, files["sidecar"], data)
    return data


def _write_sidecar(staging: Path, name: str, data: dict[str, Any]) -> None:
    """The sidecar, last (its presence means the track is complete), with the size and SHA-256 of
    every other file of the track, so a re-run can tell a damaged track from a finished one."""
    data["checksums"] = folder_checksums(staging, skip=name)
    write_json_atomic(staging / name, data)


def _write_stems(job: _Job, base: str, mastered: Any, frames: int) -> dict[str, str]:
    """One file per role at the WAV rate and bit depth, exactly as long as the WAV mix."""
    stems = dict(mastered.stems or {})
    if not stems:
        return {}
    (job.staging / "stems").mkdir()
    settings, info = job.settings, job.info
    rate_in, mix_frames = int(mastered.sample_rate), len(mastered.mix)
    written: dict[str, str] = {}
    for role, name in _unique_roles(stems).items():
        if len(stems[role]) != mix_frames:
            log.warning("track %s: stem %r has %d frames, the mix %d; padded/trimmed to the mix",
                        info.track_id, role, len(stems[role]), mix_frames)
        audio = fit_length(resample(to_stereo(stems[role]), rate_in, settings.wav_sample_rate), frames)
        tags = FileTags(f"{info.title} (stem: {role})", f"stem:{role}", frames / settings.wav_sample_rate)
        written[role] = _write_wav(job, f"stems/{base}-{name}.{settings.stem_format}", audio, tags)
    return written


def _write_cutdowns(job: _Job, base: str, wav_mix: np.ndarray) -> dict[str, dict[str, Any]]:
    """A cut-down per length: by whole bars (edits.make_cutdown) given the track's bars, else the
    mix faded out (edits.faded_cutdown); lengths the track is not longer than are skipped."""
    settings, info = job.settings, job.info
    written: dict[str, dict[str, Any]] = {}
    if not (settings.write_wav or settings.write_mp3):
        return written
    rate, edit_settings = settings.wav_sample_rate, _edit_settings(settings)
    for length_s in sorted({int(c) for c in settings.cutdowns_s}, reverse=True):
        if job.bars is not None:
            midi, form, render = job.bars
            edit = make_cutdown(midi, form, length_s, render, rate, edit_settings)
        else:
            edit = faded_cutdown(wav_mix, rate, length_s, edit_settings, fade_s=settings.cutdown_fade_s,
                                 search_s=settings.cutdown_search_s)
        if edit is None:
            log.info("track %s: %.1f s long, no %d s cut-down", info.track_id, wav_mix.shape[0] / rate, length_s)
            continue
        label = f"{length_s}s"
        written[str(length_s)] = _write_edit(job, f"{base}-{label}", edit, f"{info.title} ({label})", str(length_s))
    return written


def _write_loop(job: _Job, base: str, wav_mix: np.ndarray, lufs: float) -> dict[str, Any] | None:
    """The loop (edits.make_loop) of a track with bars, when the settings ask for it; its join held to
    the mastered track's music too (`wav_mix`, measured at `lufs` by the master)."""
    settings = job.settings
    if job.bars is None or not settings.loop or not (settings.write_wav or settings.write_mp3):
        return None
    midi, form, render = job.bars
    edit = make_loop(midi, form, render, settings.wav_sample_rate, _edit_settings(settings), settings.loop_bars,
                     track_reference(wav_mix, form, settings.wav_sample_rate, lufs))
    if edit is None:
        log.info("track %s: no bar to loop", job.info.track_id)
        return None
    return _write_edit(job, f"{base}-loop", edit, f"{job.info.title} (loop)", "loop")


def _edit_settings(settings: ExportSettings) -> EditSettings:
    return EditSettings(target_lufs=settings.target_lufs, ceiling_dbtp=settings.ceiling_dbtp,
                        ending_fade_s=settings.ending_fade_s)


def _write_edit(job: _Job, stem: str, edit: Edit, title: str, version: str) -> dict[str, Any]:
    """WAV/MP3 of one edit, tagged with its own loudness; its sidecar entry."""
    settings = job.settings
    mp3_audio = (edit.audio if settings.mp3_sample_rate == edit.sample_rate
                 else resample(edit.audio, edit.sample_rate, settings.mp3_sample_rate))
    tags = FileTags(title, version, edit.facts["duration_s"], edit.integrated_lufs, edit.true_peak_dbtp)
    written = _write_audio_set(job, stem, edit.audio, mp3_audio, tags)
    return {**edit.facts, "integrated_lufs": round(edit.integrated_lufs, 3),
            "true_peak_dbtp": round(edit.true_peak_dbtp, 3), "reached_target": edit.reached_target, **written}


def _track_files(folder: Path, data: dict[str, Any]) -> TrackFiles:
    files = data["files"]

    def path(rel: str | None) -> Path | None:
        return folder / rel if rel else None

    return TrackFiles(
        folder=folder, midi=path(files["midi"]), wav=path(files.get("wav")), mp3=path(files.get("mp3")),
        stems={role: folder / rel for role, rel in files["stems"].items()},
        cutdowns={int(k): {fmt: folder / v[fmt] for fmt in ("wav", "mp3") if fmt in v}
                  for k, v in files["cutdowns"].items()},
        sidecar=folder / files["sidecar"],
        loop={fmt: folder / loop[fmt] for fmt in ("wav", "mp3") if fmt in loop}
        if isinstance(loop := files.get("loop"), dict) else {},
    )
