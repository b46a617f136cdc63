"""The beat encoding (tokens/beat_codec.py) and beat-time sampling: bars, meters, chords, grid."""

from __future__ import annotations

import io
from dataclasses import replace

import mido
import numpy as np
import pretty_midi
import pytest
import torch

from generator.model.transformer import ModelConfig, MusicTransformer
from generator.sampling.filters import fold_shifts
from generator.sampling.generate import DEFAULT_BPM, GenerationRequest, bar_plan, generate
from generator.sampling.params import SamplingParams
from generator.tokens import beat_codec, chords, tokenizer, vocab
from generator.tokens.encoding import BEAT, encoding_of
from generator.tokens.notes import Note
from generator.tokens.transpose import transpose_ids


def _waltz_midi(tempo: float = 90.0) -> pretty_midi.PrettyMIDI:
    """Four bars of 3/4 at `tempo`: a C major then G7 accompaniment, a melody, drums on beat 1."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo, resolution=480)
    pm.time_signature_changes = [pretty_midi.TimeSignature(3, 4, 0.0)]
    beat = 60.0 / tempo
    piano = pretty_midi.Instrument(program=0)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for bar in range(4):
        chord = (48, 52, 55) if bar % 2 == 0 else (43, 47, 50, 53)
        for pitch in chord:
            piano.notes.append(pretty_midi.Note(70, pitch, bar * 3 * beat, (bar * 3 + 3) * beat))
        # A melody note that starts 7 ms late (a humanised onset): it lands on the grid.
        piano.notes.append(pretty_midi.Note(90, 72 + bar, bar * 3 * beat + beat + 0.007, bar * 3 * beat + 2 * beat))
        drums.notes.append(pretty_midi.Note(100, 36, bar * 3 * beat, bar * 3 * beat + 0.05))
    pm.instruments += [piano, drums]
    return pm


def test_a_midi_file_becomes_bars_chords_and_grid_steps():
    piece = tokenizer.midi_to_piece(_waltz_midi(), encoding=BEAT)
    assert [b.step for b in piece.bars] == [0, 144, 288, 432] and {b.meter for b in piece.bars} == {(3, 4)}
    names = [chords.chord_name(c) for _, c in piece.chords]
    assert names == ["C", "G7", "C", "G7"], names  # one chord per 3/4 bar, by the template rule
    melody = sorted((n for n in piece.notes if n.pitch >= 72), key=lambda n: n.start_s)
    assert [BEAT.tick(n.start_s) for n in melody] == [48, 192, 336, 480]  # 7 ms late -> on the beat


def test_tokens_mark_bars_meter_chords_and_drums_have_no_note_off():
    ids = tokenizer.midi_to_ids(_waltz_midi(), encoding=BEAT)
    names = tokenizer.names(ids, encoding=BEAT)
    assert names[:3] == ["BAR", "METER(3/4)", "CHORD(C)"]
    assert names.count("BAR") == 4 and names.count("METER(3/4)") == 1
    assert "CHORD(G7)" in names
    drums_on = False
    for token in ids:
        if vocab.is_instrument(token):
            drums_on = token == vocab.INSTRUMENT + vocab.DRUMS_FAMILY
        elif drums_on:
            assert not vocab.NOTE_OFF <= token < vocab.VELOCITY, "a drum hit is one-shot"
    # Between two BARs the time shifts add up to exactly one 3/4 bar.
    bars = [i for i, t in enumerate(ids) if t == vocab.BAR]
    for a, b in zip(bars, bars[1:]):
        assert sum(BEAT.ticks_of(t) for t in ids[a:b]) == 3 * vocab.STEPS_PER_BEAT


def test_beat_midi_round_trips_and_reads_as_whole_bars_in_music21_and_mido(tmp_path):
    ids = tokenizer.midi_to_ids(_waltz_midi(), encoding=BEAT)
    path = tmp_path / "waltz.mid"
    tokenizer.ids_to_midi(ids, encoding=BEAT, bpm=72).write(str(path))
    assert tokenizer.midi_to_ids(path, encoding=BEAT) == ids  # chords travel as lyric events
    midi = mido.MidiFile(str(path))
    assert midi.ticks_per_beat == 480
    metas = [m for track in midi.tracks for m in track if m.is_meta]
    assert [round(mido.tempo2bpm(m.tempo), 3) for m in metas if m.type == "set_tempo"] == [72.0]
    assert [(m.numerator, m.denominator) for m in metas if m.type == "time_signature"] == [(3, 4)]
    for track in midi.tracks:
        now = 0
        for message in track:
            now += message.time
            if message.type == "note_on":
                assert now % 10 == 0, "every note on a 1/48-beat step"
    import music21

    score = music21.converter.parse(str(path))
    measures = score.parts[0].getElementsByClass("Measure")
    assert len(measures) == 4
    assert all(m.duration.quarterLength == 3.0 for m in measures)


def test_transpose_moves_notes_and_chord_roots_not_drums():
    ids = tokenizer.midi_to_ids(_waltz_midi(), encoding=BEAT)
    up = transpose_ids(ids, 2, BEAT)
    assert "CHORD(D)" in tokenizer.names(up, encoding=BEAT) and "CHORD(A7)" in tokenizer.names(up, encoding=BEAT)
    before, after = beat_codec.decode_piece(ids, BEAT), beat_codec.decode_piece(up, BEAT)
    drums = [n.pitch for n in after.notes if n.instrument == vocab.DRUMS_FAMILY]
    assert drums == [36] * 4
    assert sorted(n.pitch + 2 for n in before.notes if n.instrument != vocab.DRUMS_FAMILY) == \
        sorted(n.pitch for n in after.notes if n.instrument != vocab.DRUMS_FAMILY)


def test_window_restates_meter_chord_and_instrument_in_force():
    ids = tokenizer.midi_to_ids(_waltz_midi(), encoding=BEAT)
    cut = len(ids) // 2
    window = beat_codec.window_at(ids, cut)
    meter, chord, family = beat_codec.state_before(ids, cut)
    assert window[:3] == [meter, chord, vocab.INSTRUMENT + family] and window[3:] == list(ids[cut:])
    assert meter == vocab.METER + vocab.METERS.index((3, 4))


def test_re_primed_beat_windows_have_one_length_whatever_is_in_force_at_the_cut():
    """A batch re-primes in one forward, so every row's window must be max_seq // 2 tokens, whether
    a meter and a chord are in force at its cut or not (a ValueError of torch.tensor otherwise)."""
    from generator.sampling.rowstate import _beat_window

    ids = tokenizer.midi_to_ids(_waltz_midi(), encoding=BEAT)
    bare = [t for t in ids if not vocab.METER <= t <= vocab.CHORD_NONE]  # no meter, no chord: a head of 1
    chordless = [t for t in ids if not vocab.CHORD <= t <= vocab.CHORD_NONE]
    late_chord = chordless + [vocab.CHORD] + bare[-8:]  # a chord in force at the end, none at any cut before
    for tokens in (ids, bare, ids[: len(ids) // 3] + bare, late_chord):
        for length in (16, 40, 64):
            window = _beat_window(list(tokens), length)
            assert len(window) == length and window[-(length - 3):] == list(tokens[-(length - 3):])
            # it is the training windows' form: the tokens from some cut after what is in force there
            assert any(window == beat_codec.window_at(tokens, cut) for cut in range(len(tokens) - length, len(tokens)))


def test_chord_templates_prefer_triads_and_name_sevenths():
    weights = np.zeros(12)
    weights[[0, 4, 7]] = 1
    assert chords.chord_name(chords.best_chord(weights)) == "C"
    weights[10] = 1
    assert chords.chord_name(chords.best_chord(weights)) == "C7"
    assert chords.best_chord(np.ones(12)) is None  # a cluster names no chord
    assert all(chords.chord_named(chords.chord_name(i)) == i for i in range(chords.N_CHORDS))


def _tiny_beat_model(seed: int = 0, time_bias: float = 4.0, up_to_steps: int | None = None) -> MusicTransformer:
    """The tiny random beat model; `time_bias` on the TIME_SHIFT logits (of the shifts of at most
    `up_to_steps` steps, else all) sets how fast time passes. On a grid the sampler quantises
    (vocab.MASKED_GRIDS) every shift adds to the chance that time moves; on a masked one only those
    that land on the grid do."""
    torch.manual_seed(seed)
    model = MusicTransformer(replace(ModelConfig.tiny(), vocab_size=BEAT.vocab_size), BEAT).eval()
    with torch.no_grad():
        model.head.bias[vocab.TIME_SHIFT:vocab.TIME_SHIFT + (up_to_steps or BEAT.n_time_shifts)] += time_bias
    return model


@pytest.mark.parametrize("genre", vocab.GENRES)
@pytest.mark.parametrize("seconds", [7.0, 15.0, 31.0, 60.0])
def test_without_a_tempo_whole_bars_fill_the_duration_near_the_genres_tempo(genre, seconds):
    plan = bar_plan(GenerationRequest(genre, 0, seconds, meter=(4, 4)))
    usual = DEFAULT_BPM[genre]
    assert 0.9 * usual <= plan.bpm <= 1.1 * usual and plan.bpm.is_integer()
    assert abs(plan.n_bars * 4 * 60 / plan.bpm - seconds) / seconds <= vocab.BAR_FIT


@pytest.mark.parametrize("meter,bpm,grid", [((4, 4), 120.0, (4,)), ((3, 4), 90.0, (3,)), ((6, 8), 100.0, (2,))])
def test_a_random_beat_model_keeps_time(meter, bpm, grid):
    """Even an untrained model's track has its bars at the bar lines, its onsets on the grid, a
    whole number of bars, the meter stated once, and a length of bars x bar seconds."""
    model = _tiny_beat_model(0, 3.0, up_to_steps=24)  # notes on pop's own grid (masked) and the others (quantised)
    request = GenerationRequest("pop", 5, 20.0, params=SamplingParams.plain(), bpm=bpm, meter=meter, grid=grid)
    result = generate(model, [request])[0]
    plan = bar_plan(request)
    ids = list(result.ids)
    assert result.stop_reason == "duration"
    assert ids.count(vocab.BAR) == plan.n_bars and ids[:2] == [vocab.BAR, vocab.METER + vocab.METERS.index(meter)]
    assert sum(1 for t in ids if vocab.METER <= t < vocab.CHORD) == 1
    assert result.duration_s == pytest.approx(plan.n_bars * vocab.quarters_per_bar(meter) * 60 / bpm)
    assert abs(result.duration_s - 20.0) <= vocab.quarters_per_bar(meter) * 60 / bpm / 2
    clock, step_of_part = 0, vocab.STEPS_PER_BEAT // grid[0]
    for token in ids:
        if token == vocab.BAR:
            assert clock % plan.bar_steps == 0
        elif vocab.NOTE_ON <= token < vocab.VELOCITY:
            assert clock % step_of_part == 0, "every note event on the grid"
        clock += BEAT.ticks_of(token)
    assert clock == plan.n_bars * plan.bar_steps
    # The last bar only rings: nothing starts after its downbeat.
    last_bar = max(i for i, t in enumerate(ids) if t == vocab.BAR)
    tail = ids[last_bar:]
    first_shift = next(i for i, t in enumerate(tail) if BEAT.ticks_of(t))
    assert not any(vocab.NOTE_ON <= t < vocab.NOTE_OFF for t in tail[first_shift:])
    midi = tokenizer.ids_to_midi(ids, encoding=BEAT, bpm=bpm)
    data = io.BytesIO()
    midi.write(data)
    data.seek(0)
    back = pretty_midi.PrettyMIDI(data)
    assert len(back.get_downbeats()) >= plan.n_bars and back.get_tempo_changes()[1][0] == pytest.approx(bpm, rel=1e-5)


def test_off_grid_time_goes_to_the_next_grid_step_not_to_the_notes():
    """fold_shifts: a disallowed shift's probability moves to the next allowed shift (past the last
    one, to the longest allowed), so the chance that time moves is the model's; other tokens keep theirs."""
    first, count = 10, 6  # shifts of 1..6 steps at ids 10..15
    logits = torch.log(torch.tensor([[0.1] + [0.0] * 9 + [0.05, 0.2, 0.05, 0.1, 0.3, 0.2],
                                     [0.5] + [0.0] * 9 + [0.1] * 6]))
    allowed = torch.zeros(2, 16, dtype=torch.bool)
    allowed[:, 0] = True
    allowed[0, [11, 13]] = True  # shifts of 2 and 4 steps; row 1 may not move time at all
    out = torch.softmax(fold_shifts(logits, allowed, first, count).masked_fill(~allowed, float("-inf")), -1)
    assert out[0, 11].item() == pytest.approx(0.05 + 0.2)  # 1 step -> 2
    assert out[0, 13].item() == pytest.approx(0.05 + 0.1 + 0.3 + 0.2)  # 3 -> 4; 5 and 6 past the last -> 4
    assert out[0, 0].item() == pytest.approx(0.1)
    assert torch.equal(fold_shifts(logits, allowed, first, count)[1], logits[1])
    before = torch.softmax(logits.masked_fill(~allowed, float("-inf")), -1)
    assert before[0, 0].item() == pytest.approx(0.1 / 0.4)  # masking alone gave the note the lost time


