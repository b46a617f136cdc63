"""What a recipe's bpm, meter, key, grid, humanize, form and harmony (docs/recipes.md) do around
composing a track.

bpm, meter, grid and the form's harmony go to the sampler, and only a model whose encoding keeps
bars can honour them: `check_beat_time` stops a run before composing otherwise. The form rebuilds
each take (library/arrange.py). A requested key moves the finished piece (library/keys.py), unless
the form's planned harmony was written in it; humanize is applied where the audio is rendered
(audio/humanize.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from generator.errors import RecipeError

if TYPE_CHECKING:
    from generator.library.form import FormPlan
    from generator.library.plan import TrackPlan
    from generator.library.recipe import Recipe


def has_bars(model: object) -> bool:
    """Whether the model's encoding keeps beat time (bars), so bpm, meter and grid can be honoured."""
    from generator.tokens.encoding import encoding_of

    return bool(getattr(encoding_of(model), "has_bars", False))


def check_beat_time(recipe: Recipe, recipe_label: str, model: object) -> None:
    """A recipe that sets bpm, meter, grid, form or harmony for a genre it makes needs a beat-time model."""
    from generator.tokens.encoding import encoding_of

    asked = recipe.beat_keys_set()
    if asked and not has_bars(model):
        raise RecipeError(f"{recipe_label}: bpm/meter/grid/form/harmony need a beat-time model (the recipe sets "
                          f"{', '.join(asked)}); this model's encoding is {encoding_of(model).name!r} "
                          f"({recipe.model}); fix: remove those keys, or set `model:` to a checkpoint "
                          "trained with the beat encoding")


def with_form(plan: TrackPlan, request: Any) -> tuple[Any, FormPlan | None]:
    """A beat-time GenerationRequest with the plan's form fitted to its bars and its harmony planned."""
    if plan.form is None:
        return request, None
    from dataclasses import replace

    from generator.library.form import plan_form
    from generator.sampling.generate import bar_plan

    bars = bar_plan(request)
    form = plan_form(plan.form, plan.genre, bars.n_bars)
    return replace(request, chords=form.changes(bars.meter, bars.grid)), form


def arranger(forms: list[FormPlan | None], encoding: Any) -> Callable[[int, Any], Any]:
    """compose_many's `finish`: each whole take of a track with a form rebuilt to it (library/arrange.py)."""
    from dataclasses import replace

    from generator.library.arrange import arrange

    def finish(index: int, result: Any) -> Any:
        form = forms[index]
        if form is None or result.stop_reason != "duration" or result.bars is None:
            return result  # a take cut short by the time budget is left as it is
        return replace(result, ids=tuple(arrange(result.ids, form, result.bars.meter, encoding)))

    return finish


def sections(form: FormPlan | None, bpm: float | None, meter: tuple[int, int] | None) -> list[dict[str, Any]]:
    """The sidecar's track.sections; [] without a form."""
    if form is None or bpm is None or meter is None:
        return []
    return form.sidecar_sections(bpm, meter)


def planned_harmony(plan: TrackPlan) -> bool:
    """Whether the track's harmony was planned in its key (then its key is known, not estimated)."""
    return plan.form is not None and plan.form.harmony != "model"


def key_label(plan: TrackPlan, ids: tuple[int, ...], estimate: Callable[[tuple[int, ...]], str | None]) -> str | None:
    """The track's key label: the planned harmony's key, else the key estimated from the output."""
    return plan.form.key_name if planned_harmony(plan) and plan.form is not None else estimate(ids)


def in_key(plan: TrackPlan, ids: tuple[int, ...], model: object) -> tuple[tuple[int, ...], int]:
    """The composed ids moved to the plan's requested key, and by how many semitones (a planned
    harmony was written in that key: its ids stay, and the move is its chords' from the recipe)."""
    if planned_harmony(plan) and plan.form is not None:
        return ids, plan.form.moved
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


def planned(plan: TrackPlan, semitones: int, beat_time: bool, form: FormPlan | None = None) -> dict[str, Any]:
    """The sidecar's record (track.extra.planned) of what the recipe asked of a track; {} when nothing."""
    found: dict[str, Any] = {} if form is None else {"form": form.as_dict()}
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
