from dataclasses import replace

import numpy as np
import pretty_midi
import pytest
import torch
from typer.testing import CliRunner

from generator.errors import InputError
from generator.model.checkpoint import load_checkpoint, save_checkpoint
from generator.model.transformer import ModelConfig, MusicTransformer
from generator.sampling.filters import filter_logits
from generator.sampling.generate import GenerationRequest, beam_search, generate
from generator.sampling.params import SamplingParams
from generator.sampling.primer import primer_from_midi
from generator.sampling.rejection import compose, compose_many, derive_seed
from generator.sampling.rowstate import STALL_TOKENS, RowState, tail_ticks
from generator.tokens import vocab
from generator.tokens.encoding import DEFAULT, SBER
from generator.tokens.tokenizer import ids_to_notes, seconds_of
from paths import SBER_MIDI, VECTORS


def _request(genre: str, seed: int, duration_s: float, **kwargs) -> GenerationRequest:
    """A request that samples the model's own distribution (these tests were written for it)."""
    return GenerationRequest(genre, seed, duration_s, SamplingParams.plain(), **kwargs)


def _model(time_bias: float = 0.0, seed: int = 0, **config) -> MusicTransformer:
    """The tiny random model; `time_bias` added to the TIME_SHIFT logits steers its tempo."""
    torch.manual_seed(seed)
    model = MusicTransformer(replace(ModelConfig.tiny(), **config)).eval()
    with torch.no_grad():
        model.head.bias[vocab.TIME_SHIFT:vocab.END] += time_bias
    return model


def _sounding_at_end(ids) -> bool:
    row = RowState(0, vocab.GENRE, (), 1.0, "ring", 0, DEFAULT)
    for t in ids:
        row.push(t)
    return bool(row.sounding)


def test_batch_rows_are_independent():
    model = _model(time_bias=-1.0)
    primer = (vocab.VELOCITY + 20, 60, vocab.TIME_SHIFT + 30, 188)
    params = [SamplingParams.plain(), SamplingParams.plain(top_k=20, rp_penalty=0.3, temperature=0.9),
              SamplingParams.plain(top_p=0.9, sber_compatible=True, rp_penalty=0.1)]
    requests = [GenerationRequest(vocab.GENRES[i % 4], 100 + i, 2.0 + i, params[i % 3],
                                  primer if i % 2 else (), "ring" if i % 3 else "fade") for i in range(8)]
    together = generate(model, requests, batch_size=8)
    alone = [generate(model, [r], batch_size=1)[0] for r in requests]
    assert [r.ids for r in together] == [r.ids for r in alone]
    assert len({r.ids for r in together}) == 8
    assert all(r.ids[:4] == primer for r in together[1::2])


def test_finished_rows_leave_the_batch():
    model = _model(time_bias=1.0)
    sizes = []
    step = model.step
    model.step = lambda ids, cache: (sizes.append(ids.shape[0]), step(ids, cache))[1]
    requests = [_request("jazz", s, d) for s, d in enumerate((1.0, 4.0, 8.0, 16.0))]
    results = generate(model, requests, batch_size=4)
    assert sizes[0] == 4 and sizes[-1] == 1 and sizes == sorted(sizes, reverse=True)
    assert sum(sizes) <= sum(r.tokens_generated for r in results)  # one row-step per sampled token at most


def test_a_seed_gives_the_same_track_and_another_seed_another():
    model = _model()
    a, b, c = generate(model, [_request("jazz", 1, 5.0), _request("jazz", 1, 5.0),
                               _request("jazz", 2, 5.0)])
    assert a.ids == b.ids != c.ids


def test_beam_width_one_equals_greedy():
    model = _model(time_bias=-0.5)
    request = GenerationRequest("pop", 0, 4.0, SamplingParams.plain(top_k=1, rp_penalty=0.2))
    greedy = generate(model, [request])[0]
    beam = beam_search(model, replace(request, params=SamplingParams.plain(rp_penalty=0.2)), beam_width=1)
    assert tuple(beam.tokens) == greedy.ids
    assert greedy.tokens_generated > 20


def test_beam_search_ends_on_time_and_is_deterministic():
    model = _model(time_bias=1.0)
    request = GenerationRequest("calm", 0, 3.0, SamplingParams.plain(beam_width=3, length_penalty=0.7))
    first, second = generate(model, [request, replace(request, seed=9)])
    assert first.ids == second.ids  # no randomness in a beam search
    assert first.ids[-1] == vocab.END and abs(first.duration_s - 3.0) <= 0.06