def test_time_is_quantised_except_on_a_genres_own_masked_grid():
    def quantised(genre, grid=None):
        return bar_plan(GenerationRequest(genre, 0, 20.0, grid=grid)).quantise

    assert not quantised("jazz") and not quantised("pop") and not quantised("classic")
    assert not quantised("classic", (3, 4))  # the same divisions in another order
    assert quantised("calm") and quantised("pop", (2,)) and quantised("jazz", (3, 4))


def test_the_shipped_model_keeps_time_on_a_grid_it_rarely_plays():
    """Calm in eighths only: with the off-grid shifts masked out, 7 of these 8 takes wrote notes
    without moving time until the token cap closed them at 7-56 of 60 s. Quantised, all 8 last 60 s."""
    from generator.eval.evaluate import default_palette
    from generator.model.checkpoint import load_checkpoint
    from generator.paths import SHIPPED_CHECKPOINT

    model, _ = load_checkpoint(SHIPPED_CHECKPOINT)
    params = SamplingParams.plain(top_k=60, top_p=0.98, rp_penalty=0.05, genre_guidance=2.0)
    requests = [GenerationRequest("calm", seed, 60.0, params, instruments=default_palette("calm"), grid=(2,),
                                  bpm=64.0) for seed in range(8)]
    results = generate(model, requests, batch_size=8)
    assert [r.stop_reason for r in results] == ["duration"] * 8
    assert all(r.duration_s == pytest.approx(60.0) for r in results)


