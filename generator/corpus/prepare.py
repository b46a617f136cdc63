"""Corpus preparation: sources -> token shards with provenance.

`prepare(options)` lists the jobs of each source, builds each piece in worker processes (cached as
MIDI, so a rerun or a longer run only adds what is new), tokenizes it with the default encoding,
splits by work (a stable hash of the underlying work: ~90/5/5 per genre) and writes
`shards/{train,valid,test}.npz`, `pieces.jsonl`, `prepare_report.txt` and `SOURCES.md`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import multiprocessing
import re
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generator.corpus.shards import SHARD_ENCODING
from generator.corpus.sources import SOURCES, Job, cache_id, list_jobs, load_job, stable_hash
from generator.errors import InputError
from generator.files import atomic_path, atomic_write_text
from generator.tokens import vocab

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
CACHE_VERSION = 2  # bump when a loader changes its output (2: beat grid, bars and chord marks kept)
MIN_NOTES = 16
MIN_SECONDS = 8.0
MIN_HELD_OUT_PER_GENRE = 3
DEFAULT_LIMITS = {
    "music21": 10_000, "lieder": 500, "calm-lieder": 300, "jazz-mma": 300, "pop-nottingham": 320, "pop-mma": 60,
    "calm-charts": 150, "calm-nottingham": 120,
}


@dataclass(frozen=True)
class PrepareOptions:
    out: Path
    shared: Path
    sources: tuple[str, ...] = tuple(DEFAULT_LIMITS)
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    max_minutes: float | None = None
    workers: int = 2
    timeout_s: float = 240.0
    cache: Path | None = None
    only: tuple[str, ...] = ()  # when given, just these piece ids (debugging, tests)


@dataclass(frozen=True)
class PieceResult:
    job: Job
    tokens: np.ndarray | None  # uint16
    seconds: float
    reason: str | None  # why the piece was skipped


# --------------------------------------------------------------------------- one piece


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):  # noqa: ARG001
    raise _Timeout()


def check_midi(pm) -> str | None:
    """Why a PrettyMIDI is unusable for training, or None."""
    notes = sum(len(i.notes) for i in pm.instruments if not i.is_drum)
    if notes == 0 and any(i.notes for i in pm.instruments):
        return "drums only"
    if notes < MIN_NOTES:
        return f"empty or too short ({notes} pitched notes)"
    if pm.get_end_time() < MIN_SECONDS:
        return f"too short ({pm.get_end_time():.1f} s)"
    return None


def _cache_path(cache: Path, job: Job) -> Path:
    folder, key = cache_id(job)
    return cache / folder / f"{stable_hash(f'{key}|{CACHE_VERSION}'):016x}"


def _build_midi(job: Job, cache: Path | None, timeout_s: float):
    """Load (or build and cache) the job's MIDI; returns (PrettyMIDI | None, reason | None)."""
    import pretty_midi

    base = _cache_path(cache, job) if cache else None
    if base and base.with_suffix(".skip").is_file():
        reason = base.with_suffix(".skip").read_text().strip().removeprefix("ArrangeError: ")
        limit = re.match(r"timeout after (\d+) s", reason)
        if not limit or float(limit.group(1)) >= timeout_s:
            return None, reason  # a timeout under a shorter limit is tried again
    if base and base.with_suffix(".mid").is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(str(base.with_suffix(".mid"))), None
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = load_job(job)
        reason = None
    except _Timeout:
        pm, reason = None, f"timeout after {timeout_s:.0f} s"
    except Exception as error:  # noqa: BLE001 - any parse/render failure skips the piece
        pm, reason = None, _reason(error)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if pm is None:
        if base:
            atomic_write_text(base.with_suffix(".skip"), reason or "unknown")
        return None, reason
    # Tokenize what the cache holds (MIDI ticks round times), so a rerun from the cache is identical.
    with tempfile.TemporaryDirectory(prefix="gen-data-") as tmp:
        path = base.with_suffix(".mid") if base else Path(tmp) / "piece.mid"
        with atomic_path(path) as partial:
            pm.write(str(partial))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(str(path)), None


def _reason(error: Exception) -> str:
    from generator.corpus.arrangers.arranger import ArrangeError

    detail = " ".join(str(error).split())[:160]
    if isinstance(error, ArrangeError):
        return detail
    return f"{type(error).__name__}: {detail}" if detail else f"{type(error).__name__} (unreadable input)"


