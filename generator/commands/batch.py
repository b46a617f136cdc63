"""`gen batch RECIPE`: the main job. Progress on stderr, a summary table, documented exit codes.

Exit codes: 0 every track finished; 1 an error (a failed write: full disk, unwritable folder); 2 bad
input (an option's value, recipe, checkpoint, SoundFont; or finished tracks that the recipe no longer
makes, without --rebuild-changed); 3 the output folder is locked by another run; 4 some tracks were
given up after the rejection limit; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("batch")(batch)


def batch(
    recipe_path: Annotated[Path, typer.Argument(metavar="RECIPE", help="YAML recipe, e.g. recipes/cafe_jazz.yaml.")],
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: the recipe's `output`).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Make only the first N tracks of the plan.")] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="I/N: make only shard I of N (1-based).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda (default: the recipe's).")] = None,
    rebuild_changed: Annotated[bool, typer.Option(
        "--rebuild-changed", help="Rebuild finished tracks that the recipe, model or SoundFont no longer make "
        "(without it such a re-run is refused with exit code 2).")] = False,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", min=1, help="Tracks finished side by side (render, master, export) while the next group "
        "samples; default: one per CPU. The files are the same for any value.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar and no table.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the batch report as JSON on stdout.")] = False,
) -> None:
    """Compose, reject, render, master and export a library from a recipe; resumable."""
    from generator.errors import TracksGivenUpError
    from generator.library.pipeline import check_device, run_batch
    from generator.library.recipe import load_recipe

    recipe = load_recipe(recipe_path)
    check_device(device)
    show = not quiet and not as_json
    with _progress(show) as on_progress:
        report = run_batch(recipe, str(recipe_path), out_dir=out, limit=limit, shard=shard,
                           device=device, rebuild_changed=rebuild_changed, on_progress=on_progress, jobs=jobs)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=1))
    elif not quiet:
        _summary(report)
    if report.given_up:
        ids = ", ".join(t.track_id for t in report.given_up)
        raise TracksGivenUpError(f"{len(report.given_up)} track(s) given up after the rejection limit: {ids} "
                                 "(raise loops.max_attempts or widen the sampling ranges)")


class _progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, show: bool):
        self.show = show
        self.bar = None

    def __enter__(self):
        if not self.show:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=False)
        self.bar.start()
        task = self.bar.add_task("starting", total=None)

        def on_progress(event: str, track_id: str, done: int, total: int) -> None:
            label = {"track_done": "finished", "track_failed": "given up"}.get(event, event)
            self.bar.update(task, total=total, completed=done, description=f"{label:>9} {track_id}")

        return on_progress

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summary(report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.out_dir}  ({report.wall_s:.1f} s)")
    for column in ("track", "genre", "status", "seconds", "LUFS", "rejections"):
        table.add_column(column)
    for t in report.tracks:
        lufs = "" if t.integrated_lufs is None else f"{t.integrated_lufs:.1f}"
        table.add_row(t.track_id, t.genre, t.status, f"{t.duration_s:.1f}", lufs, str(len(t.rejections)))
    console = Console(stderr=True)
    console.print(table)
    stages = "  ".join(f"{k} {v:.1f}s" for k, v in report.stage_s.items())
    console.print(f"stages (summed over the finishing threads, which overlap): {stages}")
    if report.catalogue:
        console.print(f"catalogue: {report.catalogue}")
    sys.stderr.flush()
