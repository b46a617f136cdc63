"""run_batch: recipe -> finished library. The only place that knows the order of the stages.

Tracks are sampled in fixed groups of plan.GROUP_SIZE consecutive tracks, whatever the shard, limit
or resume history, so a track's MIDI bytes depend only on the recipe: a group is resampled as a
whole when any of its tracks is missing, and only the missing ones are exported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import GeneratorError, InputError
from generator.files import atomic_write_bytes, remove_temps, write_failure
from generator.library import style
from generator.library.delivery import COVER_NAME, track_words
from generator.library.fingerprint import Fingerprint, track_fingerprints
from generator.library.folders import check_library_folder
from generator.library.integrity import track_files
from generator.library.lock import OutputLock
from generator.library.manifest import Manifest
from generator.library.plan import GROUP_SIZE, TrackPlan, plan_tracks, shard_tracks
from generator.library.recipe import Recipe
from generator.library.resume import remove_folder, tracks_to_redo
from generator.tokens import vocab

if TYPE_CHECKING:
    from generator.audio.edit_plan import Form
    from generator.audio.edits import Render
    from generator.library.form import FormPlan
    from generator.sampling.loops import LoopLimits

log = logging.getLogger(__name__)

STAGES = ("sample", "render", "master", "export", "catalogue")  # catalogue: index.html, the upload sheet, the cover

# on_progress(event, track_id, done, total): event is a stage name, "track_done" or "track_failed".
Progress = Callable[[str, str, int, int], None]


@dataclass
class TrackOutcome:
    track_id: str
    title: str
    genre: str
    status: str  # "done" | "skipped" (finished by an earlier run) | "given_up"
    duration_s: float = 0.0
    integrated_lufs: float | None = None
    rejections: list[str] = field(default_factory=list)
    folder: str | None = None


@dataclass
class BatchReport:
    out_dir: Path
    tracks: list[TrackOutcome]
    stage_s: dict[str, float]
    wall_s: float
    catalogue: Path | None

    @property
    def given_up(self) -> list[TrackOutcome]:
        return [t for t in self.tracks if t.status == "given_up"]

    def as_dict(self) -> dict:
        return {
            "out_dir": str(self.out_dir),
            "wall_s": round(self.wall_s, 3),
            "stage_s": {k: round(v, 3) for k, v in self.stage_s.items()},
            "catalogue": str(self.catalogue) if self.catalogue else None,
            "tracks": [vars(t) for t in self.tracks],
        }


def selected_plans(plans: list[TrackPlan], *, shard: str | None, limit: int | None) -> list[TrackPlan]:
    """The part of a recipe's whole plan that this run makes."""
    if shard:
        plans = shard_tracks(plans, shard)
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit {limit}: use a whole number >= 1")
        plans = plans[:limit]
    return plans