def prepare_piece(job: Job, cache: Path | None = None, timeout_s: float = 240.0) -> PieceResult:
    """Build, check and tokenize one piece; a failure is a result with a reason, never a raise."""
    from generator.tokens.tokenizer import midi_to_ids

    pm, reason = _build_midi(job, cache, timeout_s)
    if pm is not None:
        reason = check_midi(pm)
    if reason:
        return PieceResult(job, None, 0.0, reason)
    try:
        ids = midi_to_ids(pm, encoding=SHARD_ENCODING)
    except Exception as error:  # noqa: BLE001
        return PieceResult(job, None, 0.0, f"tokenizer: {type(error).__name__}: {error}"[:200])
    if not ids or max(ids) >= SHARD_ENCODING.vocab_size:
        return PieceResult(job, None, 0.0, "no tokens")
    # Seconds as the source plays (the beat encoding's own clock runs at its reference tempo).
    return PieceResult(job, np.asarray(ids, dtype=np.uint16), float(pm.get_end_time()), None)


def _worker(args) -> PieceResult:
    job, cache, timeout_s = args
    return prepare_piece(job, cache, timeout_s)


# --------------------------------------------------------------------------- many pieces


def interleave(groups: list[list[Job]]) -> list[Job]:
    """Round-robin over sources so a time-bounded run covers every genre."""
    out: list[Job] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out += [g[i] for g in groups if i < len(g)]
    return out


def run_jobs(jobs: list[Job], options: PrepareOptions, on_result=None) -> tuple[list[PieceResult], int]:
    """Process jobs with `options.workers` processes; returns (results, jobs not started in time)."""
    deadline = time.monotonic() + options.max_minutes * 60 if options.max_minutes else None
    results: list[PieceResult] = []
    args = [(job, options.cache, options.timeout_s) for job in jobs]
    if options.workers <= 1:
        for index, arg in enumerate(args):
            if deadline and time.monotonic() > deadline:
                return results, len(args) - index
            results.append(_worker(arg))
            if on_result:
                on_result(results[-1])
        return results, 0
    context = multiprocessing.get_context("fork")
    with context.Pool(options.workers, maxtasksperchild=200) as pool:
        pending, next_index = [], 0
        while next_index < len(args) or pending:
            # Keep every worker busy; collect whichever result is ready (no head-of-line wait).
            while next_index < len(args) and len(pending) < 2 * options.workers:
                if deadline and time.monotonic() > deadline:
                    break
                pending.append(pool.apply_async(_worker, (args[next_index],)))
                next_index += 1
            if not pending:
                break
            ready = [p for p in pending if p.ready()]
            if not ready:
                time.sleep(0.05)
                continue
            for item in ready:
                pending.remove(item)
                results.append(item.get())
                if on_result:
                    on_result(results[-1])
        return results, len(args) - next_index


# --------------------------------------------------------------------------- splits and shards


def split_of(split_key: str) -> str:
    """~90% train, 5% valid, 5% test from a stable hash of the work."""
    bucket = stable_hash(f"split|{split_key}") % 1000
    return "train" if bucket < 900 else "valid" if bucket < 950 else "test"


def assign_splits(results: list[PieceResult]) -> dict[str, str]:
    """piece id -> split; a genre short of held-out works borrows its lowest-hash training works."""
    splits = {r.job.id: split_of(r.job.split_key) for r in results}
    for genre in vocab.GENRES:
        mine = [r for r in results if SOURCES[r.job.source].genre == genre]
        for held_out in ("valid", "test"):
            keys = {r.job.split_key for r in mine if splits[r.job.id] == held_out}
            candidates = sorted({r.job.split_key for r in mine if splits[r.job.id] == "train"},
                                key=lambda k: stable_hash(f"{held_out}|{k}"))
            need = MIN_HELD_OUT_PER_GENRE - len(keys)
            if need > 0 and len(candidates) > need * 4:
                moved = set(candidates[:need])
                for r in mine:
                    if r.job.split_key in moved:
                        splits[r.job.id] = held_out
    return splits


