"""`gen validate RECIPE`: check a recipe and summarise it; writes nothing."""

from __future__ import annotations

from typing import Annotated

import typer


def validate(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML file, e.g. recipes/cafe_jazz.yaml.")],
    tracks: Annotated[bool, typer.Option(
        "--tracks", help="Also list every planned track (title, genre, seed, duration).")] = False,
    check_files: Annotated[bool, typer.Option(
        "--check-files/--no-check-files",
        help="Check that the model, SoundFont and primer files exist.")] = True,
) -> None:
    """Validate a recipe: print a short summary, or `Error: <file>:<line>: <key>: ...`."""
    from generator.library.plan import plan_tracks
    from generator.library.recipe import load_recipe
    from generator.library.summary import recipe_summary

    loaded = load_recipe(recipe, check_files=check_files)
    for line in recipe_summary(loaded, recipe, plan_tracks(loaded), tracks=tracks):
        typer.echo(line)


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("validate")(validate)
