"""`gen catalogue DIR [DIR ...] [--out DIR]`: rebuild the HTML catalogue from the track sidecars alone."""

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
        typer.Option("--out", help="Folder for index.html; links are made relative to it. Default: the first DIR."),
    ] = None,
) -> None:
    """Write one offline index.html over every exported track in DIR..., then print its path."""
    from generator.library.catalogue import build_catalogue

    path = build_catalogue(folders, out if out is not None else folders[0])
    typer.echo(str(path))
