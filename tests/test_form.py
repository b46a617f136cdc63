"""A track's form: templates fitted to its bars, progressions in its key, repeats rebuilt from their
first statement, the final downbeat, and the sidecar's sections."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from generator.errors import RecipeError
from generator.library import form as F
from generator.library.arrange import BASS, DRUMS, TIMEKEEPING, arrange
from generator.library.plan import plan_tracks
from generator.library.recipe import parse_recipe
from generator.tokens import beat_codec, chords, vocab
from generator.tokens.encoding import BEAT
from generator.tokens.notes import Note

sys.path.insert(0, str(Path(__file__).parent))
from test_pipeline import no_audio_tools  # noqa: E402, F401  (the fixture)

BASE = "name: Formed\nseed: 5\nduration_s: [70, 120]\n"


def recipe(extra: str = "", genres: str = "{jazz: 3, pop: 2, classic: 2, calm: 2}"):
    return parse_recipe(f"{BASE}genres: {genres}\n{extra}", "formed.yaml", check_files=False)


def choice(genre="jazz", form="auto", harmony="template", key=None, u=(0.1, 0.2, 0.5, 0.7, 0.3, 0.9)):
    return F.choose(genre, form, harmony, key, u)


# ---- plans ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("template", sorted(F.TEMPLATES))
def test_templates_fill_every_track_length_with_whole_sections(template):
    for n_bars in range(1, 260):
        sections = F.fit_sections(replace(choice(), template=template), n_bars)
        assert sum(s.bars for s in sections) == n_bars
        assert [s.start_bar for s in sections] == list(np.cumsum([0] + [s.bars for s in sections])[:-1])
        body = [s for s in sections if s.name not in F.EDGES]
        assert body and sections[-1].name == "outro" or n_bars < 2
        if n_bars >= 2 + F.MIN_EDGE_BARS:
            assert len({s.bars for s in body}) == 1 and body[0].bars % 4 == 0
            assert sum(s.bars for s in sections if s.name == "intro") <= 4


def test_the_usual_lengths_give_the_named_forms():
    names = lambda c, n: [f"{s.name} {s.bars}" for s in F.fit_sections(c, n)]  # noqa: E731
    assert names(choice("jazz"), 40) == ["intro 4", "A 8", "A 8", "B 8", "A 8", "outro 4"]
    assert names(choice("jazz"), 50) == ["intro 4", "A 8", "A 8", "B 8", "A 8", "A 8", "outro 6"]
    assert names(choice("pop"), 40) == ["intro 4", "A 8", "B 8", "A 8", "B 8", "outro 4"]
    assert names(choice("classic"), 36) == ["intro 2", "A 8", "A 8", "B 8", "A 8", "outro 2"]
    assert names(choice("classic"), 33) == ["intro 4", "A 8", "B 8", "A 8", "outro 5"]
    assert names(choice("calm"), 24) == ["intro 2", "A 4", "A 4", "B 4", "B 4", "A 4", "outro 2"]
    listed = choice(form=F.listed_form(["intro 2", "A 8", "B 8", "A 8", "outro 2"]))
    assert names(listed, 30) == ["intro 2", "A 8", "B 8", "A 8", "outro 4"]
    assert names(listed, 20) == ["intro 2", "A 8", "B 8", "outro 2"]


def test_unset_form_leaves_plans_and_fingerprints_alone_and_the_draws_come_last():
    from generator.library.fingerprint import track_fingerprints

    old, new = plan_tracks(recipe()), plan_tracks(recipe("form: auto\n"))
    assert all(p.form is None for p in old) and all(p.form is not None for p in new)
    assert [replace(p, form=None) for p in new] == old
    assert plan_tracks(recipe("form: auto\n")) == new  # deterministic per seed
    plain = recipe().model_copy(update={"model": __file__})
    formed = recipe("form: auto\n").model_copy(update={"model": __file__})
    before, after = track_fingerprints(plain, old, None), track_fingerprints(formed, new, None)
    assert all("form" not in f.parts for f in before.values())
    assert all(after[p.track_id].changes(before[p.track_id].as_dict()) == ["form"] for p in new)


def test_form_and_harmony_parse_at_the_top_level_and_per_genre():
    r = recipe("form: aaba\nharmony: {A: [Dm7, G7, 'Cmaj7 A7', Cmaj7], b: [Fmaj7]}\n"
               "genre_settings:\n  pop: {form: [intro 2, A 8, C 8], harmony: model}\n")
    assert r.form == "aaba" and r.harmony["B"] == ((chords.chord_named("Fmaj7"),),)
    assert r.harmony["A"][2] == (chords.chord_named("Cmaj7"), chords.chord_named("A7"))
    assert r.style("pop", "form") == (("intro", 2), ("A", 8), ("C", 8)) and r.style("pop", "harmony") == "model"
    assert r.beat_keys_set() == ["form", "harmony", "genre_settings.pop.form", "genre_settings.pop.harmony"]
    jazz = next(p for p in plan_tracks(r) if p.genre == "jazz").form
    assert (jazz.harmony, jazz.key_name, jazz.moved) == ("recipe", "C major", 0)
    moved = plan_tracks(recipe("form: auto\nharmony: {A: [Dm7, G7, Cmaj7]}\nkey: Eb\n"))[0]
    assert moved.form.key_name == "Eb major" and moved.form.moved == 3
    assert dict(moved.form.given)["A"][0] == (chords.chord_named("Fm7"),)


@pytest.mark.parametrize("extra,where", [
    ("form: rondo\n", "form"), ("form: [A eight]\n", "form[0]"), ("form: [intro 4, outro 4]\n", "form"),
    ("harmony: jazzy\n", "harmony"), ("harmony: {A: [Dm7, Hm7]}\n", "harmony.A"),
    ("harmony: {AB: [C]}\n", "harmony.AB"),
    ("genre_settings:\n  jazz: {form: 3}\n", "genre_settings.jazz.form"),
])
def test_a_bad_form_or_harmony_is_one_line_naming_the_key(extra, where):
    with pytest.raises(RecipeError) as error:
        recipe(extra)
    assert f": {where}: " in str(error.value) and "\n" not in str(error.value)


# ---- harmony ----------------------------------------------------------------------------------------

def test_numerals_render_in_every_key():
    assert F.progression("IIm7 V7 | Imaj7", 2) == ((chords.chord_named("Em7"), chords.chord_named("A7")),
                                                   (chords.chord_named("Dmaj7"),))
    assert F.numeral_chord("bVImaj7", 0) == chords.chord_named("Abmaj7")
    assert F.numeral_chord("#IVm7b5", 7) == chords.chord_named("Dbm7b5")
    assert F.chord_named("C#m7") == F.chord_named("Dbm7") and F.chord_named("N.C.") is None
    for (genre, _), library in F.PROGRESSIONS.items():
        for texts in library.values():
            for text in texts:
                for tonic in range(12):
                    shifted = F.progression(text, tonic)
                    assert shifted == tuple(tuple(chords.transpose_chord(c, tonic) for c in bar)
                                            for bar in F.progression(text, 0)), (genre, text)


@pytest.mark.parametrize("genre", vocab.GENRES)
@pytest.mark.parametrize("minor", [False, True])
def test_every_plan_ends_on_its_home_chord_after_a_cadence(genre, minor):
    for tonic in range(12):
        c = replace(choice(genre), tonic=tonic, minor=minor)
        plan = F.plan_form(c, genre, 36)
        assert len(plan.bar_chords) == 36 and plan.bar_chords[-1] == (c.home_chord,)
        assert chords.root_of(c.home_chord) == tonic and chords.quality_of(c.home_chord) == (1 if minor else 0)
        dominant = [x for x in plan.bar_chords[-2] if chords.root_of(x) == (tonic + 7) % 12]
        assert dominant or genre == "pop" and minor is False, (genre, plan.bar_chords[-2])
        a = [s for s in plan.sections if s.name == "A"]
        assert all(plan.bar_chords[s.start_bar:s.start_bar + s.bars] ==
                   plan.bar_chords[a[0].start_bar:a[0].start_bar + a[0].bars] for s in a)


@pytest.mark.parametrize("genre", vocab.GENRES)
@pytest.mark.parametrize("minor", [False, True])
def test_every_a_progression_and_intro_reads_as_its_key_to_music21(genre, minor):
    """The A section comes back three times: its chords alone (block chords, the root doubled below)
    must name the home key (or its relative) in music21's key analysis, a tool we did not write. The
    pop axis progression I-V-vi-IV, for one, reads as the key of its IV."""
    music21 = pytest.importorskip("music21")
    library = F.PROGRESSIONS[(genre, minor)]
    for text in library["A"] + library["intro"]:
        stream = music21.stream.Stream()
        for bar in F.progression(text, 0):
            for c in bar:
                root = chords.root_of(c)
                voicing = [48 + root] + sorted(60 + root + (p - root) % 12 for p in chords.pitch_classes(c))
                stream.append(music21.chord.Chord(voicing, quarterLength=4 / len(bar)))
        key = stream.analyze("key")
        name = f"{key.tonic.name} {key.mode}"
        assert name in (("C minor", "E- major") if minor else ("C major", "A minor")), (genre, text, name)


def test_changes_put_the_second_chord_of_a_bar_on_the_grid():
    plan = F.FormPlan(choice(), (F.Section("A", 0, 2),), ((1, 2), (2,)))
    assert plan.changes((4, 4), (4,)) == ((0.0, 1), (2.0, 2))
    assert plan.changes((3, 4), (4,)) == ((0.0, 1), (1.5, 2))
    assert plan.changes((3, 4), (3, 4)) == ((0.0, 1), (1.0, 2))
    assert F.FormPlan(choice(harmony="model"), (F.Section("A", 0, 2),), ()).changes((4, 4), (4,)) is None


# ---- composition ------------------------------------------------------------------------------------

def _random_take(plan: F.FormPlan, meter=(4, 4), seed=0) -> list[int]:
    """A take as the sampler makes it: every family on the grid in every bar, the planned chords."""
    rng = np.random.default_rng(seed)
    bar = beat_codec.steps_per_bar(meter)
    notes = []
    for b in range(plan.n_bars - 1):
        for family, low in ((0, 60), (BASS, 36), (DRUMS, 36)):
            for _ in range(3):
                start = b * bar + 12 * int(rng.integers(0, bar // 12))
                notes.append(Note(int(low + rng.integers(0, 12)), BEAT.seconds(start), BEAT.seconds(start + 12),
                                  int(rng.integers(40, 100)), family))
    changes = [(round(beat * 48), c) for beat, c in plan.changes(meter, (4,))]
    piece = beat_codec.BeatPiece(tuple(sorted(notes, key=lambda n: (n.start_s, n.instrument, n.pitch))),
                                 beat_codec.regular_bars(meter, plan.n_bars * bar), tuple(changes))
    return beat_codec.encode(piece, BEAT) + BEAT.shift_tokens(bar) + [vocab.END]


def _notes(ids, families, lo, hi, shift=0):
    return sorted((BEAT.tick(n.start_s) - shift, BEAT.tick(n.end_s) - shift, n.instrument, n.pitch, n.velocity)
                  for n in BEAT.decode(ids) if n.instrument in families and lo <= BEAT.tick(n.start_s) < hi)


def test_repeats_carry_the_first_statements_bass_and_drums_and_most_of_its_melody():
    plan = F.plan_form(choice("jazz"), "jazz", 40)
    take = _random_take(plan)
    ids = arrange(take, plan, (4, 4), BEAT)
    # the same rules without repeats: every section its own letter
    own = arrange(take, replace(plan, sections=tuple(replace(s, name=f"{s.name}{i}")
                                                     for i, s in enumerate(plan.sections))), (4, 4), BEAT)
    bar = 192
    a = [s for s in plan.sections if s.name == "A"]
    assert len(a) == 3
    first = a[0].start_bar * bar
    for s in a[1:]:
        start, size, varied = s.start_bar * bar, s.bars * bar, plan.varied_bars(s.bars) * bar
        assert _notes(ids, {BASS, DRUMS}, start, start + size, start - first) == \
               _notes(ids, {BASS, DRUMS}, first, first + size)
        assert _notes(ids, {0}, start, start + size - varied, start - first) == \
               _notes(ids, {0}, first, first + size - varied)
        assert _notes(ids, {0}, start + size - varied, start + size) == _notes(own, {0}, start + size - varied,
                                                                               start + size)
        assert _notes(ids, {0}, start + size - varied, start + size) != \
               _notes(ids, {0}, first + size - varied, first + size, first - start)
    b = next(s for s in plan.sections if s.name == "B")
    assert _notes(ids, {0, BASS, DRUMS}, b.start_bar * bar, (b.start_bar + 8) * bar) == \
           _notes(own, {0, BASS, DRUMS}, b.start_bar * bar, (b.start_bar + 8) * bar)
    piece = beat_codec.decode_piece(ids, BEAT)
    assert len(piece.bars) == 40 and all(x.step == i * bar for i, x in enumerate(piece.bars))
    assert piece.chords == tuple((round(beat * 48), c) for beat, c in plan.changes((4, 4), (4,)))
    assert all(BEAT.tick(n.start_s) % 12 == 0 or BEAT.tick(n.start_s) % 16 == 0 for n in piece.notes)  # jazz grid
    assert int(BEAT.shift_ticks(ids).sum()) == 40 * bar and ids[-1] == vocab.END


def test_with_the_models_harmony_a_repeat_takes_the_first_statements_chords_and_keeps_its_own_ending():
    planned = F.plan_form(choice("jazz"), "jazz", 40)
    own = F.plan_form(choice("jazz", harmony="model"), "jazz", 40)
    assert own.bar_chords == () and own.sections == planned.sections
    take = _random_take(planned)  # stands for a take whose chords the model wrote
    before = beat_codec.decode_piece(take, BEAT).chords
    after = dict(beat_codec.decode_piece(arrange(take, own, (4, 4), BEAT), BEAT).chords)
    in_force = lambda changes, step: [c for s, c in changes if s <= step][-1]  # noqa: E731
    a = [s for s in own.sections if s.name == "A"]
    for s in a[1:]:
        shift = (s.start_bar - a[0].start_bar) * 192
        for bar in range(s.bars):
            step = (s.start_bar + bar) * 192
            source = step if bar >= s.bars - own.varied_bars(s.bars) else step - shift
            assert in_force(sorted(after.items()), step) == in_force(before, source)
    take_bass = _notes(take, {BASS}, a[1].start_bar * 192 + 6 * 192, (a[1].start_bar + 8) * 192)
    assert take_bass and _notes(arrange(take, own, (4, 4), BEAT), {BASS}, a[1].start_bar * 192 + 6 * 192,
                                (a[1].start_bar + 8) * 192) == take_bass


def _take(plan: F.FormPlan, notes, meter=(4, 4)) -> list[int]:
    """A take of hand-made (start, end, family, pitch) notes on the step clock, the plan's chords."""
    bar = beat_codec.steps_per_bar(meter)
    changes = [(round(beat * 48), c) for beat, c in plan.changes(meter, (4,)) or ()]
    piece = beat_codec.BeatPiece(tuple(Note(p, BEAT.seconds(s), BEAT.seconds(e), 80, f)
                                       for s, e, f, p in sorted(notes, key=lambda n: (n[0], n[2], n[3]))),
                                 beat_codec.regular_bars(meter, plan.n_bars * bar), tuple(changes))
    return beat_codec.encode(piece, BEAT) + BEAT.shift_tokens(bar) + [vocab.END]