def _atomic_savez(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp:  # keeps the .npz suffix, so numpy adds none
        np.savez_compressed(tmp, **arrays)


def piece_rows(kept: list[PieceResult], splits: dict[str, str]) -> list[dict]:
    rows = []
    for result in kept:
        job, info = result.job, SOURCES[result.job.source]
        rows.append({
            "id": job.id, "title": job.title, "composer": job.composer, "genre": info.genre,
            "source": info.title, "source_version": source_version(job.source),
            "licence": info.licence, "licence_class": info.licence_class, "synthetic": info.synthetic,
            "split": splits[job.id], "n_tokens": int(result.tokens.size),
            "seconds": round(result.seconds, 2),
        })
    return rows


def write_outputs(out: Path, kept: list[PieceResult], splits: dict[str, str]) -> list[dict]:
    """Write pieces.jsonl and the three shards; returns the piece rows."""
    kept = sorted(kept, key=lambda r: r.job.id)
    rows = piece_rows(kept, splits)
    for split in SPLITS:
        index = [i for i, row in enumerate(rows) if row["split"] == split]
        arrays = [kept[i].tokens for i in index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([a.size for a in arrays]) if arrays else []
        tokens = np.concatenate(arrays).astype(np.uint16) if arrays else np.zeros(0, np.uint16)
        genre = np.array([vocab.GENRES.index(rows[i]["genre"]) for i in index], dtype=np.int8)
        _atomic_savez(out / "shards" / f"{split}.npz", tokens=tokens, offsets=offsets, genre=genre,
                      piece=np.array(index, dtype=np.int32), encoding=np.asarray(SHARD_ENCODING.name))
    atomic_write_text(out / "pieces.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return rows



@functools.cache
def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


@functools.cache
def _mma_version() -> str:
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "mma"], capture_output=True,
                              text=True, timeout=10)
        return done.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def source_version(source: str) -> str:
    """Package and snapshot versions a piece was built from."""
    if source == "music21":
        return f"music21 {_package_version('music21')}"
    if source in ("lieder", "calm-lieder"):
        return "OpenScore/Lieder@bca1224"
    if source in ("jazz-mma", "pop-mma", "calm-charts"):
        return f"JazzStandards@47ca0d6; mma {_mma_version()}"
    return f"nottingham-dataset@0992bb6; mma {_mma_version()}"


# --------------------------------------------------------------------------- the whole run


@dataclass(frozen=True)
class PrepareReport:
    rows: list[dict]
    skipped: list[tuple[str, str]]  # (piece id, reason)
    not_reached: dict[str, int]  # per source: candidates beyond the limit or the time


def prepare(options: PrepareOptions, command: str = "gen data prepare", on_result=None) -> PrepareReport:
    """Build every output under `options.out` from the selected sources."""
    from generator.corpus import report as data_report

    groups, not_reached = [], {}
    for source in options.sources:
        if source not in SOURCES:
            raise InputError(f"--sources: unknown source {source!r}; fix: use one of {', '.join(SOURCES)}")
        jobs = list_jobs(source, options.shared)
        if options.only:
            jobs = [job for job in jobs if job.id in options.only]
        limit = options.limits.get(source, len(jobs))
        groups.append(jobs[:limit])
        not_reached[source] = max(0, len(jobs) - limit)
    ordered = interleave(groups)
    results, _ = run_jobs(ordered, options, on_result)
    done_ids = {r.job.id for r in results}
    for job in ordered:
        if job.id not in done_ids:
            not_reached[job.source] += 1
    kept = [r for r in results if r.reason is None]
    skipped = [(r.job.id, r.reason or "") for r in results if r.reason is not None]
    rows = write_outputs(options.out, kept, assign_splits(kept))
    skip_counts: dict[str, int] = {}
    for r in results:
        if r.reason is not None:
            skip_counts[r.job.source] = skip_counts.get(r.job.source, 0) + 1
    atomic_write_text(options.out / "SOURCES.md",
                       data_report.sources_markdown(rows, skip_counts, not_reached, command))
    report = "\n\n".join([
        data_report.genre_table(rows),
        data_report.source_table(rows, skip_counts, not_reached),
        f"skipped ({len(skipped)}):\n" + data_report.skipped_lines(skipped),
    ]) + "\n"
    atomic_write_text(options.out / "prepare_report.txt", report)
    return PrepareReport(rows, skipped, not_reached)