@pytest.mark.parametrize("target_s", [3.0, 17.3, 45.0])
@pytest.mark.parametrize("ending", ["ring", "fade"])
def test_duration_is_within_two_percent_and_ends_musically(target_s, ending):
    model = _model(time_bias=1.0)  # a model that emits many time shifts
    results = generate(model, [_request("jazz", s, target_s, ending=ending) for s in range(3)])
    assert all(ids_to_notes(r.ids) for r in results)
    for r in results:
        assert abs(r.duration_s - target_s) <= 0.02 * target_s
        assert seconds_of(r.ids) == pytest.approx(r.duration_s)
        assert r.ids[-1] == vocab.END and r.ids.count(vocab.END) == 1
        assert r.stop_reason == "duration" and r.ending == ending
        assert not _sounding_at_end(r.ids[:-1])
        notes = ids_to_notes(r.ids)
        assert max(n.end_s for n in notes) <= r.duration_s + 1e-9
        last_onset_s = max(n.start_s for n in notes)
        assert last_onset_s <= target_s - tail_ticks(round(target_s * 100), ending, DEFAULT) / 100 + 1e-9


def _uncached_greedy(model: MusicTransformer, request: GenerationRequest) -> tuple[int, ...]:
    """The reference: recompute the whole window each token, re-priming at the same points; with
    genre guidance, the unconditioned window too (NO_GENRE in place of the genre token)."""
    params, max_seq = request.params, model.config.max_seq
    row = RowState(0, request.genre_token, (), request.duration_s, "ring", 0, model.encoding)
    window = [request.genre_token]
    with torch.no_grad():
        while not row.done:
            if len(window) > max_seq:
                window = row.prompt(max_seq)
                assert len(window) == 1 + max_seq // 2
            logits = model(torch.tensor([window]))[:, -1]
            if params.genre_guidance:
                uncond = model(torch.tensor([[vocab.NO_GENRE, *window[1:]]]))[:, -1]
                logits = logits + params.genre_guidance * (logits - uncond)
            allowed = torch.from_numpy(row.allowed())[None]
            row.push(int(filter_logits(logits, params, allowed=allowed).argmax()))
            window.append(row.tokens[-1])
            row.settle(False)
    return tuple(row.tokens)


def test_sliding_window_goes_past_max_seq_and_matches_an_uncached_reference():
    model = _model(time_bias=-2.0)  # few time shifts: many tokens per second
    request = GenerationRequest("classic", 0, 6.0, SamplingParams.plain(top_k=1))
    result = generate(model, [request])[0]
    assert result.tokens_generated > 3 * model.config.max_seq
    assert _uncached_greedy(model, request) == result.ids


def test_genre_guidance_matches_an_uncached_reference_and_keeps_rows_independent():
    model = _model(time_bias=-2.0, unconditioned=True)  # past max_seq: the twins are re-primed too
    request = GenerationRequest("pop", 0, 4.0, SamplingParams.plain(top_k=1, genre_guidance=1.5))
    result = generate(model, [request])[0]
    assert result.tokens_generated > 2 * model.config.max_seq
    assert _uncached_greedy(model, request) == result.ids
    plain = generate(model, [replace(request, params=SamplingParams.plain(top_k=1))])[0]
    assert plain.ids != result.ids  # guidance changes what is chosen

    # guided and unguided rows of any length share a batch (twins leave it with their rows)
    mixed = [GenerationRequest(vocab.GENRES[i % 4], 50 + i, 1.0 + i / 2,
                               SamplingParams.plain(top_k=20, genre_guidance=(0.0, 1.0, 3.0)[i % 3])) for i in range(7)]
    together = generate(model, mixed, batch_size=7)
    alone = [generate(model, [r], batch_size=1)[0] for r in mixed]
    assert [r.ids for r in together] == [r.ids for r in alone]


def test_genre_guidance_refuses_a_model_that_never_learned_no_genre():
    with pytest.raises(InputError, match="--genre-dropout"):
        generate(_model(), [GenerationRequest("pop", 0, 1.0, SamplingParams.plain(genre_guidance=1.0))])