def _bar_drums(ids, bar):
    return sorted((s - bar * 192, p) for s, _, f, p, _ in _notes(ids, {DRUMS}, bar * 192, bar * 192 + 192))


def test_each_section_grooves_on_its_most_typical_drum_bar_and_ends_on_its_own_fill():
    plan = F.FormPlan(choice(harmony="model"), (F.Section("A", 0, 4), F.Section("B", 4, 4),
                                                F.Section("outro", 8, 1)), ())
    kick, snare, hat = 36, 38, 42
    a = [[(0, kick), (96, snare)], [(0, kick), (96, snare), (48, hat)], [(0, kick), (48, hat), (144, hat)],
         [(0, snare), (48, snare), (96, snare), (144, snare)]]  # the medoid is the second bar; then a fill
    b = [[(0, kick)], [(0, snare)], [(0, hat)], [(0, kick), (96, kick)]]  # all alike as little: the first
    drums = [(bar * 192 + s, bar * 192 + s + 12, DRUMS, p) for bar, hits in enumerate(a + b) for s, p in hits]
    pitched = [(bar * 192, bar * 192 + 96, 0, 60 + bar) for bar in range(8)]  # out of key too: no harmony rules
    take = _take(plan, drums + pitched)
    ids = arrange(take, plan, (4, 4), BEAT)
    assert [_bar_drums(ids, bar) for bar in range(8)] == [sorted(a[1])] * 3 + [sorted(a[3])] + \
           [sorted(b[0])] * 3 + [sorted(b[3])]
    assert _notes(ids, {0, BASS}, 0, 8 * 192) == _notes(take, {0, BASS}, 0, 8 * 192)
    piece = beat_codec.decode_piece(ids, BEAT)
    assert [x.step for x in piece.bars] == [i * 192 for i in range(9)]


