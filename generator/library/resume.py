"""What a re-run redoes: finished tracks that changed (refused without --rebuild-changed) or are damaged.

A finished track is one in the manifest (read back from the sidecars when the manifest is missing or
damaged). It is kept when its fingerprint equals the one the recipe, model and SoundFont give now and
its files pass integrity.damage; otherwise it is made again as a whole: sampled (with its group, so
its MIDI is byte-identical to a fresh build), rendered and exported, even when only its audio is
damaged: a fresh build renders from the notes in memory, and a MIDI file read back (times rounded to
ticks) is not guaranteed to render the same samples, while redoing the track is byte-identical by
construction, at the price of sampling its group again.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from generator.errors import RecipeError
from generator.library.fingerprint import Fingerprint, describe
from generator.library.integrity import damage
from generator.library.manifest import Manifest
from generator.library.plan import TrackPlan

log = logging.getLogger(__name__)


def tracks_to_redo(out_dir: Path, manifest: Manifest, plans: list[TrackPlan], fingerprints: dict[str, Fingerprint],
                   rebuild_changed: bool, *, planned: set[str]) -> set[str]:
    """Finished tracks to make again: changed ones (refused unless rebuild_changed) and damaged ones.

    `planned` holds every track id of the recipe's whole plan: a finished track outside it (the
    recipe's name or track count changed) is stale too, and rebuild_changed removes it.
    """
    finished = [p.track_id for p in plans if p.track_id in manifest.tracks]
    changed = {t: describe(c) for t in finished
               if (c := fingerprints[t].changes(manifest.tracks[t].get("fingerprint")))}
    gone = [t for t in manifest.tracks if t not in planned]
    if (changed or gone) and not rebuild_changed:
        track_id, what = next(iter(changed.items())) if changed else (gone[0], "no longer in the recipe's plan")
        raise RecipeError(f"{out_dir}: {len(changed) + len(gone)} finished track(s) no longer match the recipe, "
                          f"model or SoundFont (e.g. {track_id}: {what}); rerun with --rebuild-changed to "
                          "rebuild them, or choose another --out")
    for track_id in gone:
        log.warning("track %s: no longer in the recipe's plan; removing it", track_id)
        remove_folder(out_dir, manifest.tracks.pop(track_id))
    redo = set(changed)
    for track_id in finished:
        problem = None if track_id in redo else damage(out_dir, manifest.tracks[track_id].get("files"))
        if problem:
            log.warning("track %s: %s; making it again", track_id, problem)
            redo.add(track_id)
    return redo


def remove_folder(out_dir: Path, record: dict | None, keep: str = "") -> None:
    """Remove a replaced track's folder (a rebuilt track whose title changed, so its folder name did,
    or a track the recipe no longer makes), so the library holds each track once. Only a plain
    folder directly in out_dir is ever removed, and never `keep`."""
    old = record.get("folder") if isinstance(record, dict) else None
    if not isinstance(old, str) or not old or old == keep or Path(old).name != old or old.startswith("."):
        return
    path = out_dir / old
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