def check_device(device: str | None) -> None:
    """A `--device` override must be cpu, cuda or cuda:N, and a CUDA one must be visible here."""
    if device not in (None, "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"--device {device!r}: use cpu, cuda or cuda:N")
    if device and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: no CUDA GPU is visible here; use --device cpu")


def _write_errors_in_one_line(run: Callable[..., BatchReport]) -> Callable[..., BatchReport]:
    """A failed write (full disk, quota, read-only or unwritable folder, I/O error, a file where the
    folder should be) becomes a GeneratorError naming the path and the fix. Nothing finished is lost:
    export removes the half-made track's staging folder, and the manifest is replaced atomically."""

    @functools.wraps(run)
    def guarded(recipe: Recipe, recipe_label: str, **options) -> BatchReport:
        try:
            return run(recipe, recipe_label, **options)
        except OSError as error:
            raise GeneratorError(write_failure(error, options.get("out_dir") or recipe.output)) from error

    return guarded


@_write_errors_in_one_line
def run_batch(recipe: Recipe, recipe_label: str, *, out_dir: Path | None = None, limit: int | None = None,
              shard: str | None = None, device: str | None = None, rebuild_changed: bool = False,
              on_progress: Progress | None = None, jobs: int | None = None) -> BatchReport:
    """Make every planned track that is not finished yet, then (re)build the catalogue.

    A finished track whose fingerprint differs from what the recipe, model and SoundFont give now
    is refused (RecipeError, before anything is touched) or, with rebuild_changed, made again; a
    finished track whose files are missing or damaged is made again. `jobs` threads finish sampled
    tracks (render, master, export) while the next group samples; None: one per CPU.
    """
    started = time.monotonic()
    out_dir = Path(out_dir or recipe.output)
    all_plans = plan_tracks(recipe)
    plans = selected_plans(all_plans, shard=shard, limit=limit)
    group_of = _groups(all_plans)  # whole groups are sampled together, whatever this run makes
    stage_s = dict.fromkeys(STAGES, 0.0)
    notify = on_progress or (lambda *args: None)
    check_library_folder(out_dir, "output folder")
    with OutputLock(out_dir):
        remove_temps(out_dir)  # of an atomic write a killed run left (manifest.json, index.html)
        manifest = Manifest.load(out_dir, recipe.name)  # rebuilt from the sidecars when missing or damaged
        fingerprints = track_fingerprints(recipe, plans, _soundfont_path(recipe))
        redo = tracks_to_redo(out_dir, manifest, plans, fingerprints, rebuild_changed,
                              planned={p.track_id for p in all_plans})
        _remove_partials(out_dir)
        if manifest.tracks or manifest.path.exists():
            manifest.save()  # rebuilt from the sidecars, new audio mtimes, tracks removed: else not rewritten
        total = len(plans)
        ledger = _Ledger(manifest, stage_s, notify, total)
        for p in plans:
            if p.track_id in manifest.tracks and p.track_id not in redo:
                ledger.finished(_skipped(p, manifest))
        todo = [p for p in plans if p.track_id not in ledger.outcomes]
        if todo:
            context = _Context.load(recipe, recipe_label, device or recipe.device, fingerprints)
            _make_tracks(context, todo, group_of, out_dir, ledger, jobs or default_jobs())
        outcomes, done = ledger.outcomes, ledger.done
        catalogue = None
        if any(o.status != "given_up" for o in outcomes.values()):
            notify("catalogue", "", done, total)
            start = time.monotonic()
            catalogue = _library_files(recipe, out_dir)
            stage_s["catalogue"] += time.monotonic() - start
    tracks = [outcomes[p.track_id] for p in plans]
    return BatchReport(out_dir, tracks, stage_s, time.monotonic() - started, catalogue)


def _library_files(recipe: Recipe, out_dir: Path) -> Path | None:
    """The files of the whole library, made anew from the sidecars on every run (so a resumed or
    extended library lists every track): the cover, the upload sheet and, if asked for, index.html."""
    from generator.library.cover import cover_png
    from generator.library.sheet import build_sheet

    atomic_write_bytes(out_dir / COVER_NAME, cover_png(recipe.name, recipe.seed))
    build_sheet([out_dir], out_dir)
    if not recipe.outputs.catalogue:
        return None
    from generator.library.catalogue import build_catalogue

    return build_catalogue([out_dir], out_dir)


def _soundfont_path(recipe: Recipe) -> Path | None:
    if not renders_audio(recipe):
        return None
    from generator.audio.soundfonts import resolve_soundfont

    return Path(resolve_soundfont(recipe.soundfont).path)


def _remove_partials(out_dir: Path) -> None:
    """Staging (and swapped-out) folders of a killed run: never finished, so never in the manifest."""
    for partial in [*out_dir.glob(".partial-*"), *out_dir.glob(".old-*")]:
        shutil.rmtree(partial, ignore_errors=True)


def _skipped(plan: TrackPlan, manifest: Manifest) -> TrackOutcome:
    record = manifest.tracks[plan.track_id]
    return TrackOutcome(plan.track_id, plan.title, plan.genre, "skipped", record.get("duration_s", 0.0),
                        record.get("integrated_lufs"), [], record.get("folder"))


def _groups(plans: list[TrackPlan]) -> dict[int, list[TrackPlan]]:
    """Sampling group number -> its plans, in plan order."""
    groups: dict[int, list[TrackPlan]] = {}
    for plan in plans:
        groups.setdefault(plan.index // GROUP_SIZE, []).append(plan)
    return groups


@dataclass(frozen=True)
class _Context:
    """What every track of one run shares: the model, the SoundFont, the settings."""

    recipe: Recipe
    recipe_label: str
    device: str
    model: object
    model_name: str
    soundfont: object  # None: the recipe asks for no audio, so nothing is rendered
    primer_ids: tuple[int, ...]
    fingerprints: dict[str, Fingerprint]
    beat_time: bool  # the model's encoding keeps bars: bpm, meter and grid go to the sampler
    cover_png: bytes | None  # embedded in every audio file; None when nothing is rendered

    @classmethod
    def load(cls, recipe: Recipe, recipe_label: str, device: str, fingerprints: dict[str, Fingerprint]) -> _Context:
        from generator.audio.soundfonts import resolve_soundfont
        from generator.model.checkpoint import load_checkpoint

        # Fail fast, before any sampling; a recipe that asks for no audio needs no SoundFont.
        soundfont = resolve_soundfont(recipe.soundfont) if renders_audio(recipe) else None
        model, meta = load_checkpoint(recipe.model)
        style.check_beat_time(recipe, recipe_label, model)
        model = model.to(device).eval()
        primer_ids: tuple[int, ...] = ()
        if recipe.sampling.primer is not None:
            from generator.sampling.primer import primer_from_midi

            primer = recipe.sampling.primer
            primer_ids = primer_from_midi(primer.path, primer.seconds or 15.0, from_end=primer.from_end,
                                          encoding=model.encoding)
        name = meta.get("name") or Path(recipe.model).name
        cover = None
        if soundfont is not None:
            from generator.library.cover import EMBED_PX, cover_png

            cover = cover_png(recipe.name, recipe.seed, EMBED_PX)
        return cls(recipe, recipe_label, device, model, str(name), soundfont, primer_ids, fingerprints,
                   style.has_bars(model), cover)


def default_jobs() -> int:
    """Finishing threads when --jobs is not given: one per CPU this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class _Stopped(Exception):
    """A finishing thread saw the run stop (Ctrl-C, SIGTERM, another track's failed write)."""


@dataclass
class _Ledger:
    """What the finishing threads share, behind one lock: the manifest, the stage clocks, the
    outcomes and their count for the progress callback; and the flag that tells them to stop."""

    manifest: Manifest
    stage_s: dict[str, float]
    notify: Progress
    total: int
    outcomes: dict[str, TrackOutcome] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def done(self) -> int:
        return len(self.outcomes)

    @contextlib.contextmanager
    def stage(self, name: str, track_id: str):
        """Announce and time one stage of a track (stage_s sums the threads' seconds); a stopped
        run raises _Stopped here, between stages."""
        if self.stop.is_set():
            raise _Stopped(track_id)
        self.notify(name, track_id, self.done, self.total)
        start = time.monotonic()
        try:
            yield
        finally:
            with self.lock:
                self.stage_s[name] += time.monotonic() - start

    def finished(self, outcome: TrackOutcome) -> None:
        with self.lock:
            self.outcomes[outcome.track_id] = outcome
            event = "track_failed" if outcome.status == "given_up" else "track_done"
            self.notify(event, outcome.track_id, self.done, self.total)

    def stop_if_failed(self, future: Future) -> None:
        """A track that failed stops the others at their next stage."""
        if not future.cancelled() and future.exception() is not None:
            self.stop.set()

    def record(self, track_id: str, record: dict, out_dir: Path) -> None:
        """Enter a finished track in the manifest, and remove the folder it replaced."""
        with self.lock:
            previous = self.manifest.tracks.get(track_id)
            self.manifest.add(track_id, record)
            remove_folder(out_dir, previous, keep=record["folder"])


def _make_tracks(ctx: _Context, todo: list[TrackPlan], group_of: dict[int, list[TrackPlan]], out_dir: Path,
                 ledger: _Ledger, jobs: int) -> None:
    """Sample group after group on this thread (the whole group, for determinism) while `jobs`
    threads finish the wanted tracks already sampled. Finishing spends its time in FluidSynth, numpy
    and LAME, which release the GIL, so the threads run side by side (BENCHMARKS.md). A failure in
    any thread, or an interrupt, stops the rest at their next stage and is raised here."""
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="gen-finish") as pool:
        futures: list[Future] = []
        try:
            for group in _groups(todo).values():
                members = group_of[group[0].index // GROUP_SIZE]
                with ledger.stage("sample", group[0].track_id):
                    composed = _compose(ctx, members)
                wanted = {p.track_id for p in group}
                for plan, result in zip(members, composed):
                    if plan.track_id not in wanted:
                        continue
                    if result.ids is None:
                        ledger.finished(TrackOutcome(plan.track_id, plan.title, plan.genre, "given_up",
                                                     rejections=list(result.rejections)))
                        continue
                    future = pool.submit(_finish_track, ctx, plan, result, out_dir, ledger)
                    future.add_done_callback(ledger.stop_if_failed)
                    futures.append(future)
                _raise_failure(futures)  # before sampling on
            wait(futures)
            _raise_failure(futures)
        except BaseException as error:
            ledger.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            if isinstance(error, _Stopped):  # this thread saw the stop first: raise what caused it
                _raise_failure(futures)
            raise


def _raise_failure(futures: list[Future]) -> None:
    """Raise the error of a finished track that failed (never the _Stopped of those it stopped)."""
    for future in futures:
        if future.done() and not future.cancelled():
            error = future.exception()
            if error is not None and not isinstance(error, _Stopped):
                raise error


@dataclass(frozen=True)
class _Composed:
    ids: tuple[int, ...] | None  # None: given up after the rejection limit
    duration_s: float
    ending: str
    rejections: tuple[str, ...]
    bpm: float | None = None  # beat time: the tempo the track was made at
    meter: tuple[int, int] | None = None  # beat time: its meter
    form: FormPlan | None = None  # its sections and harmony (a recipe with form or harmony)


def _compose(ctx: _Context, members: list[TrackPlan]) -> list[_Composed]:
    from generator.sampling.generate import GenerationRequest
    from generator.sampling.loops import detect, release_after_s
    from generator.sampling.rejection import compose_many

    recipe = ctx.recipe
    beat = ctx.beat_time  # else bpm and meter are unset (style.check_beat_time) and the grid is moot
    requests = [
        GenerationRequest(genre=p.genre, seed=p.seed, duration_s=p.duration_s,
                          params=p.sampling, primer_ids=ctx.primer_ids,
                          ending=recipe.mastering.ending,
                          max_note_s=release_after_s(loop_limits(recipe, p.genre), p.genre),
                          instruments=tuple(sorted(_programs(recipe, p.genre))),
                          bpm=p.bpm if beat else None, meter=p.meter if beat else None,
                          grid=p.grid if beat else None)
        for p in members
    ]
    forms: list[FormPlan | None] = [None] * len(members)
    if beat:
        for i, p in enumerate(members):
            requests[i], forms[i] = style.with_form(p, requests[i])

    def detector(ids, genre, _limits, encoding):
        return detect(ids, genre, loop_limits(recipe, genre), encoding)

    # Rows of a group are sampled side by side, so the per-track budget is the group's budget.
    results = compose_many(ctx.model, requests, max_attempts=recipe.loops.max_attempts, device=ctx.device,
                           batch_size=GROUP_SIZE, time_budget_s=recipe.time_budget_s, detector=detector,
                           finish=style.arranger(forms, ctx.model.encoding))
    composed = []
    for r, form in zip(results, forms):
        reasons = tuple(f"seed {seed}: {reason}" for seed, reason in r.rejections)
        if r.result is None:
            composed.append(_Composed(None, 0.0, recipe.mastering.ending, reasons))
        else:
            bars = r.result.bars
            composed.append(_Composed(r.result.ids, r.result.duration_s, r.result.ending, reasons,
                                      bars.bpm if bars else None, bars.meter if bars else None, form))
    return composed


def _finish_track(ctx: _Context, plan: TrackPlan, composed: _Composed, out_dir: Path, ledger: _Ledger) -> None:
    """Render, master and export one sampled track (on a finishing thread), then enter it in the
    manifest and the ledger's outcomes."""
    from generator.tokens.tokenizer import ids_to_midi

    ids, semitones = style.in_key(plan, composed.ids, ctx.model)
    midi = ids_to_midi(ids, programs=_programs(ctx.recipe, plan.genre), encoding=ctx.model.encoding,
                       bpm=composed.bpm)
    mastered = _render_and_master(ctx, plan, composed, midi, ledger)
    with ledger.stage("export", plan.track_id):
        files, info = _export(ctx, plan, composed, ids, semitones, midi, mastered, out_dir)
    lufs = None if mastered is None else round(mastered.integrated_lufs, 2)
    folder = files.folder.name
    sidecar = files.sidecar.relative_to(out_dir).as_posix()
    checksums = json.loads(files.sidecar.read_text(encoding="utf-8"))["checksums"]
    ledger.record(plan.track_id, {
        "index": plan.index, "title": plan.title, "genre": plan.genre, "seed": plan.seed,
        "folder": folder, "sidecar": sidecar,
        "duration_s": round(info.duration_s, 3), "integrated_lufs": lufs,
        "true_peak_dbtp": None if mastered is None else round(mastered.true_peak_dbtp, 2),
        "fingerprint": ctx.fingerprints[plan.track_id].as_dict(),
        "files": track_files(out_dir, folder, sidecar, checksums, trust_mtime=True),
    }, out_dir)
    ledger.finished(TrackOutcome(plan.track_id, plan.title, plan.genre, "done", round(info.duration_s, 2),
                                 lufs, list(composed.rejections), folder))


def _export(ctx: _Context, plan: TrackPlan, composed: _Composed, ids, semitones: int, midi, mastered,
            out_dir: Path):
    """Write the track's files (export_track); returns them and the TrackInfo they were tagged with."""
    from generator.library.export import ExportSettings, TrackInfo, export_track

    recipe = ctx.recipe
    encoding = ctx.model.encoding
    outputs = recipe.outputs
    settings = ExportSettings(wav_sample_rate=outputs.wav_sample_rate, wav_bits=outputs.wav_bits,
                              mp3_kbps=outputs.mp3_kbps, write_wav=outputs.wav, write_mp3=outputs.mp3,
                              write_stems=outputs.stems, cutdowns_s=tuple(outputs.cutdowns_s),
                              ceiling_dbtp=recipe.mastering.ceiling_dbtp, target_lufs=recipe.mastering.target_lufs,
                              loop=outputs.loop, loop_bars=outputs.loop_bars,
                              ending_fade_s=_fade_s(recipe, composed))
    duration_s = composed.duration_s if mastered is None else mastered.mix.shape[0] / mastered.sample_rate
    bpm = style.track_bpm(plan, composed.bpm, midi, _estimated_bpm)
    key = style.key_label(plan, ids, lambda ids: _estimated_key(ids, encoding))
    mood, keywords, description = track_words(recipe, plan.genre, [i.name for i in midi.instruments if i.notes],
                                              bpm, key)
    info = TrackInfo(
        track_id=plan.track_id, title=plan.title, genre=plan.genre, index=plan.index, seed=plan.seed,
        bpm=bpm, key=key, duration_s=duration_s,
        model=ctx.model_name, recipe=Path(ctx.recipe_label).name, licence_note=recipe.library.licence,
        tags=keywords, mood=mood, description=description, library=recipe.library.facts(recipe.name),
        sampling=dataclasses.asdict(plan.sampling),
        extra={"target_duration_s": plan.duration_s, "music_duration_s": composed.duration_s,
               "ending": composed.ending, "rejections": list(composed.rejections),
               "device": ctx.device, "fingerprint": ctx.fingerprints[plan.track_id].as_dict(),
               **style.planned(plan, semitones, ctx.beat_time, composed.form)},
        sections=style.sections(composed.form, composed.bpm, composed.meter),
    )
    files = export_track(out_dir, info, midi, mastered, settings, cover_png=ctx.cover_png,
                         form=_track_form(composed), render=_edit_renderer(ctx, plan))
    return files, info


def renders_audio(recipe: Recipe) -> bool:
    """Whether the recipe asks for any audio file; without one, tracks are MIDI + sidecar only and
    nothing is rendered or mastered (no SoundFont, no FluidSynth)."""
    outputs = recipe.outputs
    return outputs.wav or outputs.mp3 or outputs.stems  # cut-downs are cut from the WAV/MP3 only


def _render_and_master(ctx: _Context, plan: TrackPlan, composed: _Composed, midi, ledger: _Ledger):
    """The mastered audio of one track, or None when the recipe asks for no audio."""
    if ctx.soundfont is None:
        return None
    from generator.audio.master import MasterSettings, master

    recipe = ctx.recipe
    with ledger.stage("render", plan.track_id):
        rendered = _render(ctx, plan, midi)
    with ledger.stage("master", plan.track_id):
        return master(rendered, MasterSettings(target_lufs=recipe.mastering.target_lufs,
                                               ceiling_dbtp=recipe.mastering.ceiling_dbtp,
                                               fade_out_s=_fade_s(recipe, composed)))


def _render(ctx: _Context, plan: TrackPlan, midi, sample_rate: int = 48000):
    """The track's MIDI rendered, humanized if the plan says so (the audio only: the MIDI file keeps
    the composed timing)."""
    from generator.audio.render import render_midi

    if plan.humanize:
        from generator.audio.humanize import humanized

        midi = humanized(midi, plan.seed)
    return render_midi(midi, ctx.soundfont, sample_rate=sample_rate)


def _fade_s(recipe: Recipe, composed: _Composed) -> float:
    """The fade-out the track ends in (mastering.ending: fade), which its cut-downs end in too."""
    return recipe.mastering.fade_s if composed.ending == "fade" else 0.0


def _track_form(composed: _Composed) -> Form | None:
    """The bars of a beat-time track, which its loop and cut-downs are made of; None without bars.
    A take ends on a bar line, so its bars are its length in bars (fewer than planned when a time
    budget stopped it early)."""
    if composed.bpm is None or composed.meter is None:
        return None
    from generator.audio.edit_plan import Form

    bars = max(1, round(composed.duration_s / Form.of(composed.bpm, composed.meter, 1).bar_s))
    sections = [s for s in (composed.form.sections if composed.form else ()) if s.end_bar <= bars]
    return Form.of(composed.bpm, composed.meter, bars, sections)


def _edit_renderer(ctx: _Context, plan: TrackPlan) -> Render | None:
    """Renders the loop's and cut-downs' MIDI as the track was rendered (humanized if it was)."""
    if ctx.soundfont is None:
        return None
    return lambda midi, sample_rate: _render(ctx, plan, midi, sample_rate).mix


def loop_limits(recipe: Recipe, genre: str) -> LoopLimits:
    """The loop detectors' limits for a genre: its calibrated ones, with the recipe's thresholds over them."""
    from generator.sampling.loops import LoopLimits

    return dataclasses.replace(LoopLimits.for_genre(genre), **recipe.loops.thresholds)


def _programs(recipe: Recipe, genre: str) -> dict[int, int]:
    """Instrument family index -> GM program, from the recipe's instrumentation for the genre."""
    return {vocab.INSTRUMENT_FAMILIES.index(family): program for family, program in recipe.programs(genre).items()}


def _estimated_bpm(midi) -> float | None:
    try:
        bpm = float(midi.estimate_tempo())
    except (ValueError, IndexError, ZeroDivisionError):
        return None
    return round(bpm, 1) if 40 <= bpm <= 240 else None


def _estimated_key(ids, encoding) -> str | None:
    """The key of the output (after any move to a requested key), as the tags and catalogue show it."""
    from generator.eval.features import estimate_key

    return estimate_key(encoding.decode(ids))