@pytest.mark.parametrize("timekeeper, pattern", [
    ("ride", [(0, 51), (48, 51), (96, 51), (144, 51), (80, 51), (176, 51), (48, 44), (144, 44)]
     + [(0, 35), (48, 35), (96, 35), (144, 35)]),
    ("backbeat", [(b * 48 + s, 42) for b in range(4) for s in (0, 24)] + [(0, 36), (96, 36), (48, 38), (144, 38)]),
])
def test_time_is_kept_on_every_beat_where_the_drums_play_but_in_fills_and_the_last_bar(timekeeper, pattern):
    plan = F.FormPlan(choice(harmony="model"), (F.Section("A", 0, 4), F.Section("B", 4, 4),
                                                F.Section("outro", 8, 1)), (), timekeeper=timekeeper)
    groove = [(0, 36), (60, 42), (96, 64), (120, 51)]  # kick, a hat off the beat, a conga, a ride
    fill = [(0, 38), (48, 38), (96, 38), (144, 38)]
    drums = [(bar * 192 + s, bar * 192 + s + 12, DRUMS, p)
             for bar in range(4) for s, p in (groove if bar < 3 else fill)]
    pitched = [(bar * 192, bar * 192 + 96, 0, 60) for bar in range(9)]  # B has no drums: none are added there
    ids = arrange(_take(plan, drums + pitched), plan, (4, 4), BEAT)
    _, replaced = TIMEKEEPING[timekeeper]
    kept = [(s, p) for s, p in groove if p not in replaced]
    assert kept and len(kept) < len(groove)
    for bar in range(3):
        assert _bar_drums(ids, bar) == sorted(pattern + kept)
    assert _bar_drums(ids, 3) == sorted(fill)
    assert all(_bar_drums(ids, bar) == [] for bar in range(4, 8))
    assert _bar_drums(ids, 8) == [(0, 36), (0, 49)]  # the final downbeat: kick and crash


