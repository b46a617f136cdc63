"""A recipe's bpm, meter, key, grid and humanize: parsing, per-genre settings and the per-track draws."""

from __future__ import annotations

import dataclasses

import pytest

from generator.library import recipe_fields as rf
from generator.library.fingerprint import PARTS, STYLE_PARTS, track_fingerprints
from generator.library.plan import DEFAULT_GRIDS, plan_tracks
from generator.library.recipe import parse_recipe
from generator.tokens import vocab

BASE = "name: Styled\nseed: 11\nduration_s: [70, 120]\nsampling:\n  temperature: [0.8, 1.2]\n  top_k: [10, 80]\n"


def recipe(extra: str = "", genres: str = "{jazz: 6, calm: 3, classic: 2, pop: 1}"):
    return parse_recipe(f"{BASE}genres: {genres}\n{extra}", "styled.yaml", check_files=False)


def test_style_keys_parse_at_the_top_level():
    r = recipe("bpm: [84, 100]\nmeter: [3/4, ' 6 / 8 ']\nkey: [C, Am, F# minor, Eb major, Bbm]\n"
               "grid: [4, 3]\nhumanize: true\n")
    assert r.bpm == (84.0, 100.0) and r.meter == ((3, 4), (6, 8)) and r.grid == (4, 3) and r.humanize is True
    assert r.key == ("C major", "A minor", "F# minor", "Eb major", "Bb minor")
    one = recipe("bpm: 96\nmeter: 4/4\nkey: D\ngrid: 4\n")
    assert (one.bpm, one.meter, one.key, one.grid) == ((96.0, 96.0), ((4, 4),), ("D major",), (4,))
    unset = recipe()
    assert (unset.bpm, unset.meter, unset.key, unset.grid, unset.humanize, unset.genre_settings) == \
           (None, None, None, None, False, {})
    assert recipe("key: ANY\n").key == ()


def test_genre_settings_replace_the_top_level_for_their_genre():
    r = recipe("bpm: 120\nkey: [C]\nhumanize: true\ngenre_settings:\n  Ambient: {bpm: [60, 70], key: any, "
               "humanize: false}\n  jazz:\n    meter: 3/4\n    grid: [3]\n  pop:\n")
    assert set(r.genre_settings) == {"calm", "jazz", "pop"}
    assert r.style("calm", "bpm") == (60.0, 70.0) and r.style("jazz", "bpm") == (120.0, 120.0)
    assert r.style("ambient", "key") == () and r.style("jazz", "key") == ("C major",)
    assert r.style("calm", "humanize") is False and r.style("pop", "humanize") is True
    assert r.style("jazz", "meter") == ((3, 4),) and r.style("classic", "meter") is None
    by_genre = {}
    for plan in plan_tracks(r):
        by_genre.setdefault(plan.genre, []).append(plan)
    assert all(60 <= p.bpm <= 70 and p.key is None and not p.humanize for p in by_genre["calm"])
    assert all(p.bpm == 120 and p.key == "C major" and p.humanize for p in by_genre["pop"])
    assert all(p.meter == (3, 4) and p.grid == (3,) for p in by_genre["jazz"])
    assert all(p.meter is None and p.grid == DEFAULT_GRIDS["classic"] for p in by_genre["classic"])


def test_unset_keys_leave_the_plan_as_it_was():
    for plan in plan_tracks(recipe()):
        assert (plan.bpm, plan.meter, plan.key, plan.humanize) == (None, None, None, False)
        assert plan.grid == DEFAULT_GRIDS[plan.genre]
    assert DEFAULT_GRIDS == {"classic": (4, 3), "jazz": (3,), "calm": (2,), "pop": (4,)}


def test_new_draws_never_move_the_old_ones():
    old = plan_tracks(recipe())
    new = plan_tracks(recipe("bpm: [60, 140]\nmeter: [2/4, 3/4, 4/4]\nkey: [C, D, E, F]\nhumanize: true\n"))
    fields = ("index", "track_id", "genre", "seed", "duration_s", "sampling", "title")
    assert [[getattr(p, f) for f in fields] for p in old] == [[getattr(p, f) for f in fields] for p in new]
    # Pinned: a change here changes every library made from a recipe with these keys.
    assert [(p.bpm, p.meter, p.key) for p in new[:3]] == [
        (112.0, (2, 4), "E major"), (124.0, (3, 4), "D major"), (67.0, (4, 4), "C major")]
    assert old[0].duration_s == 101.3 and old[0].sampling.top_k == 40  # and the old draws stay pinned too