def test_a_take_closed_by_the_token_cap_is_rejected_as_cut_short(monkeypatch):
    from generator.sampling import rowstate
    from generator.sampling.rejection import compose_many

    monkeypatch.setattr(rowstate, "TOKENS_PER_S_CAP", 0)
    monkeypatch.setattr(rowstate, "CAP_SLACK", 40)
    request = GenerationRequest("pop", 3, 20.0, params=SamplingParams.plain(), bpm=120.0)
    (result,) = compose_many(_tiny_beat_model(), [request], max_attempts=2, detector=lambda *_: None)
    assert not result.accepted
    assert [reason.split(":")[0] for _, reason in result.rejections] == ["cut_short", "cut_short"]
    assert "of 20.0 s" in result.rejections[0][1]


def test_beat_rows_sample_alike_alone_and_in_a_batch_past_the_context_window():
    model = _tiny_beat_model(1)
    requests = [GenerationRequest("jazz", s, 12.0, params=SamplingParams.plain(), bpm=150.0) for s in (1, 2, 3)]
    together = generate(model, requests, batch_size=3)
    alone = [generate(model, [r])[0] for r in requests]
    assert [r.ids for r in together] == [r.ids for r in alone]
    assert max(len(r.ids) for r in together) > model.config.max_seq  # the re-prime ran


