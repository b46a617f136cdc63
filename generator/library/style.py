"""What a recipe's bpm, meter, key, grid and humanize (docs/recipes.md) do around composing a track.

bpm, meter and grid go to the sampler, and only a model whose encoding keeps bars can honour them:
`check_beat_time` stops a run before composing otherwise. A requested key moves the finished piece
(library/keys.py); humanize is applied where the audio is rendered (audio/humanize.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from generator.errors import RecipeError

if TYPE_CHECKING:
    from generator.library.plan import TrackPlan
    from generator.library.recipe import Recipe


def has_bars(model: object) -> bool:
    """Whether the model's encoding keeps beat time (bars), so bpm, meter and grid can be honoured."""
    from generator.tokens.encoding import encoding_of

    return bool(getattr(encoding_of(model), "has_bars", False))


def check_beat_time(recipe: Recipe, recipe_label: str, model: object) -> None:
    """A recipe that sets bpm, meter or grid for a genre it makes needs a beat-time model."""
    from generator.tokens.encoding import encoding_of

    asked = recipe.beat_keys_set()
    if asked and not has_bars(model):
        raise RecipeError(f"{recipe_label}: bpm/meter/grid need a beat-time model (the recipe sets "
                          f"{', '.join(asked)}); this model's encoding is {encoding_of(model).name!r} "
                          f"({recipe.model}); fix: remove those keys, or set `model:` to a checkpoint "
                          "trained with the beat encoding")


def in_key(plan: TrackPlan, ids: tuple[int, ...], model: object) -> tuple[tuple[int, ...], int]:
    """The composed ids moved to the plan's requested key, and by how many semitones."""
    if plan.key is None:
        return ids, 0
    from generator.library.keys import parse_key, to_key
    from generator.tokens.encoding import encoding_of

    requested = parse_key(plan.key)
    assert requested is not None, plan.key  # the recipe checked it
    moved, semitones = to_key(ids, requested, encoding_of(model))
    return tuple(moved), semitones


def track_bpm(plan: TrackPlan, played_bpm: float | None, midi: Any,
              estimate: Callable[[Any], float | None]) -> float | None:
    """The track's BPM label: the planned tempo, else the tempo a beat-time model played it at
    (its genre's), else `estimate(midi)`."""
    if plan.bpm is not None:
        return plan.bpm
    return played_bpm if played_bpm is not None else estimate(midi)


def planned(plan: TrackPlan, semitones: int, beat_time: bool) -> dict[str, Any]:
    """The sidecar's record (track.extra.planned) of what the recipe asked of a track; {} when nothing."""
    found: dict[str, Any] = {}
    if plan.bpm is not None:
        found["bpm"] = plan.bpm
    if plan.meter is not None:
        found["meter"] = f"{plan.meter[0]}/{plan.meter[1]}"
    if plan.grid is not None and beat_time:
        found["grid"] = list(plan.grid)
    if plan.key is not None:
        found.update(requested_key=plan.key, transposed_semitones=semitones)
    if plan.humanize:
        found["humanize"] = True
    return {"planned": found} if found else {}
