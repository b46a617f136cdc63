"""`gen eval`: sample tracks per genre with a checkpoint, or read a built library's tracks
(--library), and measure them against real music."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from generator.commands._sampling_options import sampling_options
from generator.errors import InputError
from generator.sampling.params import SamplingParams


@sampling_options
def evaluate(
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="Model checkpoint (default: the shipped models/gen-small.pt).")] = None,
    library: Annotated[Path | None, typer.Option(
        "--library", help="Measure the tracks of a library `gen batch` built in this folder (its sidecars and "
        "MIDI files) instead of sampling: no model is loaded, so --checkpoint may not be given and --per-genre, "
        "--genres, --device, --max-attempts, --nll-tokens, --default-instruments/--any-instruments and the "
        "sampling options are ignored. Each track is measured over its first --seconds.")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Corpus folder holding shards/{train,test}.npz (default: the committed corpus in the "
        "checkpoint's encoding, data/ or data/beat/; with --library, data/beat/).")] = None,
    per_genre: Annotated[int, typer.Option("--per-genre", min=1, help="Tracks generated per genre.")] = 4,
    seconds: Annotated[float, typer.Option("--seconds", min=1.0, help="Length of each track in seconds; "
                                           "real pieces are cut to the same length.")] = 30.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the tracks and of the real-piece choice.")] = 0,
    genres: Annotated[
        str, typer.Option("--genres", help="Comma-separated genres to generate."),
    ] = "classic,jazz,calm,pop",
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON here.")] = None,
    markdown_out: Annotated[Path | None, typer.Option(
        "--markdown", help="Write the report as a Markdown section (for QUALITY.md) here.")] = None,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, help="Samples per track before it "
                                              "is given up (loop-detector resampling).")] = 4,
    reference_per_genre: Annotated[int, typer.Option("--reference-per-genre", min=2, help="Real train "
                                                     "pieces per genre for the classifier and features.")] = 200,
    copy_pieces: Annotated[int | None, typer.Option("--copy-pieces", min=1, help="Train pieces indexed "
                                                       "for the copy check (default: all).")] = None,
    transposed_copies: Annotated[bool, typer.Option("--transposed-copies", help="Copy check compares "
                                                    "intervals, so transposed copies count.")] = False,
    nll_tokens: Annotated[int, typer.Option("--nll-tokens", min=0, help="Held-out tokens scored per genre "
                                            "for the NLL (whole pieces until this many; 0 = all).")] = 50_000,
    instrumentation: Annotated[bool, typer.Option(
        "--default-instruments/--any-instruments", help="Sample each genre with the instruments `gen batch` "
        "gives it when a recipe names none (docs/recipes.md), or let the model pick any family.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress and no table.")] = False,
    *,
    params: SamplingParams,
) -> None:
    """Generate --per-genre tracks of each genre (or read those of a --library) and measure features,
    musicality (pulse, groove, chords, clashes, repeats), genre fidelity, loops, copies, durations,
    endings and (of a model) held-out NLL against the corpus shards."""
    from generator.eval.evaluate import EvalSettings
    from generator.eval.report import report_to_markdown, write_json
    from generator.files import atomic_write_text

    if library is not None and checkpoint is not None:
        raise InputError("--library and --checkpoint exclude each other: a library is measured as built, "
                         "without a model; give one of them")
    settings = EvalSettings(per_genre=per_genre, seconds=seconds, seed=seed, genres=_genres(genres),
                            max_attempts=max_attempts, reference_per_genre=reference_per_genre,
                            copy_pieces=copy_pieces, transposition_invariant=transposed_copies,
                            nll_tokens_per_genre=nll_tokens or None, instrumentation=instrumentation)
    with _Stages(not quiet) as stages:
        if library is not None:
            from generator.eval.library import run_library_eval
            from generator.paths import CORPUS_DIRS, DEFAULT_ENCODING

            report = run_library_eval(library, settings, data or CORPUS_DIRS[DEFAULT_ENCODING], stage=stages.stage)
        else:
            report = _sample_and_measure(checkpoint, settings, params, data, device, stages)
    if json_out:
        write_json(report, json_out)
    if markdown_out:
        atomic_write_text(markdown_out, report_to_markdown(report) + "\n")
    if not quiet:
        _print(report)


def _sample_and_measure(checkpoint: Path | None, settings, params: SamplingParams, data: Path | None, device: str,
                        stages: _Stages):
    import torch

    from generator.eval.evaluate import run_eval
    from generator.library.pipeline import check_device
    from generator.model.checkpoint import load_checkpoint
    from generator.paths import SHIPPED_CHECKPOINT, corpus_dir

    path = checkpoint or SHIPPED_CHECKPOINT
    check_device(device)
    torch.manual_seed(settings.seed)
    model, meta = load_checkpoint(path, map_location=device)
    info = {"checkpoint": str(path), "model_meta": {k: v for k, v in meta.items() if _plain(v)}}
    data = data or corpus_dir(model.encoding.name)
    return run_eval(model, params, settings, data, device, meta=info, stage=stages.stage, progress=stages.progress)


def _genres(text: str) -> tuple[str, ...]:
    from generator.tokens import vocab

    out = []
    for name in filter(None, (p.strip() for p in text.split(","))):
        try:
            out.append(vocab.canonical_genre(name))
        except KeyError:
            raise InputError(f"--genres: '{name}' is unknown; use some of {', '.join(vocab.GENRES)}") from None
    if not out:
        raise InputError("--genres is empty; use some of classic,jazz,calm,pop")
    return tuple(out)


def _plain(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


class _Stages:
    """Stage names and the generation progress on stderr (nothing when quiet)."""

    def __init__(self, show: bool):
        self.show = show

    def __enter__(self):
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task("generate", total=None)
        return self

    def stage(self, name: str) -> None:
        if self.show:
            self.bar.update(self.task, description=name)

    def progress(self, done: int, total: int) -> None:
        if self.show:
            self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.show:
            self.bar.__exit__(*exc)


def _print(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from generator.eval.report import feature_rows, headline_rows, musicality_rows, nll_rows
    from generator.tokens import vocab

    console = Console()
    if report.meta.get("library") is not None:
        console.print(f"library {report.meta['library']}: {len(report.tracks)} tracks, no model sampled them")
    for title, header, rows in (
        ("gen eval", ("measure", "value", "goal"), headline_rows(report)),
        ("features vs real", ("feature", "real median [IQR]", "generated", "overlap", "real/real", "flag"),
         feature_rows(report)),
        ("musicality vs held-out real", ("measure", "genre", "generated", "real median [IQR]", "n gen / real",
                                         "flag"), musicality_rows(report)),
        ("genre confusion (rows asked, columns predicted)", ("", *vocab.GENRES),
         [(g, *map(str, row)) for g, row in zip(vocab.GENRES, report.genre_generated.matrix)]),
        ("held-out NLL, nats/token", ("genre", "model", "unigram"), nll_rows(report)),
    ):
        if not rows:  # e.g. a library's held-out NLL: no model was run
            continue
        table = Table(title=title, title_justify="left")
        for k, column in enumerate(header):
            table.add_column(column, no_wrap=k == 0)
        for row in rows:
            table.add_row(*row)
        console.print(table)


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("eval")(evaluate)