def test_a_family_strikes_at_most_six_notes_at_once_and_no_cluster():
    c_major = 0
    plan = F.FormPlan(replace(choice(), tonic=0, minor=False), (F.Section("A", 0, 1), F.Section("outro", 1, 1)),
                      ((c_major,), (c_major,)))
    cluster = [(0, 96, 0, p) for p in range(86, 97)]  # D6..C7, eleven semitones at once (the model's)
    voicing = [(96, 192, 0, p) for p in (48, 55, 64, 67, 74, 76)]  # six notes, none a semitone apart: stays
    strings = [(96, 120, 2, 69), (96, 120, 2, 70),  # A and Bb: one semitone, left alone
               *[(120, 144, 2, p) for p in (55, 64, 69, 70)],  # a voicing with one semitone in it: stays
               *[(144, 168, 2, p) for p in (60, 62, 63, 64)]]  # D Eb E: three within a whole tone
    ids = arrange(_take(plan, cluster + voicing + strings), plan, (4, 4), BEAT)
    struck = _notes(ids, {0}, 0, 96)
    assert [p for _, _, _, p, _ in struck] == [86, 88, 91, 93, 96]  # top, bottom, G and E (its tones), then A
    assert [p for _, _, _, p, _ in _notes(ids, {0}, 96, 192)] == [48, 55, 64, 67, 74, 76]
    assert [(s, p) for s, _, _, p, _ in _notes(ids, {2}, 96, 192)] == [(96, 69), (96, 70), (120, 55), (120, 64),
                                                                        (120, 69), (120, 70), (144, 60), (144, 63),
                                                                        (144, 64)]