def test_warm_start_keeps_the_shared_rows():
    from generator.model.train import extended_state

    torch.manual_seed(0)
    parent = MusicTransformer(ModelConfig.tiny())
    child = _tiny_beat_model()
    state = extended_state(parent.state_dict(), child, "parent.pt")
    child.load_state_dict(state)
    assert torch.equal(child.embed.weight[: vocab.VOCAB_SIZE], parent.embed.weight)
    assert encoding_of(child) is BEAT


def test_a_longer_context_warm_start_predicts_as_its_parent_within_the_parents_context():
    """Er row M-1-d is distance d: the child's rows for the distances the parent knew are the
    parent's, so on a sequence the parent could see whole both give the same logits."""
    from generator.model.train import extended_state

    torch.manual_seed(0)
    parent = MusicTransformer(replace(ModelConfig.tiny(), max_seq=32)).eval()
    torch.manual_seed(1)
    child = MusicTransformer(replace(ModelConfig.tiny(), max_seq=64)).eval()
    child.load_state_dict(extended_state(parent.state_dict(), child, "parent.pt"))
    ids = torch.randint(0, vocab.VOCAB_SIZE, (2, 32))
    with torch.no_grad():
        assert torch.allclose(child(ids), parent(ids), atol=1e-5)
    er = child.blocks[0].attn.er
    assert torch.equal(er[:, :32], er[:, 32:33].expand(-1, 32, -1))  # farther distances start as its farthest