def test_setting_or_narrowing_one_new_key_leaves_the_other_draws_alone():
    wide = plan_tracks(recipe("bpm: [60, 140]\nmeter: [2/4, 3/4, 4/4]\nkey: [C, D, E, F]\n"))
    narrow = plan_tracks(recipe("bpm: 90\nmeter: [2/4, 3/4, 4/4]\nkey: [C, D, E, F]\n"))
    no_bpm = plan_tracks(recipe("meter: [2/4, 3/4, 4/4]\nkey: [C, D, E, F]\n"))
    assert [(p.meter, p.key) for p in wide] == [(p.meter, p.key) for p in narrow] == [(p.meter, p.key) for p in no_bpm]
    assert {p.bpm for p in narrow} == {90.0} and {p.bpm for p in no_bpm} == {None}


def test_bpm_draws_whole_numbers_from_whole_ends_and_tenths_otherwise():
    whole = [p.bpm for p in plan_tracks(recipe("bpm: [90, 92]\n", genres="{jazz: 60}"))]
    assert set(whole) == {90.0, 91.0, 92.0}
    fine = [p.bpm for p in plan_tracks(recipe("bpm: [92.5, 93.5]\n"))]
    assert all(92.5 <= b <= 93.5 and round(b, 1) == b for b in fine) and len(set(fine)) > 1


def test_a_bpm_range_is_used_to_make_whole_bars_fill_the_duration():
    """A track is whole bars: within its range the tempo is nudged so that they last its duration
    (to 1%); a single bpm is kept as given, whatever the bars come to."""
    short = "name: S\nseed: 3\nduration_s: [8, 40]\noutputs: {cutdowns_s: []}\n"
    plans = plan_tracks(parse_recipe(f"{short}genres: {{jazz: 40}}\nbpm: [80, 120]\nmeter: [3/4, 4/4, 6/8]\n",
                                     "s.yaml", check_files=False))
    for p in plans:
        bar_s = vocab.quarters_per_bar(p.meter) * 60 / p.bpm
        bars = p.duration_s / bar_s
        assert 80 <= p.bpm <= 120 and p.bpm.is_integer()
        assert abs(round(bars) - bars) / bars <= vocab.BAR_FIT, (p.duration_s, p.meter, p.bpm)
    fixed = plan_tracks(parse_recipe(f"{short}genres: {{jazz: 10}}\nbpm: 97\n", "s.yaml", check_files=False))
    assert {p.bpm for p in fixed} == {97.0}


def test_meters_and_grid_divisions_are_the_samplers():
    from generator.sampling.generate import GRID_DIVISIONS, SUPPORTED_METERS

    assert rf.METERS == SUPPORTED_METERS and rf.GRID_DIVISIONS == GRID_DIVISIONS


def test_fingerprints_of_a_recipe_without_the_new_keys_are_unchanged():
    # A library made before these keys existed must not be refused on a re-run.
    plain = recipe("model: /nonexistent.pt\n")
    plans = plan_tracks(plain)
    prints = track_fingerprints(plain.model_copy(update={"model": __file__}), plans, None)
    assert all(set(p.parts) == set(PARTS) for p in prints.values())
    styled = recipe("key: [D]\nhumanize: true\ngenre_settings:\n  jazz: {grid: [4]}\n")
    styled_prints = track_fingerprints(styled.model_copy(update={"model": __file__}), plan_tracks(styled), None)
    for plan in plan_tracks(styled):
        changes = styled_prints[plan.track_id].changes(prints[plan.track_id].as_dict())
        assert changes == ["key", *(["grid"] if plan.genre == "jazz" else []), "humanize"], (plan.genre, changes)
    assert set(STYLE_PARTS) == {"bpm", "meter", "key", "grid", "humanize", "form"}


@pytest.mark.parametrize("extra", ["bpm: 90\n", "meter: 3/4\n", "grid: [4]\n", "form: auto\n", "harmony: model\n",
                                   "genre_settings:\n  jazz: {bpm: 90}\n"])
def test_the_recipe_names_the_beat_keys_it_sets(extra):
    r = recipe(extra)
    assert r.beat_keys_set() == [extra.split(":")[0] if not extra.startswith("genre") else "genre_settings.jazz.bpm"]
    assert recipe("key: D\nhumanize: true\n").beat_keys_set() == []
    # a genre the recipe makes no track of does not count
    assert recipe("genre_settings:\n  pop: {bpm: 90}\n", genres="{jazz: 2}").beat_keys_set() == []


def test_plans_are_plain_data():
    plan = plan_tracks(recipe("bpm: 90\nmeter: 6/8\nkey: Eb\n"))[0]
    data = dataclasses.asdict(plan)
    assert (data["bpm"], data["meter"], data["key"]) == (90.0, (6, 8), "Eb major")
