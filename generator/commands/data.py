"""`gen data prepare`: build the token shards, pieces.jsonl, SOURCES.md and the skip report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from generator.paths import PROJECT_ROOT as REPO_ROOT


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    data_app.command("prepare")(prepare)


def _parse_limits(values: list[str], known: dict[str, int]) -> dict[str, int]:
    from generator.errors import InputError

    limits = dict(known)
    for value in values:
        name, _, number = value.partition("=")
        if name not in known or not number.isdigit():
            raise InputError(f"--limit {value!r}: use SOURCE=N with SOURCE one of {', '.join(known)}")
        limits[name] = int(number)
    return limits


def prepare(
    out: Annotated[
        Path, typer.Option("--out", help="Output folder (shards/, pieces.jsonl, SOURCES.md)."),
    ] = REPO_ROOT / "data",
    shared: Annotated[
        Path, typer.Option("--shared", help="Shared inputs folder holding corpus/."),
    ] = REPO_ROOT.parent / "shared",
    sources: Annotated[
        list[str] | None, typer.Option("--sources", help="Sources to use (repeat; default all)."),
    ] = None,
    limit: Annotated[
        list[str] | None, typer.Option("--limit", help="SOURCE=N: at most N pieces of SOURCE (repeat)."),
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Stop starting new pieces after N minutes."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 2,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="Per-piece time limit in seconds.")] = 240.0,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="MIDI cache folder (default ~/.cache/gen-data)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Just this piece id (repeat), e.g. jazz-mma/blue-bossa-151."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress line.")] = False,
) -> None:
    """Build the training shards from installed packages and the shared corpus (offline)."""
    from generator.corpus.prepare import DEFAULT_LIMITS, PrepareOptions
    from generator.corpus.prepare import prepare as run_prepare
    from generator.corpus.report import genre_table
    from generator.corpus.sources import SOURCES
    from generator.errors import InputError

    if max_minutes is not None and not max_minutes > 0:
        raise InputError(f"--max-minutes {max_minutes}: use a number of minutes > 0 (or leave it out)")
    if not timeout_s > 0:
        raise InputError(f"--timeout-s {timeout_s}: use a number of seconds > 0")
    if not (shared / "corpus").is_dir():
        raise InputError(f"--shared {shared}: no corpus/ folder there; fix: pass the folder holding corpus/")
    chosen = tuple(sources) if sources else tuple(DEFAULT_LIMITS)
    for name in chosen:
        if name not in SOURCES:
            raise InputError(f"--sources {name!r}: unknown; fix: use one of {', '.join(SOURCES)}")
    options = PrepareOptions(
        out=out, shared=shared, sources=chosen, limits=_parse_limits(limit or [], DEFAULT_LIMITS),
        max_minutes=max_minutes, workers=workers, timeout_s=timeout_s,
        cache=cache or Path.home() / ".cache" / "gen-data", only=tuple(only or ()),
    )
    counter = {"done": 0, "skipped": 0}

    def on_result(result) -> None:
        counter["done"] += 1
        counter["skipped"] += result.reason is not None
        if not quiet and counter["done"] % 10 == 0:
            print(f"\r{counter['done']} pieces ({counter['skipped']} skipped)", end="", file=sys.stderr, flush=True)

    command = "gen data prepare " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else "gen data prepare"
    report = run_prepare(options, command=command.strip(), on_result=on_result)
    if not quiet:
        print(file=sys.stderr)
    typer.echo(genre_table(report.rows))
    typer.echo(f"{len(report.skipped)} inputs skipped (reasons in {out / 'prepare_report.txt'})")