def test_time_budget_stops_all_rows_with_an_ending():
    model = _model(time_bias=-2.0)
    requests = [_request("pop", s, 600.0) for s in range(4)]
    spent = generate(model, requests, time_budget_s=0.0)
    assert {r.stop_reason for r in spent} == {"time_budget"}
    assert all(r.ids == (vocab.END,) for r in spent)
    some = generate(model, requests, batch_size=4, time_budget_s=0.3)
    assert {r.stop_reason for r in some} == {"time_budget"}
    assert all(r.tokens_generated > 5 and r.ids[-1] == vocab.END for r in some)
    assert all(r.wall_s < 3.0 for r in some)
    assert not any(_sounding_at_end(r.ids[:-1]) for r in some)


def test_a_model_without_time_shifts_is_capped():
    model = _model(time_bias=-1e4)
    result = generate(model, [_request("jazz", 0, 60.0)])[0]
    assert result.stop_reason == "token_cap"
    closing = result.ids[STALL_TOKENS:]  # closed after STALL_TOKENS tokens without a time shift
    assert closing[-1] == vocab.END and vocab.END not in result.ids[:STALL_TOKENS]
    assert not any(vocab.TIME_SHIFT <= t < vocab.END for t in result.ids)
    assert all(vocab.NOTE_OFF <= t < vocab.VELOCITY or t >= vocab.INSTRUMENT for t in closing[:-1])
    assert not _sounding_at_end(result.ids[:-1])


def test_the_total_token_cap_holds_when_time_crawls():
    row = RowState(0, vocab.GENRE, (), 1.0, "ring", 0, DEFAULT)
    cap = 1 * 300 + 256  # TOKENS_PER_S_CAP per target second + CAP_SLACK
    pattern = [60, vocab.NOTE_OFF + 60] * 50 + [vocab.TIME_SHIFT]  # 100 notes per 10 ms: no stall
    while not row.done:
        row.push(pattern[row.n_new % len(pattern)])
        row.settle(False)
    closing = row.tokens[cap:]
    assert row.stop_reason == "token_cap" and vocab.END not in row.tokens[:cap]
    assert closing == [vocab.NOTE_OFF + 60, vocab.END]  # the sounding note released, then END
    assert row.ticks < 100


def test_requests_are_validated():
    with pytest.raises(InputError, match="genre 'rock'"):
        _request("rock", 0, 10.0)
    with pytest.raises(InputError, match="ending"):
        _request("jazz", 0, 10.0, ending="cut")
    with pytest.raises(InputError, match="duration_s"):
        _request("jazz", 0, -1.0)
    with pytest.raises(InputError, match="primer_ids hold END"):
        _request("jazz", 0, 10.0, primer_ids=(60, vocab.END))
    with pytest.raises(InputError, match="at most 512"):
        _request("jazz", 0, 10.0, primer_ids=(60,) * 513)
    with pytest.raises(InputError, match="primer lasts"):
        generate(_model(), [_request("jazz", 0, 1.0, primer_ids=(vocab.TIME_SHIFT + 99,) * 2)])
    assert _request("ambient", 0, 1.0).genre_token == vocab.genre_token("calm")


@pytest.mark.parametrize("from_end", [False, True])
def test_primer_from_midi_takes_the_first_or_last_seconds(from_end):
    ids = primer_from_midi(SBER_MIDI / "jazz_0.mid", 8.0, from_end)
    assert 0 < len(ids) <= 512 and 3.0 <= seconds_of(ids) <= 8.0
    assert all(0 <= t < vocab.END or t >= vocab.INSTRUMENT for t in ids)
    long = primer_from_midi(SBER_MIDI / "classic_0.mid", 120.0, from_end)
    assert len(long) <= 512 and seconds_of(long) < 120.0
    sber = primer_from_midi(SBER_MIDI / "jazz_0.mid", 8.0, from_end, encoding=SBER)
    assert max(sber) < vocab.END
    model = _model()
    result = generate(model, [_request("jazz", 0, 12.0, primer_ids=ids)])[0]
    assert result.ids[:len(ids)] == ids and abs(result.duration_s - 12.0) <= 0.24


