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

    loaded = load_recipe(recipe, check_files=check_files)
    plans = plan_tracks(loaded)
    low, high = loaded.duration_s
    duration = f"{low:g} s" if low == high else f"{low:g}-{high:g} s"
    per_genre = ", ".join(f"{genre} {count}" for genre, count in loaded.genre_counts.items())
    typer.echo(f"{recipe}: OK")
    typer.echo(f"  name:     {loaded.name}")
    typer.echo(f"  tracks:   {len(plans)} ({per_genre})")
    typer.echo(f"  duration: {duration} per track, {sum(p.duration_s for p in plans) / 60:.1f} min "
               f"in all")
    typer.echo(f"  model:    {loaded.model}")
    typer.echo(f"  output:   {loaded.output_dir()}")
    if tracks:
        for plan in plans:
            typer.echo(f"  {plan.track_id}  {plan.genre:<7} {plan.duration_s:6.1f} s  "
                       f"seed {plan.seed:<20d} {plan.title}")


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("validate")(validate)