def test_jazz_drums_top_out_at_the_genres_ceiling_and_pitched_notes_keep_their_velocity():
    plan = F.plan_form(choice("jazz", harmony="model"), "jazz", 12)
    assert plan.drum_ceiling == F.DRUM_CEILING["jazz"] < 127
    assert F.plan_form(choice("pop"), "pop", 12).drum_ceiling == 127
    loud = [(bar * 192, bar * 192 + 12, DRUMS, 35) for bar in range(12)] + [(bar * 192, bar * 192 + 96, 0, 60)
                                                                          for bar in range(12)]
    piece = beat_codec.BeatPiece(tuple(Note(p, BEAT.seconds(s), BEAT.seconds(e), 126, f) for s, e, f, p in loud),
                                 beat_codec.regular_bars((4, 4), 12 * 192), ())
    take = beat_codec.encode(piece, BEAT) + [vocab.END]
    ids = arrange(take, plan, (4, 4), BEAT)
    one = beat_codec.BeatPiece((Note(35, 0.0, 0.1, F.DRUM_CEILING["jazz"], DRUMS),),
                               beat_codec.regular_bars((4, 4), 192), ())
    ceiling = BEAT.decode(beat_codec.encode(one, BEAT))[0].velocity  # the ceiling as the encoding stores it
    kicks = [v for start, _, _, p, v in _notes(ids, {DRUMS}, 0, 11 * 192) if p == 35 and start % 192 == 0]
    assert kicks and set(kicks) == {ceiling} and max(v for *_, v in _notes(ids, {DRUMS}, 0, 12 * 192)) <= ceiling
    assert _notes(ids, {0}, 0, 11 * 192) == _notes(take, {0}, 0, 11 * 192)