def test_sber_format_checkpoint_generates_in_its_vocabulary():
    model, meta = load_checkpoint(VECTORS / "sber_tiny_state_dict.pt")
    params = SamplingParams.plain(top_k=60, top_p=0.99, rp_penalty=0.05, sber_compatible=True)
    result = generate(model, [GenerationRequest("calm", 0, 4.0, params)])[0]
    assert max(result.ids) == vocab.END and abs(result.duration_s - 4.0) <= 0.08


def test_compose_resamples_then_accepts():
    calls = []

    def picky(ids, genre, limits, encoding):
        calls.append(ids)
        return "phrase_loop: test" if len(calls) < 3 else None

    out = compose(_model(), _request("jazz", 7, 2.0), max_attempts=4, detector=picky)
    assert out.accepted and len(out.rejections) == 2
    assert [seed for seed, _ in out.rejections] == [7, derive_seed(7, 1)]
    assert out.request.seed == derive_seed(7, 2) and len(set(calls)) == 3


def test_compose_gives_up_after_max_attempts():
    from generator.sampling.loops import LoopLimits

    impossible = LoopLimits(min_notes=10**6)
    out = compose_many(_model(), [_request("jazz", s, 2.0) for s in range(3)],
                       limits=impossible, max_attempts=3)
    assert all(not c.accepted and len(c.rejections) == 3 for c in out)
    assert all(reason.startswith("too_few_notes") for c in out for _, reason in c.rejections)
    assert len({seed for c in out for seed, _ in c.rejections}) == 9


