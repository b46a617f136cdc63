"""What made a track: a fingerprint of everything that determines its files.

Each part is hashed on its own, so a re-run can say what changed ("seed", "duration_s", "model"):
the track's plan (track_id, index, title, genre, seed, duration_s, sampling, and bpm, meter, key, grid,
humanize and form where it sets them), the recipe values it
depends on (name, instrumentation of its genre, loops, ending, outputs but the catalogue switch,
mastering and SoundFont when it has audio, the primer and the primer file's content, and what its
tags say: the `library` section as it applies to its genre), and the
checkpoint file's content. Paths, `device`, `time_budget_s` and `output` are left out: they say
where and how fast, not what. Big files are hashed once per run, streaming.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import CheckpointError, RecipeError, SoundFontError
from generator.files import file_sha256

if TYPE_CHECKING:
    from generator.library.plan import TrackPlan
    from generator.library.recipe import Recipe

VERSION = 1
NO_FINGERPRINT = "no fingerprint"
PARTS = ("track_id", "index", "title", "genre", "seed", "duration_s", "sampling", "name", "instrumentation",
         "loops", "ending", "outputs", "mastering", "primer", "model", "soundfont", "library")
# Parts a track has only when its plan sets them, so a track of a recipe without them keeps the
# fingerprint it had before they existed (a re-run is not refused over nothing).
STYLE_PARTS = ("bpm", "meter", "key", "grid", "humanize", "form")


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    parts: dict[str, str]  # part name -> a short hash of its value

    def as_dict(self) -> dict[str, Any]:
        return {"version": VERSION, "sha256": self.sha256, "parts": dict(self.parts)}

    def changes(self, stored: Any) -> list[str]:
        """The parts that differ from a stored fingerprint; [NO_FINGERPRINT] when it has none."""
        if not isinstance(stored, dict) or not isinstance(stored.get("parts"), dict):
            return [NO_FINGERPRINT]
        if stored.get("sha256") == self.sha256 and stored.get("version") == VERSION:
            return []
        old = stored["parts"]
        return [name for name in sorted({*old, *self.parts}, key=_order) if old.get(name) != self.parts.get(name)] \
            or ["fingerprint version"]


def track_fingerprints(recipe: Recipe, plans: list[TrackPlan], soundfont: Path | None) -> dict[str, Fingerprint]:
    """track_id -> Fingerprint; `soundfont` is the resolved font file, None for a MIDI-only recipe."""
    primer = recipe.sampling.primer
    shared = {
        "name": recipe.name,
        "loops": _values(recipe.loops),
        "ending": recipe.mastering.ending,
        "outputs": _values(recipe.outputs, leave_out="catalogue"),
        "mastering": None if soundfont is None else _values(recipe.mastering),
        "primer": None if primer is None else {"seconds": primer.seconds, "from_end": primer.from_end,
                                               "sha256": _input_sha256(Path(primer.path), "primer MIDI file")},
        "model": _input_sha256(Path(recipe.model), "checkpoint"),
        "soundfont": None if soundfont is None else _input_sha256(soundfont, "SoundFont"),
    }
    lib = recipe.library
    library = {**lib.facts(recipe.name), "licence": lib.licence, "keywords": lib.keywords}
    found = {}
    for plan in plans:
        values = {"track_id": plan.track_id, "index": plan.index, "title": plan.title, "genre": plan.genre,
                  "seed": plan.seed, "duration_s": plan.duration_s, "sampling": dataclasses.asdict(plan.sampling),
                  "instrumentation": recipe.programs(plan.genre), **shared, **_style(plan),
                  "library": {**library, "moods": lib.moods.get(plan.genre, ())}}
        parts = {name: _digest(values[name])[:16] for name in (*PARTS, *STYLE_PARTS) if name in values}
        found[plan.track_id] = Fingerprint(_digest(parts), parts)
    return found


def _style(plan: TrackPlan) -> dict[str, Any]:
    """The plan's STYLE_PARTS that differ from a plan without them (the grid: from its genre's default)."""
    from generator.library.plan import DEFAULT_GRIDS

    values = {"bpm": plan.bpm, "meter": plan.meter, "key": plan.key,
              "grid": None if plan.grid == DEFAULT_GRIDS.get(plan.genre) else plan.grid,
              "humanize": plan.humanize or None, "form": None if plan.form is None else plan.form.as_dict()}
    return {name: value for name, value in values.items() if value is not None}


def describe(changes: list[str]) -> str:
    """'seed, duration_s changed', or what a track finished by an older gen lacks."""
    if changes == [NO_FINGERPRINT]:
        return "no fingerprint (finished by a gen older than fingerprints)"
    return f"{', '.join(changes)} changed"


def _values(section: Any, leave_out: str = "") -> dict[str, Any]:
    """A recipe section's keys and values (tuples and lists hash alike: both are JSON lists)."""
    return {key: value for key, value in section if key != leave_out}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _input_sha256(path: Path, what: str) -> str:
    error_type = {"checkpoint": CheckpointError, "SoundFont": SoundFontError}.get(what, RecipeError)
    try:
        return file_sha256(path)
    except OSError as error:
        raise error_type(f"{what} {path} cannot be read ({error.strerror or error}); "
                         "check that it is a readable file") from None


def _order(name: str) -> int:
    known = (*PARTS, *STYLE_PARTS)
    return known.index(name) if name in known else len(known)
