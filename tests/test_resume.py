"""A re-run after a recipe change, and after damage: refuse a stale library, repair exactly what is broken.

Fast tests build MIDI-only libraries with the tiny random model of test_pipeline; the slow one
renders WAVs. "Equals a fresh build" compares every file's bytes (and the manifest but its mtimes).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paths import CI_ENV
from test_pipeline import MIDI_ONLY, PERMISSIVE_LOOPS, ROOT, tiny_checkpoint  # noqa: F401 (a fixture)

LABEL = "recipe.yaml"  # the recipe label the sidecars record, the same for every build compared


def recipe_file(folder: Path, checkpoint: Path, **overrides) -> Path:
    """A MIDI-only recipe of 10 tracks (two sampling groups: 8 + 2), with `overrides` on top."""
    recipe = {
        "name": "Resume Lib", "seed": 11, "model": str(checkpoint), "genres": {"jazz": 6, "calm": 4},
        "duration_s": 2, "sampling": {"temperature": [0.9, 1.0], "top_k": 40}, "loops": PERMISSIVE_LOOPS,
        "outputs": MIDI_ONLY, "output": str(folder / "out"),
    }
    recipe.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def build(recipe_path: Path, out: Path, **options):
    from generator.library.pipeline import run_batch
    from generator.library.recipe import load_recipe

    return run_batch(load_recipe(recipe_path), LABEL, out_dir=out, **options)


def statuses(report) -> dict[str, str]:
    return {t.track_id: t.status for t in report.tracks}


def snapshot(out: Path) -> dict[str, tuple[str, int]]:
    """Every file but the lock: its hash and mtime, to show that a refused run touched nothing."""
    return {p.relative_to(out).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".gen.lock"}


def contents(out: Path) -> dict[str, object]:
    """Every file's bytes, the manifest without its mtimes (they say when, not what)."""
    found: dict[str, object] = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if not path.is_file() or path.name == ".gen.lock":
            continue
        found[rel] = path.read_bytes()
        if rel == "manifest.json":
            manifest = json.loads(found[rel])
            for record in manifest["tracks"].values():
                for entry in record["files"].values():
                    entry.pop("mtime_ns")
            found[rel] = manifest
    return found


def gen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True, cwd=ROOT,
                          env=CI_ENV, timeout=300)


def assert_one_error_line(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def never_sample(monkeypatch):
    """Make any sampling fail the test: what is finished must not be sampled again."""
    import generator.library.pipeline as pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("a finished track was sampled again")

    monkeypatch.setattr(pipeline, "_compose", refuse)


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_checkpoint):  # noqa: F811 (the imported fixture)
    """One finished MIDI-only library, its recipe and a copy of its bytes; tests copy it before changing it."""
    folder = tmp_path_factory.mktemp("library")
    checkpoint = folder / "model.pt"
    shutil.copyfile(tiny_checkpoint, checkpoint)
    recipe = recipe_file(folder, checkpoint)
    report = build(recipe, folder / "out")
    assert set(statuses(report).values()) == {"done"}
    return Library(folder, contents(folder / "out"))


class Library(tuple):
    """(folder, contents) with a short repr, for hypothesis' failure reports."""

    def __new__(cls, folder: Path, files: dict):
        return super().__new__(cls, (folder, files))

    def __repr__(self) -> str:
        return f"Library({self[0]})"


