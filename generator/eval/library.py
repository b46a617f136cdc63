"""`gen eval --library`: measure the tracks a library ships, not tracks sampled for the occasion.

A `gen batch` library holds, per track, a JSON sidecar and the MIDI file it names. Each MIDI file
is read back into tokens in the encoding of the corpus shards, so a library track and a real
piece are measured alike; a beat-time reading is played back at the file's tempo. Everything
a library has that sampling alone has not (the planned form, the template harmony, the
recipe's instruments, the key transposition) is in the MIDI file, so it is what gets measured.

Like a sampled track, a library track is judged over its first `seconds` (features, genre
classifier, musicality, loops), the length the real excerpts are cut to; its duration, ending
and copies are judged over the whole track. No model is involved: there is no held-out NLL.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from generator.errors import InputError
from generator.eval import features as F
from generator.eval.evaluate import EvalReport, EvalSettings, GeneratedTrack, Stage, evaluate_tracks, load_shards
from generator.tokens import vocab
from generator.tokens.encoding import Encoding

log = logging.getLogger(__name__)

_SEED_PREFIX = re.compile(r"^seed -?\d+: ")  # the batch's "seed 123: phrase_loop: ..." rejection records


@dataclass(frozen=True)
class LibraryTrack(GeneratedTrack):
    """A track read back from a library's MIDI file; target_s is the duration its recipe asked for."""

    music_s: float | None = None  # the sidecar's length of the music (track.extra.music_duration_s)

    def seconds(self) -> float:
        """The whole track's length: the music as composed, trailing silence of its last bar included
        (a MIDI file ends at its last note)."""
        return self.music_s if self.music_s is not None else super().seconds()

    def measured(self, seconds: float) -> tuple[list, float]:
        """Its first `seconds` (notes starting there, cut at the end), as the real excerpts are cut."""
        length_s = min(seconds, self.seconds())
        return F.excerpt(self.notes(), 0.0, length_s), length_s


def library_sidecars(folder: str | Path) -> list[tuple[dict[str, Any], Path]]:
    """(data, path) of every track sidecar under `folder`; InputError when there is none."""
    from generator.library.folders import check_library_folder
    from generator.library.sidecar import read_sidecars

    resolved = check_library_folder(folder, "library folder")
    if not resolved.is_dir():
        raise InputError(f"{folder}: no such folder; pass the folder `gen batch` wrote the library to")
    found = list(read_sidecars([resolved]))
    if not found:
        raise InputError(f"{folder}: no track sidecars (*.json with schema 'gen.track') found; "
                         "pass the folder `gen batch` wrote the library to")
    return found


def _seconds(extra: dict[str, Any], key: str, path: Path) -> float:
    value = extra.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{path}: key 'track.extra.{key}' = {value!r} is not a duration in seconds; "
                         "the sidecar is damaged or was not written by `gen batch`")
    return float(value)


def _tempo(pm: Any, path: Path) -> float:
    """The file's tempo in BPM (`gen batch` writes one); the first of several, with a warning."""
    _, tempi = pm.get_tempo_changes()
    if len(set(round(float(t), 3) for t in tempi)) > 1:
        log.warning("%s: %d tempo changes; its beat-time reading is played at the first, %.3g BPM",
                    path, len(tempi), tempi[0])
    return round(float(tempi[0]), 3) if len(tempi) else vocab.REFERENCE_BPM


def library_track(data: dict[str, Any], path: Path, encoding: Encoding) -> LibraryTrack | None:
    """The track of one sidecar, its MIDI file read as `encoding` tokens; None when it names no MIDI file."""
    from generator.library.sidecar import is_safe_relative
    from generator.tokens.tokenizer import load_midi, midi_to_ids

    track = data["track"]
    try:
        genre = vocab.canonical_genre(track["genre"])
    except KeyError:
        raise InputError(f"{path}: track.genre '{track['genre']}' is none of {', '.join(vocab.GENRES)}") from None
    name = data["files"].get("midi")
    if name is None:
        return None
    if not is_safe_relative(name):
        raise InputError(f"{path}: files.midi {name!r} leaves the track folder; the sidecar is damaged")
    midi = path.parent / name
    pm = load_midi(midi)
    extra = track.get("extra") if isinstance(track.get("extra"), dict) else {}
    reasons = extra.get("rejections") if isinstance(extra.get("rejections"), list) else []
    seed = track.get("seed")
    return LibraryTrack(
        genre, seed if isinstance(seed, int) else 0, _seconds(extra, "target_duration_s", path),
        tuple(midi_to_ids(pm, encoding=encoding)), tuple(_SEED_PREFIX.sub("", str(r)) for r in reasons),
        encoding, _tempo(pm, midi) if encoding.has_bars else None,
        music_s=_seconds(extra, "music_duration_s", path))


def _made_by(sidecars: Sequence[tuple[dict[str, Any], Path]]) -> list[str]:
    return sorted({str(data["track"].get("model")) for data, _ in sidecars if data["track"].get("model")})


def run_library_eval(folder: str | Path, settings: EvalSettings, data_dir: str | Path, *,
                     stage: Stage | None = None) -> EvalReport:
    """Measure every track of the library in `folder` against the corpus shards of `data_dir`.

    settings.genres and settings.per_genre become the library's genres and its most tracks of
    one genre; the sampling settings (max_attempts, instrumentation, NLL tokens) play no part."""
    stage = stage or (lambda name: None)
    start = time.monotonic()
    stage("read library")
    sidecars = library_sidecars(folder)
    train, test = load_shards(data_dir)
    tracks, skipped = [], []
    for data, path in sidecars:
        track = library_track(data, path, train.encoding)
        if track is None:
            skipped.append(str(path))
        else:
            tracks.append(track)
    if not tracks:
        raise InputError(f"{folder}: none of its {len(sidecars)} track sidecars names a MIDI file, "
                         "and `gen eval --library` measures MIDI files")
    if skipped:
        log.warning("%d track(s) without a MIDI file not measured, e.g. %s", len(skipped), skipped[0])
    counts = Counter(t.genre for t in tracks)
    settings = replace(settings, genres=tuple(g for g in vocab.GENRES if g in counts), per_genre=max(counts.values()))
    timings = {"read_s": time.monotonic() - start}
    start = time.monotonic()
    report = evaluate_tracks(tracks, train, test, settings, stage)
    timings["measure_s"] = time.monotonic() - start
    meta = {"library": str(folder), "sampled": False, "checkpoint": None, "sampling": None,
            "made_by": _made_by(sidecars),
            "tracks_per_genre": {g: counts[g] for g in settings.genres}, "without_midi": skipped,
            "timings": timings, "train_pieces": len(train), "test_pieces": len(test)}
    return replace(report, meta=meta)