def test_the_bass_plays_one_note_at_a_time_the_lowest_of_those_starting_together():
    plan = F.FormPlan(choice(harmony="model"), (F.Section("A", 0, 2), F.Section("outro", 2, 1)), ())
    bass = [(0, 300, BASS, 40), (0, 96, BASS, 52), (96, 192, BASS, 43), (144, 384, BASS, 45)]
    ids = arrange(_take(plan, bass + [(0, 384, 0, 64)]), plan, (4, 4), BEAT)
    assert [(s, e, p) for s, e, _, p, _ in _notes(ids, {BASS}, 0, 384)] == [(0, 96, 40), (96, 144, 43),
                                                                             (144, 384, 45)]


def test_harmony_follows_the_plan_bass_on_roots_clashes_cut_strong_beats_and_avoid_notes_on_chord_tones():
    c_major, f_major, g_major = 0, 5, 7
    plan = F.FormPlan(replace(choice(), tonic=0, minor=False), (F.Section("A", 0, 2), F.Section("outro", 2, 1)),
                      ((c_major,), (f_major, g_major), (c_major,)))
    notes = [
        (0, 240, 0, 64),  # E held into F: ends at the change
        (0, 240, 0, 72),  # C held into F: a tone of F, it stays
        (186, 200, 0, 74),  # E cut at the change would be under a sixteenth: dropped
        (180, 200, 0, 71),  # B cut at the change leaves a sixteenth: kept
        (192, 240, 0, 61),  # Db on the bar line over F, out of key: to C
        (192, 240, 0, 62),  # D on the bar line, in the key: stays
        (240, 264, 0, 58),  # Bb off the strong beats, for half a beat: stays
        (96, 192, 0, 77),  # F held for two beats over C, a semitone from its E (an avoid note): to E
        (96, 192, 0, 62),  # D held for two beats over C, a whole tone from C and E (a ninth): stays
        (264, 336, 0, 59),  # B half a beat over F (a semitone from its C), held on into G, a tone of it: stays
        (288, 336, 0, 68),  # Ab on the middle-of-bar change to G, out of key: to G
        (0, 96, BASS, 38),  # D on the first change: to C
        (96, 336, BASS, 43),  # G sounding into F: ends, an F takes over until the next bass note
        (240, 264, BASS, 45),
        (288, 336, BASS, 40),  # E on the change to G: to G, the nearer octave
    ]
    take = _take(plan, notes)
    ids = arrange(take, plan, (4, 4), BEAT)
    got = {(s, e, f, p) for s, e, f, p, _ in _notes(ids, {0, BASS}, 0, 2 * 192)}
    assert got == {(0, 192, 0, 64), (0, 240, 0, 72), (180, 192, 0, 71), (192, 240, 0, 60), (192, 240, 0, 62),
                   (240, 264, 0, 58), (96, 192, 0, 76), (96, 192, 0, 62), (264, 336, 0, 59), (288, 336, 0, 67),
                   (0, 96, BASS, 36), (96, 192, BASS, 43), (192, 240, BASS, 41), (240, 264, BASS, 45),
                   (288, 336, BASS, 43)}
    assert [n[-1] for n in _notes(ids, {BASS}, 192, 193)] == [n[-1] for n in _notes(take, {BASS}, 0, 1)]  # the median
    piece = beat_codec.decode_piece(ids, BEAT)
    assert piece.chords == tuple((round(beat * 48), c) for beat, c in plan.changes((4, 4), (4,)))
    assert [x.step for x in piece.bars] == [0, 192, 384] and all(BEAT.tick(n.start_s) % 12 == 0 for n in piece.notes)
    # the model's own harmony: no pitch or length changes (no drums: no groove either) but one bass line
    own = replace(plan, choice=replace(plan.choice, harmony="model"), bar_chords=())
    assert _notes(arrange(take, own, (4, 4), BEAT), {0}, 0, 2 * 192) == _notes(take, {0}, 0, 2 * 192)
    assert [(s, e, p) for s, e, _, p, _ in _notes(arrange(take, own, (4, 4), BEAT), {BASS}, 0, 2 * 192)] == \
           [(0, 96, 38), (96, 240, 43), (240, 264, 45), (288, 336, 40)]


