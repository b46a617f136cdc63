"""`gen data calibrate-loops`: re-derive the loop detectors' per-genre limits from real music."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    data_app.command("calibrate-loops")(calibrate_loops)


def calibrate_loops(
    data: Annotated[Path, typer.Option("--data", help="Data folder holding shards/test.npz.")] = Path("data"),
    sber_midi: Annotated[Path | None, typer.Option(
        "--sber-midi", "--seed-midi",
        help="Folder of <genre>_N.mid pieces that must pass (e.g. Sber's samples).")] = None,
    max_false_rejection: Annotated[float, typer.Option("--max-false-rejection", help="Share of real pieces a "
                                                       "genre's limits may reject.")] = 0.05,
) -> None:
    """Measure the detectors on real music and print per-genre limits (a table for docs/sampling.md)."""
    from generator.corpus.shards import shard_path
    from generator.errors import InputError
    from generator.sampling.loops import calibrate, calibration_pieces, calibration_table, genre_limits_source

    test = shard_path(data, "test")
    pieces = list(calibration_pieces(None, test))
    anchors = list(calibration_pieces(sber_midi, None))
    if not pieces and not anchors:
        raise InputError(f"{test}: no real pieces to calibrate on; prepare the corpus (`gen data prepare`) "
                         "or pass --sber-midi")
    result = calibrate(pieces, anchors=anchors, max_false_rejection=max_false_rejection)
    typer.echo(calibration_table(result))
    typer.echo("\nGENRE_LIMITS (generator/loops.py) would become:")
    typer.echo(genre_limits_source(result))