def test_gen_sample_writes_a_midi_file(tmp_path):
    from cli import app

    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, _model(), {"note": "test"})
    out = tmp_path / "out" / "x.mid"
    args = ["sample", "--genre", "jazz", "--seconds", "5", "--out", str(out), "--checkpoint", str(checkpoint),
            "--seed", "3", "--top-k", "40", "--top-p", "0.95", "--rp-penalty", "0.05"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    midi = pretty_midi.PrettyMIDI(str(out))
    assert midi.instruments and 0 < midi.get_end_time() <= 5.0
    assert [p.name for p in out.parent.iterdir()] == ["x.mid"]  # no temp file left behind
    bad = CliRunner().invoke(app, ["sample", "--genre", "rock", "--out", str(out)])
    assert bad.exit_code != 0 and "rock" in str(bad.exception)


def test_a_note_held_past_max_note_s_must_be_released_next():
    row = RowState(0, vocab.GENRE, (), 30.0, "ring", 0, DEFAULT, max_note_s=2.0)
    for token in (vocab.INSTRUMENT + 4, vocab.NOTE_ON + 40, vocab.INSTRUMENT + 0, vocab.NOTE_ON + 60):
        row.push(token)
    row.push(vocab.TIME_SHIFT + 99)  # 1 s: nothing is overdue yet
    assert row.allowed()[vocab.NOTE_ON:vocab.NOTE_OFF].any()
    row.push(vocab.TIME_SHIFT + 99)  # 2 s: both notes are due; piano (current family) first
    assert np.flatnonzero(row.allowed()).tolist() == [vocab.NOTE_OFF + 60]
    row.push(vocab.NOTE_OFF + 60)
    assert np.flatnonzero(row.allowed()).tolist() == [vocab.INSTRUMENT + 4]  # switch to the bass
    row.push(vocab.INSTRUMENT + 4)
    assert np.flatnonzero(row.allowed()).tolist() == [vocab.NOTE_OFF + 40]
    row.push(vocab.NOTE_OFF + 40)
    assert row.allowed()[vocab.NOTE_ON:vocab.NOTE_OFF].any()


def test_the_ring_out_releases_notes_when_they_reach_max_note_s():
    row = RowState(0, vocab.GENRE, (), 10.0, "ring", 0, DEFAULT, max_note_s=2.0)
    for token in (vocab.NOTE_ON + 60, *[vocab.TIME_SHIFT + 99] * 8, vocab.NOTE_ON + 64):
        row.push(token)
    row.close("duration", fill=True)  # 8 s in: 60 is overdue now, 64 is due at 10 s = the end
    notes = {n.pitch: n for n in ids_to_notes(row.tokens)}
    assert notes[60].end_s == pytest.approx(8.0) and notes[64].end_s == pytest.approx(10.0)
    assert seconds_of(row.tokens) == pytest.approx(10.0)


def test_the_instrument_palette_limits_instrument_tokens_and_notes():
    palette = (0, vocab.INSTRUMENT_FAMILIES.index("bass"), vocab.DRUMS_FAMILY)
    row = RowState(0, vocab.GENRE, (), 30.0, "ring", 0, DEFAULT, instruments=palette)
    allowed = row.allowed()
    assert np.flatnonzero(allowed[vocab.INSTRUMENT:]).tolist() == list(palette)
    assert allowed[vocab.NOTE_ON + 60]
    outside = RowState(0, vocab.GENRE, (), 30.0, "ring", 0, DEFAULT, instruments=(4,))
    assert not outside.allowed()[vocab.NOTE_ON:vocab.NOTE_OFF].any()  # piano is current but not allowed
    model = _model(time_bias=1.0)
    result = generate(model, [_request("jazz", 5, 8.0, instruments=palette)])[0]
    used = {n.instrument for n in ids_to_notes(result.ids)}
    assert used and used <= set(palette)
    with pytest.raises(InputError):
        _request("jazz", 5, 8.0, instruments=(17,))


def test_note_off_is_allowed_only_for_a_note_sounding_in_the_current_family():
    row = RowState(0, vocab.GENRE, (), 30.0, "ring", 0, DEFAULT)
    assert not row.allowed()[vocab.NOTE_OFF:vocab.VELOCITY].any()  # nothing sounds yet
    for token in (vocab.INSTRUMENT + 4, vocab.NOTE_ON + 40, vocab.INSTRUMENT + 0, vocab.NOTE_ON + 60,
                  vocab.NOTE_ON + 64, vocab.TIME_SHIFT + 9):
        row.push(token)
    offs = np.flatnonzero(row.allowed()[vocab.NOTE_OFF:vocab.VELOCITY]).tolist()
    assert offs == [60, 64]  # the bass note needs a switch to the bass first
    row.push(vocab.INSTRUMENT + 4)
    assert np.flatnonzero(row.allowed()[vocab.NOTE_OFF:vocab.VELOCITY]).tolist() == [40]
    row.push(vocab.NOTE_OFF + 40)
    assert not row.allowed()[vocab.NOTE_OFF:vocab.VELOCITY].any()


def test_generated_tracks_have_no_note_off_without_its_note():
    model = _model(time_bias=1.0)  # random weights: NOTE_OFFs for silent pitches get real mass
    for result in generate(model, [_request("pop", seed, 6.0) for seed in range(3)]):
        family, sounding = 0, set()
        for token in result.ids:
            if token >= vocab.INSTRUMENT:
                family = token - vocab.INSTRUMENT
            elif vocab.NOTE_ON <= token < vocab.NOTE_OFF:
                sounding.add((family, token))
            elif vocab.NOTE_OFF <= token < vocab.VELOCITY:
                assert (family, token - vocab.NOTE_OFF) in sounding
                sounding.discard((family, token - vocab.NOTE_OFF))


def test_a_window_cut_mid_piece_starts_with_the_instrument_in_force():
    row = RowState(0, vocab.GENRE, (), 60.0, "ring", 0, DEFAULT)
    bass = vocab.INSTRUMENT + vocab.INSTRUMENT_FAMILIES.index("bass")
    for token in [bass] + [vocab.NOTE_ON + 40, vocab.TIME_SHIFT + 9, vocab.NOTE_OFF + 40] * 10:
        row.push(token)
    prompt = row.prompt(16)
    assert prompt[:2] == [vocab.GENRE, bass] and prompt[2:] == row.tokens[-7:]
    assert len(prompt) == 1 + 16 // 2
    assert row.prompt(64) == [vocab.GENRE, *row.tokens]  # it all fits: nothing is cut
    piano = RowState(0, vocab.GENRE, (), 60.0, "ring", 0, DEFAULT)
    for token in [vocab.NOTE_ON + 60, vocab.TIME_SHIFT + 9, vocab.NOTE_OFF + 60] * 10:
        piano.push(token)
    assert piano.prompt(16)[1] == vocab.INSTRUMENT  # piano is in force before any INSTRUMENT
    sber = RowState(0, vocab.GENRE, (), 60.0, "ring", 0, SBER)  # Sber vocabulary
    for token in [vocab.NOTE_ON + 60, vocab.TIME_SHIFT + 9, vocab.NOTE_OFF + 60] * 10:
        sber.push(token)
    assert sber.prompt(16) == [vocab.GENRE, *sber.tokens[-8:]]