def test_calm_pianos_left_hand_plays_the_chord_in_force_broken_in_eighths():
    assert F.plan_form(choice("calm"), "calm", 12).accompaniment == "broken_chords"
    assert F.plan_form(choice("jazz"), "jazz", 12).accompaniment is None
    c_major, f_major, g_major = 0, 5, 7
    plan = F.FormPlan(replace(choice("calm"), tonic=0, minor=False), (F.Section("A", 0, 2), F.Section("outro", 2, 1)),
                      ((c_major,), (f_major, g_major), (c_major,)), accompaniment="broken_chords")
    melody = [(0, 96, 0, 76), (96, 192, 0, 72), (192, 288, 0, 77)]  # the right hand: stays
    low = [(0, 192, 0, 48), (192, 240, 0, 53)]  # under middle C: the left hand's place, they go
    ids = arrange(_take(plan, melody + low), plan, (4, 4), BEAT)
    got = _notes(ids, {0}, 0, 2 * 192)
    # C: root C3, G3, C4, E4, G4 and back; F (two beats) then G (two beats), each from its own root
    left = [(0, 192, 48), (24, 168, 55), (48, 144, 60), (72, 120, 64), (96, 192, 67), (120, 192, 64),
            (144, 192, 60), (168, 192, 55),
            (192, 288, 41), (216, 288, 48), (240, 288, 53), (264, 288, 57),
            (288, 384, 62), (312, 384, 59), (336, 384, 55), (360, 384, 50)]
    assert [(s, e, p) for s, e, _, p, _ in got] == sorted(left + [(s, e, p) for s, e, _, p in melody])
    velocity = {s: v for s, _, _, p, v in got if p < 70 and s % 24 == 0 and (s, p) != (96, 72)}
    assert velocity[0] == velocity[192] > velocity[24] == velocity[360]  # the bar line a little stronger
    # a take whose model played no piano still gets the left hand: the plan (the recipe) asked for it
    strings_only = [(s, e, 5, p) for s, e, _, p in melody]
    alone = _notes(arrange(_take(plan, strings_only), plan, (4, 4), BEAT), {0}, 0, 2 * 192)
    assert [(s, e, p) for s, e, _, p, _ in alone] == sorted(left)
    # in 3/4, six eighths: up to the tenth and back; a Cmaj7's B stays out (over C it reads as a clash)
    c_maj7 = chords.chord_named("Cmaj7")
    waltz = F.FormPlan(plan.choice, (F.Section("A", 0, 1), F.Section("outro", 1, 1)), ((c_maj7,), (c_major,)),
                       accompaniment="broken_chords")
    three = arrange(_take(waltz, [(0, 144, 0, 76)], meter=(3, 4)), waltz, (3, 4), BEAT)
    assert [(s, p) for s, _, _, p, _ in _notes(three, {0}, 0, 144) if p < 70] == \
           [(0, 48), (24, 55), (48, 60), (72, 64), (96, 60), (120, 55)]


def test_the_final_downbeat_is_struck_by_every_family_with_the_bass_on_the_keynote():
    c = replace(choice("pop"), tonic=2, minor=True)
    plan = F.plan_form(c, "pop", 24)
    ids = arrange(_random_take(plan, seed=3), plan, (4, 4), BEAT)
    notes = BEAT.decode(ids)
    last, end = BEAT.seconds(23 * 192), BEAT.seconds(24 * 192)
    final = [n for n in notes if n.start_s >= last - 1e-9]
    assert all(n.start_s == pytest.approx(last) for n in final)
    assert {n.instrument for n in final} == {0, BASS, DRUMS}
    assert all(n.end_s <= last + 1e-9 for n in notes if n.start_s < last - 1e-9), "nothing rings over the line"
    pitched = [n for n in final if n.instrument != DRUMS]
    assert all(n.end_s == pytest.approx(end) for n in pitched)
    assert min(pitched, key=lambda n: n.pitch).pitch % 12 == 2 and [n.pitch % 12 for n in final
                                                                      if n.instrument == BASS] == [2]
    assert {n.pitch % 12 for n in pitched} == chords.pitch_classes(c.home_chord)
    assert beat_codec.decode_piece(ids, BEAT).chords[-1] == (23 * 192, c.home_chord)