def test_notes_in_reference_seconds_encode_in_four_four():
    notes = [Note(60, 0.0, 0.48, 80), Note(64, 0.48, 0.96, 80), Note(67, 1.92, 2.4, 80)]
    ids = BEAT.encode(notes)
    assert ids.count(vocab.BAR) == 2  # 1.92 reference seconds = 4 beats: the second bar
    assert [n.pitch for n in BEAT.decode(ids)] == [60, 64, 67]


@pytest.mark.parametrize("ring_ticks", [0, 100, 500])
def test_a_row_closed_early_still_ends_on_a_bar_line_with_every_bar_marked(ring_ticks):
    """A time budget or token cap stops a beat row mid-bar: the close rings on to the next bar
    line (never a time shift across one, every bar line crossed marked) and releases every note."""
    from generator.sampling.rowstate import BarPlan, RowState

    plan = BarPlan((3, 4), 120.0, 8, (4,))
    row = RowState(0, vocab.GENRE + 3, (), 20.0, "ring", 1, BEAT, bars=plan)
    for token in (vocab.BAR, vocab.METER + vocab.METERS.index((3, 4)), vocab.NOTE_ON + 60,
                  vocab.TIME_SHIFT + 71, vocab.TIME_SHIFT + 71, vocab.BAR, vocab.TIME_SHIFT + 23, vocab.NOTE_ON + 64):
        row.push(token)
    row.close("time_budget", ring_ticks=ring_ticks)
    ids = row.tokens
    clock, bar_lines = 0, []
    for token in ids:
        if token == vocab.BAR:
            bar_lines.append(clock)
        clock += BEAT.ticks_of(token)
        if vocab.TIME_SHIFT <= token < vocab.END:
            assert clock <= (len(bar_lines)) * plan.bar_steps, "no time shift crosses a bar line"
    assert clock % plan.bar_steps == 0 and clock >= 168 + ring_ticks
    assert bar_lines == list(range(0, clock, plan.bar_steps))
    assert not row.sounding and ids[-1] == vocab.END and row.stop_reason == "time_budget"


def test_a_planned_progression_is_stated_where_it_changes_and_the_model_adds_none():
    """Chords planned in beats come as CHORD tokens at their steps (after BAR and METER on a bar
    line); no time shift jumps a change, and the model samples no chord of its own."""
    c, g7, am, f = (chords.chord_named(name) for name in ("C", "G7", "Am", "F"))
    progression = ((0, c), (2, g7), (4, am), (6, None), (8, f), (10.5, c))
    model = _tiny_beat_model()
    favour = torch.zeros(BEAT.vocab_size)
    favour[vocab.CHORD:vocab.CHORD_NONE + 1] = 3.0  # it would state chords of its own if it could
    model.head.register_forward_hook(lambda module, args, out: out + favour)
    request = GenerationRequest("pop", 3, 8.0, params=SamplingParams.plain(), bpm=120.0, meter=(2, 4),
                                grid=(4,), chords=progression)
    ids = list(generate(model, [request])[0].ids)
    clock, stated = 0, []
    for i, token in enumerate(ids):
        if vocab.CHORD <= token <= vocab.CHORD_NONE:
            stated.append((clock, None if token == vocab.CHORD_NONE else token - vocab.CHORD))
            if clock % (2 * vocab.STEPS_PER_BEAT) == 0:  # on a bar line: BAR (METER) CHORD
                assert ids[i - 1] == vocab.BAR or vocab.METER <= ids[i - 1] < vocab.CHORD
        clock += BEAT.ticks_of(token)
    assert stated == [(round(b * vocab.STEPS_PER_BEAT), ch) for b, ch in progression]


def test_without_a_plan_the_model_may_state_chords_itself():
    model = _tiny_beat_model()
    favour = torch.zeros(BEAT.vocab_size)
    favour[vocab.CHORD:vocab.CHORD_NONE + 1] = 3.0  # a model fond of chord changes
    model.head.register_forward_hook(lambda module, args, out: out + favour)
    request = GenerationRequest("pop", 3, 8.0, params=SamplingParams.plain(), bpm=120.0, meter=(4, 4), grid=(4,))
    ids = generate(model, [request])[0].ids
    assert any(vocab.CHORD <= t <= vocab.CHORD_NONE for t in ids)


@pytest.mark.parametrize("chords_", [((1, 0), (0, 1)), ((0, 96),), ((-1, 0),)])
def test_a_bad_progression_is_refused(chords_):
    from generator.errors import InputError

    with pytest.raises(InputError, match="chords"):
        GenerationRequest("pop", 3, 8.0, chords=chords_)
