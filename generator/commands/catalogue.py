"""`gen catalogue DIR [DIR ...] [--out DIR]`: rebuild the HTML catalogue and the upload sheet
(library.csv, library.json) from the track sidecars alone, over merged shards too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("catalogue")(catalogue)


def catalogue(
    folders: Annotated[
        list[Path], typer.Argument(help="Batch folders to list (searched recursively for track sidecars).",
                                   show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for index.html, library.csv and library.json; links and file names "
                     "are made relative to it. Default: the first DIR."),
    ] = None,
) -> None:
    """Write one offline index.html and one upload sheet over every exported track in DIR..., then print their paths."""
    from generator.library.catalogue import build_catalogue
    from generator.library.sheet import build_sheet

    target = out if out is not None else folders[0]
    path = build_catalogue(folders, target)
    typer.echo(str(path))
    for sheet in build_sheet(folders, target):
        typer.echo(str(sheet))
