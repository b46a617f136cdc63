"""The short text summary of a recipe that `gen validate` prints."""

from __future__ import annotations

from generator.library.plan import TrackPlan
from generator.library.recipe import Recipe


def recipe_summary(recipe: Recipe, label: str, plans: list[TrackPlan], *, tracks: bool = False) -> list[str]:
    """`<label>: OK`, then name, track counts, durations, model and output; with `tracks` one line per plan."""
    low, high = recipe.duration_s
    duration = f"{low:g} s" if low == high else f"{low:g}-{high:g} s"
    per_genre = ", ".join(f"{genre} {count}" for genre, count in recipe.genre_counts.items())
    lines = [
        f"{label}: OK",
        f"  name:     {recipe.name}",
        f"  tracks:   {len(plans)} ({per_genre})",
        f"  duration: {duration} per track, {sum(p.duration_s for p in plans) / 60:.1f} min in all",
        f"  model:    {recipe.model}",
        f"  output:   {recipe.output_dir()}",
    ]
    if tracks:
        lines += [f"  {p.track_id}  {p.genre:<7} {p.duration_s:6.1f} s  seed {p.seed:<20d} {p.title}{_style(p)}"
                  for p in plans]
    return lines


def _style(plan: TrackPlan) -> str:
    """'  [96 bpm, 3/4, D major, humanized, aaba form in D major]' for what the recipe sets, '' when
    it sets none of it."""
    form = plan.form
    parts = [f"{plan.bpm:g} bpm" if plan.bpm is not None else "",
             f"{plan.meter[0]}/{plan.meter[1]}" if plan.meter else "", plan.key or "",
             "humanized" if plan.humanize else "",
             "" if form is None else f"{form.template or 'listed'} form, "
             + ("the model's harmony" if form.harmony == "model" else f"{form.harmony} harmony in {form.key_name}")]
    shown = ", ".join(p for p in parts if p)
    return f"  [{shown}]" if shown else ""
