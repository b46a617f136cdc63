"""Recipe -> the list of tracks to make, deterministically; and the shards of that list.

Each track's seed comes from (recipe seed, index) through SHA-256, and the per-track values are
drawn from numpy's default_rng(track seed), so a track is the same whether it is planned alone,
in a shard or in the whole batch, on any machine and in any Python process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from generator.errors import RecipeError
from generator.library.form import FORM_DRAWS, FormChoice, choose
from generator.library.recipe_fields import safe_name
from generator.sampling.params import SamplingParams, drawn_fields, field_spec
from generator.seeds import stable_seed
from generator.tokens import vocab

if TYPE_CHECKING:
    from generator.library.recipe import Recipe

GROUP_SIZE = 8  # the pipeline samples fixed groups of 8 consecutive tracks together
# The onset grid of a genre whose recipe sets no `grid`: parts of a beat (4: sixteenths, 3: eighth
# triplets); jazz swings, so its triplets come first.
DEFAULT_GRIDS = vocab.DEFAULT_GRIDS


@dataclass(frozen=True)
class TrackPlan:
    """One track to make: its stable seed and the concrete values drawn for it."""

    index: int  # 0-based position in the whole plan
    track_id: str  # e.g. cafe_jazz_001: file-name safe, unique within the plan
    genre: str  # canonical genre
    seed: int
    duration_s: float
    sampling: SamplingParams  # drawn for this track
    title: str
    # Beat time, key and feel (docs/recipes.md): None where the recipe sets none.
    bpm: float | None = None
    meter: tuple[int, int] | None = None
    key: str | None = None  # the requested key ('D major'); the track's label is its output's key
    grid: tuple[int, ...] | None = None  # the recipe's, else the genre's DEFAULT_GRIDS
    humanize: bool = False
    # Form and harmony (library/form.py): what the recipe and the seed chose; None: no form (as before).
    form: FormChoice | None = None


def track_seed(recipe_seed: int, index: int) -> int:
    """A stable 63-bit seed from (recipe seed, track index); never Python's salted hash()."""
    return stable_seed("gen-track", recipe_seed, index, sep=":")


def plan_tracks(recipe: Recipe) -> list[TrackPlan]:
    """Every track of the recipe, deterministically: genres interleaved, values drawn per track."""
    genres = interleave(recipe.genre_counts)
    slug = safe_name(recipe.name)
    width = max(3, len(str(len(genres))))
    plans = []
    for index, genre in enumerate(genres):
        seed = track_seed(recipe.seed, index)
        rng = np.random.default_rng(seed)
        duration_s = _draw(float(rng.random()), recipe.duration_s, integer=False, decimals=1)
        # One uniform per drawn field, in the spec's order: narrowing one range never shifts another.
        drawn = {f.name: _draw(float(rng.random()), getattr(recipe.sampling, f.name),
                               integer=field_spec(f).integer, decimals=4)
                 for f in drawn_fields()}
        sampling = SamplingParams(**drawn, pitch_range=tuple(recipe.sampling.pitch_range),
                                  sber_compatible=recipe.sampling.sber_compatible)
        title = recipe.title_template.format(n=index + 1, name=recipe.name, genre=genre).strip()
        plans.append(TrackPlan(index, f"{slug}_{index + 1:0{width}d}", genre, seed, duration_s,
                               sampling, title, **_style(recipe, genre, duration_s, rng)))
    # Ids carry the index, never the title: titles that slug alike (or a long name cut short) still
    # give distinct ids, and so distinct folders and files (export.track_basename hashes the id).
    assert len({p.track_id for p in plans}) == len(plans), "track ids must be unique within a plan"
    return plans


def _style(recipe: Recipe, genre: str, duration_s: float, rng: np.random.Generator) -> dict:
    """bpm, meter and key drawn after every older draw, one uniform each whether set or not, so
    neither setting them nor narrowing one moves any other value; then FORM_DRAWS uniforms for the
    form (a track with form or harmony set, library/form.py); grid and humanize as given."""
    u_bpm, u_meter, u_key = (float(rng.random()) for _ in range(3))
    u_form = [float(rng.random()) for _ in range(FORM_DRAWS)]  # after every older draw, set or not
    bpm, meters, keys = (recipe.style(genre, name) for name in ("bpm", "meter", "key"))
    meter = None if meters is None else meters[_pick(u_meter, len(meters))]
    key = keys[_pick(u_key, len(keys))] if keys else None  # () is `any`
    form, harmony = recipe.style(genre, "form"), recipe.style(genre, "harmony")
    return {
        "bpm": None if bpm is None else _draw_bpm(u_bpm, bpm, duration_s, meter or (4, 4)),
        "meter": meter,
        "key": key,
        "grid": recipe.style(genre, "grid") or DEFAULT_GRIDS[genre],
        "humanize": bool(recipe.style(genre, "humanize")),
        "form": None if form is None and harmony is None else choose(genre, form, harmony, key, u_form),
    }


def _draw_bpm(u: float, bounds: tuple[float, float], duration_s: float, meter: tuple[int, int]) -> float:
    """Whole beats per minute when both ends are whole (both included), else to 0.1 bpm; then the
    tempo of the range nearest it at which whole bars fill the track's duration (vocab.fitted_tempo)."""
    lo, hi = bounds
    whole = float(lo).is_integer() and float(hi).is_integer()
    if whole:
        drawn = float(_draw(u, (int(lo), int(hi)), integer=True, decimals=0))
    else:
        drawn = float(_draw(u, bounds, integer=False, decimals=1))
    return vocab.fitted_tempo(duration_s, meter, drawn, bounds, 1.0 if whole else 0.1)


def _pick(u: float, n: int) -> int:
    return min(n - 1, int(u * n))


def _draw(u: float, bounds: tuple, *, integer: bool, decimals: int) -> int | float:
    lo, hi = bounds
    if integer:
        return int(min(hi, lo + int(u * (hi - lo + 1))))
    return float(min(hi, max(lo, round(lo + u * (hi - lo), decimals))))


def interleave(counts: dict[str, int]) -> list[str]:
    """Spread each genre evenly over the plan: the k-th of c tracks sits at (k + 1/2) / c."""
    slots = [(Fraction(2 * k + 1, 2 * c), vocab.GENRES.index(g), g)
             for g, c in counts.items() for k in range(c)]
    return [g for _, _, g in sorted(slots)]


def shard_tracks(plans: list[TrackPlan], shard: str) -> list[TrackPlan]:
    """Shard "I/N" (1-based) gets every group g of GROUP_SIZE consecutive tracks with
    g % N == I - 1; all shards together are the whole plan, each track exactly once."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*", str(shard))
    if not match:
        raise RecipeError(f"--shard {shard!r}: expected I/N (use e.g. 1/4 for the first of four)")
    part, parts = int(match.group(1)), int(match.group(2))
    if not 1 <= part <= parts:
        raise RecipeError(f"--shard {shard!r}: I must be between 1 and N "
                          f"(use 1/{max(parts, 1)} to {max(parts, 1)}/{max(parts, 1)})")
    return [p for p in plans if (p.index // GROUP_SIZE) % parts == part - 1]