def copy_library(library, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy (recipe, model and out/) whose recipe points at the copy."""
    folder, _ = library
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    recipe = yaml.safe_load((tmp_path / "recipe.yaml").read_text())
    recipe["model"], recipe["output"] = str(tmp_path / "model.pt"), str(tmp_path / "out")
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return tmp_path / "recipe.yaml", tmp_path / "out"


def edit_recipe(path: Path, **changes) -> None:
    recipe = yaml.safe_load(path.read_text())
    recipe.update(changes)
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")


def other_model(path: Path) -> None:
    import torch

    from generator.model.checkpoint import save_checkpoint
    from generator.model.transformer import ModelConfig, MusicTransformer

    torch.manual_seed(1)
    save_checkpoint(path, MusicTransformer(ModelConfig.tiny()), {"name": "tiny-test"})


def test_a_changed_seed_duration_or_model_is_refused_and_touches_nothing(library, tmp_path):
    recipe, out = copy_library(library, tmp_path)
    before = snapshot(out)
    original = recipe.read_text()
    for change, part in ((lambda: edit_recipe(recipe, seed=12), "seed"),
                         (lambda: edit_recipe(recipe, duration_s=3), "duration_s"),
                         (lambda: other_model(tmp_path / "model.pt"), "model")):
        recipe.write_text(original, encoding="utf-8")
        change()
        line = assert_one_error_line(gen("batch", str(recipe), "--quiet"), 2)
        assert "10 finished track(s)" in line and "--rebuild-changed" in line and str(out) in line
        assert f": {part}" in line or f", {part}" in line, line
        assert snapshot(out) == before
    assert {p.name for p in tmp_path.iterdir()} == {"recipe.yaml", "model.pt", "out"}


CHANGES = {  # a recipe edit -> what the error line names for it
    "seed": ({"seed": 99}, "seed"),
    "duration": ({"duration_s": [2, 3]}, "duration_s"),
    "title": ({"title_template": "Take {n}"}, "title"),
    "name": ({"name": "Resume Lib!"}, "name"),  # the same slug, so the same track ids
    "renamed": ({"name": "Other Lib"}, "no longer in the recipe's plan"),  # other ids: the old tracks are stale
    "fewer": ({"genres": {"jazz": 5, "calm": 4}}, "genre"),  # track 6 turns calm, track 10 is gone
    "instrumentation": ({"instrumentation": {"jazz": {"piano": 1}}}, "instrumentation"),
    "temperature": ({"sampling": {"temperature": [0.5, 0.6], "top_k": 40}}, "sampling"),
    "max_attempts": ({"loops": {**PERMISSIVE_LOOPS, "max_attempts": 3}}, "loops"),
    "ending": ({"mastering": {"ending": "fade"}}, "ending"),
    "outputs": ({"outputs": {**MIDI_ONLY, "wav": True}}, "outputs"),
}
HARMLESS = {  # edits that say where or how fast, not what: finished tracks are kept
    "device": {"device": "cuda"},
    "time_budget": {"time_budget_s": 600},
    "catalogue": {"outputs": {**MIDI_ONLY, "catalogue": False}},
    "mastering of a MIDI-only library": {"mastering": {"target_lufs": -16}},
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.sampled_from(sorted(CHANGES)), min_size=1, max_size=3, unique=True),
       harmless=st.lists(st.sampled_from(sorted(HARMLESS)), max_size=2, unique=True))
def test_any_change_to_what_makes_a_track_is_refused_before_anything_is_touched(library, tmp_path_factory, edits,
                                                                                  harmless, monkeypatch):
    from generator.errors import RecipeError

    never_sample(monkeypatch)
    recipe, out = copy_library(library, tmp_path_factory.mktemp("fuzz"))
    changes = {}
    for name in [*harmless, *edits]:
        changes.update(CHANGES[name][0] if name in CHANGES else HARMLESS[name])
    edit_recipe(recipe, **changes)
    before = snapshot(out)
    with pytest.raises(RecipeError) as refused:
        build(recipe, out)
    message = str(refused.value)
    assert "\n" not in message and "--rebuild-changed" in message
    assert any(CHANGES[name][1] in message for name in edits), (edits, message)
    assert snapshot(out) == before


@pytest.mark.parametrize("name", sorted(HARMLESS))
def test_edits_that_do_not_change_a_track_keep_it(library, tmp_path, name, monkeypatch):
    never_sample(monkeypatch)
    recipe, out = copy_library(library, tmp_path)
    edit_recipe(recipe, **HARMLESS[name])
    assert set(statuses(build(recipe, out)).values()) == {"skipped"}


def test_rebuild_changed_rebuilds_only_the_changed_tracks_and_equals_a_fresh_build(library, tmp_path):
    recipe, out = copy_library(library, tmp_path / "lib")
    edit_recipe(recipe, instrumentation={"calm": {"piano": 4, "strings": 49}})  # only the calm tracks change
    report = build(recipe, out, rebuild_changed=True)
    genres = {t.track_id: t.genre for t in report.tracks}
    assert statuses(report) == {t: "done" if g == "calm" else "skipped" for t, g in genres.items()}
    fresh = build(recipe, tmp_path / "fresh" / "out")
    assert set(statuses(fresh).values()) == {"done"}
    assert contents(out) == contents(tmp_path / "fresh" / "out")


def test_rebuild_changed_with_new_titles_leaves_no_old_folder(library, tmp_path):
    recipe, out = copy_library(library, tmp_path / "lib")
    edit_recipe(recipe, title_template="Night {n}")
    assert set(statuses(build(recipe, out, rebuild_changed=True)).values()) == {"done"}
    build(recipe, tmp_path / "fresh" / "out")
    assert contents(out) == contents(tmp_path / "fresh" / "out")


def test_tracks_without_a_fingerprint_are_refused_then_rebuilt_on_request(library, tmp_path):
    from generator.errors import RecipeError

    recipe, out = copy_library(library, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    for record in manifest["tracks"].values():  # what an older gen wrote
        del record["fingerprint"], record["files"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RecipeError, match="no fingerprint"):
        build(recipe, out)
    assert set(statuses(build(recipe, out, rebuild_changed=True)).values()) == {"done"}
    assert contents(out) == library[1]


def damage_tracks(out: Path) -> dict[str, str]:
    """Damage five tracks five ways; returns track id -> what was done."""
    manifest = json.loads((out / "manifest.json").read_text())
    ids = sorted(manifest["tracks"])
    folder = {t: out / manifest["tracks"][t]["folder"] for t in ids}
    (midi0,) = folder[ids[0]].glob("*.mid")
    midi0.unlink()
    (midi1,) = folder[ids[1]].glob("*.mid")
    data = bytearray(midi1.read_bytes())
    data[-5] ^= 0x01  # same size, other content
    midi1.write_bytes(bytes(data))
    sidecar3 = out / manifest["tracks"][ids[3]]["sidecar"]
    sidecar3.write_text("{not json")
    sidecar9 = out / manifest["tracks"][ids[9]]["sidecar"]
    sidecar9.write_bytes(b"")
    (midi8,) = folder[ids[8]].glob("*.mid")
    midi8.unlink()
    midi8.symlink_to(midi1)  # a link is never a finished file
    return {ids[0]: "midi deleted", ids[1]: "midi byte flipped", ids[3]: "sidecar corrupt",
            ids[8]: "midi is a link", ids[9]: "sidecar empty"}


def test_damaged_tracks_are_repaired_to_a_fresh_build(library, tmp_path):
    recipe, out = copy_library(library, tmp_path)
    damaged = damage_tracks(out)
    report = build(recipe, out)
    assert statuses(report) == {t: "done" if t in damaged else "skipped" for t in statuses(report)}
    assert contents(out) == library[1]
    assert set(statuses(build(recipe, out)).values()) == {"skipped"}  # and it stays repaired


def test_damaged_tracks_are_repaired_by_the_cli_with_exit_0(library, tmp_path):
    recipe, out = copy_library(library, tmp_path)
    damaged = damage_tracks(out)
    result = gen("batch", str(recipe), "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert {t["track_id"] for t in report["tracks"] if t["status"] == "done"} == set(damaged)
    assert {p.relative_to(out).as_posix() for p in out.rglob("*.mid")} == \
        {rel for rel in library[1] if rel.endswith(".mid")}


@pytest.mark.parametrize("how", ["deleted", "garbage", "truncated", "not an object"])
def test_a_missing_or_damaged_manifest_is_rebuilt_from_the_sidecars_without_sampling(library, tmp_path, how,
                                                                                    monkeypatch):
    recipe, out = copy_library(library, tmp_path)
    manifest = out / "manifest.json"
    text = manifest.read_text()
    manifest.unlink()
    if how == "garbage":
        manifest.write_bytes(b"\x00\xff garbage")
    elif how == "truncated":
        manifest.write_text(text[: len(text) // 2])
    elif how == "not an object":
        manifest.write_text(json.dumps({"tracks": {"x": [1]}}))
    never_sample(monkeypatch)
    report = build(recipe, out)
    assert set(statuses(report).values()) == {"skipped"}
    assert contents(out) == library[1]


@pytest.mark.parametrize("kind", ["folder", "link", "pipe"])
def test_a_manifest_that_is_not_a_regular_file_is_refused_in_one_line(library, tmp_path, kind):
    recipe, out = copy_library(library, tmp_path)
    manifest = out / "manifest.json"
    manifest.unlink()
    if kind == "folder":
        manifest.mkdir()
    elif kind == "link":
        manifest.symlink_to(tmp_path / "recipe.yaml")
    else:
        os.mkfifo(manifest)
    before = snapshot(out) if kind != "pipe" else None
    line = assert_one_error_line(gen("batch", str(recipe), "--quiet"), 2)
    assert "manifest.json is not a regular file" in line
    assert kind == "pipe" or snapshot(out) == before


def test_a_deleted_manifest_is_rebuilt_by_the_cli_with_nothing_sampled(library, tmp_path):
    recipe, out = copy_library(library, tmp_path)
    (out / "manifest.json").unlink()
    result = gen("batch", str(recipe), "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert {t["status"] for t in report["tracks"]} == {"skipped"} and report["stage_s"]["sample"] == 0
    assert contents(out) == library[1]


def test_titles_that_slug_alike_get_distinct_ids_and_files(tmp_path, tiny_checkpoint):  # noqa: F811
    from generator.library.export import safe_name
    from generator.library.plan import plan_tracks
    from generator.library.recipe import load_recipe

    long_name = "Morning " * 14  # every title is cut to the same 32 characters in its file name
    recipe = recipe_file(tmp_path, tiny_checkpoint, name=long_name.strip(), genres={"jazz": 3},
                         title_template="{name} {n}")
    plans = plan_tracks(load_recipe(recipe))
    assert len({safe_name(p.title)[:32] for p in plans}) == 1
    assert len({p.track_id for p in plans}) == 3
    report = build(recipe, tmp_path / "out")
    folders = [t.folder for t in report.tracks]
    assert len(set(folders)) == 3
    assert len(list((tmp_path / "out").glob("*/*.mid"))) == 3


def test_recipes_whose_names_slug_alike_do_not_share_finished_tracks(tmp_path, tiny_checkpoint):  # noqa: F811
    """'Café Lib' and 'Caf Lib' give the same track ids and default folder; the second is refused."""
    first = recipe_file(tmp_path / "a", tiny_checkpoint, name="Café Lib", genres={"jazz": 2},
                        output=str(tmp_path / "out"))
    second = recipe_file(tmp_path / "b", tiny_checkpoint, name="Caf Lib", genres={"jazz": 2},
                         output=str(tmp_path / "out"))
    build(first, tmp_path / "out")
    before = snapshot(tmp_path / "out")
    line = assert_one_error_line(gen("batch", str(second), "--quiet"), 2)
    assert "caf_lib_001" in line and "name" in line and "title" in line
    assert snapshot(tmp_path / "out") == before


def wav_recipe(folder: Path, checkpoint: Path) -> Path:
    return recipe_file(folder, checkpoint, genres={"jazz": 2, "calm": 1}, duration_s=3,
                       outputs={"wav": True, "mp3": False, "stems": False, "cutdowns_s": [2], "catalogue": True})


@pytest.mark.slow
def test_damaged_wavs_and_a_deleted_manifest_are_repaired_to_the_bytes_of_a_fresh_build(tmp_path,
                                                                                       tiny_checkpoint):  # noqa: F811
    recipe = wav_recipe(tmp_path, tiny_checkpoint)  # one recipe file: the sidecars record its path
    fresh, out = tmp_path / "fresh" / "out", tmp_path / "lib" / "out"
    assert gen("batch", str(recipe), "--quiet", "--out", str(fresh)).returncode == 0
    expected = contents(fresh)
    assert any(rel.endswith(".wav") for rel in expected)

    assert gen("batch", str(recipe), "--quiet", "--out", str(out)).returncode == 0
    wavs = sorted(out.glob("*/*[0-9a-f].wav"))  # the full mixes, not the cut-downs
    wavs[0].write_bytes(b"")  # emptied
    with open(wavs[-1], "r+b") as handle:  # same size, other samples, a new mtime
        handle.seek(-4, 2)
        handle.write(b"\x01\x02\x03\x04")
    result = gen("batch", str(recipe), "--json", "--out", str(out))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert {t["folder"] for t in report["tracks"] if t["status"] == "done"} == {wavs[0].parent.name,
                                                                                wavs[-1].parent.name}
    assert contents(out) == expected

    (out / "manifest.json").unlink()
    again = json.loads(gen("batch", str(recipe), "--json", "--out", str(out)).stdout)
    assert {t["status"] for t in again["tracks"]} == {"skipped"} and again["stage_s"]["sample"] == 0
    assert contents(out) == expected