def test_a_tiny_model_composes_the_planned_form_through_the_sampler():
    from generator.sampling.generate import GenerationRequest, bar_plan, generate
    from generator.sampling.params import SamplingParams
    from test_beat import _tiny_beat_model

    request = GenerationRequest("jazz", 4, 30.0, params=SamplingParams.plain(), bpm=120, meter=(3, 4),
                                instruments=(0, BASS, DRUMS))
    bars = bar_plan(request)
    plan = F.plan_form(choice("jazz"), "jazz", bars.n_bars)
    request = replace(request, chords=plan.changes(bars.meter, bars.grid))
    take = generate(_tiny_beat_model(2), [request])[0]
    ids = arrange(take.ids, plan, (3, 4), BEAT)
    piece = beat_codec.decode_piece(ids, BEAT)
    assert len(piece.bars) == bars.n_bars == plan.n_bars and piece.bars[0].meter == (3, 4)
    assert [c for _, c in piece.chords][-1] == plan.bar_chords[-1][0]
    assert int(BEAT.shift_ticks(ids).sum()) == bars.n_bars * bars.bar_steps
    assert all(BEAT.tick(n.start_s) % 16 == 0 or BEAT.tick(n.start_s) % 12 == 0 for n in piece.notes)
    assert beat_codec.encode(piece, BEAT) + [vocab.END] == ids or ids[-1] == vocab.END


# ---- the library --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_beat_checkpoint(tmp_path_factory) -> Path:
    from generator.model.checkpoint import save_checkpoint
    from test_beat import _tiny_beat_model

    path = tmp_path_factory.mktemp("ckpt") / "tiny-beat.pt"
    save_checkpoint(path, _tiny_beat_model(3), {"name": "tiny-beat"})
    return path


@pytest.mark.usefixtures("no_audio_tools")
def test_a_calm_library_track_has_the_broken_chords_in_its_piano(tmp_path, tiny_beat_checkpoint):
    import pretty_midi

    from generator.library.pipeline import run_batch
    from generator.library.recipe import load_recipe
    from test_pipeline import MIDI_ONLY, PERMISSIVE_LOOPS

    def pianos(name, extra):
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps({"name": name, "seed": 3, "model": str(tiny_beat_checkpoint),
                                    "genres": {"calm": 1}, "duration_s": 24, "bpm": 60, "meter": "4/4",
                                    "form": "auto", "key": "C", "loops": PERMISSIVE_LOOPS, "outputs": MIDI_ONLY,
                                    **extra}))
        (track,) = run_batch(load_recipe(path), path.name, out_dir=tmp_path / name).tracks
        assert track.status == "done"
        midi = pretty_midi.PrettyMIDI(str(next((tmp_path / name).glob("*/*.mid"))))
        return [i for i in midi.instruments if not i.is_drum and i.program // 8 == 0]

    (piano,) = pianos("calm", {"instrumentation": {"calm": {"piano": "Electric Piano 1"}}})
    assert piano.program == 4  # the recipe's sound for the piano family
    onsets = {round(n.start * 2) for n in piano.notes if n.start < 20}  # in eighths: 0.5 s at 60 bpm
    assert onsets >= set(range(0, 40))  # the left hand on every eighth of the first 5 bars
    roots = {round(n.start) for n in piano.notes if 40 <= n.pitch <= 51 and round(n.start * 2) % 8 == 0}
    assert roots >= {0, 4, 8, 12, 16}  # each bar from its chord's root, placed in E2..D#3


@pytest.mark.usefixtures("no_audio_tools")
def test_a_library_track_lists_its_sections_in_bars_and_seconds(tmp_path, tiny_beat_checkpoint):
    from generator.library.pipeline import run_batch
    from generator.library.recipe import load_recipe
    from generator.library.sidecar import load_sidecar
    from test_pipeline import MIDI_ONLY, PERMISSIVE_LOOPS

    path = tmp_path / "recipe.yaml"
    path.write_text(json.dumps({"name": "Formed", "seed": 2, "model": str(tiny_beat_checkpoint),
                                "genres": {"pop": 1}, "duration_s": 24, "bpm": 120, "form": "auto",
                                "key": "G", "loops": PERMISSIVE_LOOPS, "outputs": MIDI_ONLY}))
    report = run_batch(load_recipe(path), "recipe.yaml", out_dir=tmp_path / "out")
    (track,) = report.tracks
    assert track.status == "done"
    data = load_sidecar(next((tmp_path / "out").glob("*/*.json")))
    sections = data["track"]["sections"]
    assert [s["name"] for s in sections] == ["intro", "A", "B", "outro"]
    assert [s["bars"] for s in sections] == [2, 4, 4, 2] and sections[-1]["end_s"] == pytest.approx(24.0)
    assert all(s["start_s"] == pytest.approx(s["start_bar"] * 2.0) for s in sections)
    assert data["track"]["key"] == "G major"
    assert data["track"]["extra"]["planned"]["form"]["chords"][-1] == "G"
