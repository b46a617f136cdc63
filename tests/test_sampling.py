import math

import pytest
import torch

from generator.errors import InputError
from generator.sampling.filters import (
    at_least_k,
    filter_logits,
    guide,
    new_rp_table,
    pitch_range_mask,
    repetition_penalty,
    rp_update,
    sample_from_logits,
    sber_filter_logits,
    top_k,
    top_p,
)
from generator.sampling.params import SamplingParams
from generator.tokens import vocab
from generator.tokens.encoding import SBER

INF = float("-inf")


def _logits_of(probs: list[float]) -> torch.Tensor:
    return torch.log(torch.tensor([probs], dtype=torch.float32))


def _kept(logits: torch.Tensor) -> list[int]:
    return torch.isfinite(logits[0]).nonzero().flatten().tolist()


def _vocab_logits(**values: float) -> torch.Tensor:
    """(1, VOCAB) logits at -10 except the given ids (keys 't<ID>')."""
    logits = torch.full((1, vocab.VOCAB_SIZE), -10.0)
    for key, value in values.items():
        logits[0, int(key[1:])] = value
    return logits


def test_top_k_keeps_exactly_the_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    assert _kept(top_k(logits, 2)) == [1, 3]
    assert _kept(top_k(logits, 0)) == [0, 1, 2, 3, 4]  # 0 = off
    assert torch.equal(top_k(logits, 2)[0, [1, 3]], logits[0, [1, 3]])  # survivors untouched


def test_top_p_keeps_the_crossing_token_and_the_sber_drops_it():
    logits = _logits_of([0.5, 0.3, 0.15, 0.05])
    assert _kept(top_p(logits, 0.7)) == [0, 1]  # 0.5 < 0.7, then token 1 crosses: kept
    assert _kept(top_p(logits, 0.7, keep_crossing=False)) == [0]
    assert _kept(top_p(logits, 0.9)) == [0, 1, 2]
    assert _kept(top_p(logits, 0.9, keep_crossing=False)) == [0, 1]
    assert _kept(top_p(logits, 0.4)) == [0]
    assert _kept(top_p(logits, 0.4, keep_crossing=False)) == []  # Sber relies on at_least_k


def test_top_p_is_cut_from_the_topp_temperature_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    # at temperature 1: p = .64 .24 .09 .03; at 10: about .28 .25 .23 .21 (flatter, wider nucleus)
    assert _kept(top_p(logits, 0.6)) == [0]
    assert _kept(top_p(logits, 0.6, topp_temperature=10.0)) == [0, 1, 2]


def test_at_least_k_restores_the_most_likely_with_their_logits():
    reference = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    filtered = torch.full_like(reference, INF)
    restored = at_least_k(filtered, reference, 2)
    assert _kept(restored) == [1, 3]
    assert restored[0, 1] == 3.0 and restored[0, 3] == 2.0


def test_pitch_range_masks_note_on_outside_and_keeps_note_off_unless_asked():
    logits = torch.zeros(1, vocab.VOCAB_SIZE)
    out = pitch_range_mask(logits, 21, 96)
    kept_on = [p for p in range(128) if math.isfinite(out[0, vocab.NOTE_ON + p])]
    assert kept_on == list(range(21, 97))
    assert torch.isfinite(out[0, vocab.NOTE_OFF:]).all()
    both = pitch_range_mask(logits, 21, 96, note_off_too=True)
    assert [p for p in range(128) if math.isfinite(both[0, vocab.NOTE_OFF + p])] == list(range(21, 97))
    assert torch.isfinite(both[0, vocab.VELOCITY:]).all()


def test_repetition_penalty_multiplies_note_probabilities_by_the_table():
    logits = torch.zeros(1, vocab.VOCAB_SIZE)
    table = new_rp_table(1)
    table[0, 60] = 0.5
    table[0, 61] = 0.0
    out = repetition_penalty(logits, table)
    probs, base = torch.softmax(out, -1), torch.softmax(logits, -1)
    ratio = (probs[0, 60] / probs[0, 62]).item()
    assert ratio == pytest.approx(0.5)
    assert probs[0, 61] == 0.0
    assert torch.equal(out[0, vocab.NOTE_OFF:], logits[0, vocab.NOTE_OFF:])  # only NOTE_ON touched
    assert base[0, 60] == base[0, 62]


def test_rp_table_is_per_row_and_restores_with_time_shifts():
    table = new_rp_table(3)
    table[2] = 0.5
    half_second = vocab.TIME_SHIFT + 49  # TIME_SHIFT(500 ms)
    tokens = torch.tensor([60, 60, half_second])
    after = rp_update(table, tokens, penalty=0.05, restore_speed=0.7)
    assert after[0, 60] == pytest.approx(0.95) and after[1, 60] == pytest.approx(0.95)
    assert (after[0, :60] == 1).all() and (after[0, 61:] == 1).all()
    assert torch.allclose(after[2], torch.full((128,), 0.5 + 0.5 * 0.7))  # row 2 never sees rows 0/1's note
    alone = rp_update(new_rp_table(1), torch.tensor([60]), 0.05, 0.7)
    assert torch.equal(alone[0], after[0])
    # a time shift in one row does not lift another row's penalties
    lowered = rp_update(after, torch.tensor([61, half_second, half_second]), 0.3, 0.7)
    assert lowered[0, 60] == pytest.approx(0.95) and lowered[0, 61] == pytest.approx(0.7)
    assert lowered[1, 60] == 1.0  # 0.95 + 0.35, clamped


def test_rp_update_sber_compatible_counts_shifts_one_step_short():
    table = torch.full((1, 128), 0.5)
    after = rp_update(table, torch.tensor([vocab.TIME_SHIFT + 49]), 0.05, 1.0, encoding=SBER)
    assert after[0, 0] == pytest.approx(0.5 + 0.49)


def test_sber_order_masks_reproduce_its_pipeline():
    logits = _vocab_logits(t60=3.0, t100=5.0, t300=2.0, t260=1.0)
    params = SamplingParams.plain(top_k=3, top_p=0.95, sber_compatible=True)
    out = sber_filter_logits(logits, params)
    # 100 masked (range); top-3 of the rest: 60 (.665), 300 (.245), 260 (.09); cumsum < .95 keeps two
    assert _kept(out) == [60, 300]
    ours = filter_logits(logits, SamplingParams.plain(top_k=3, top_p=0.95, pitch_range=(21, 96)))
    assert _kept(ours) == [60, 260, 300]  # the crossing token (260) stays


def test_sber_order_applies_temperature_to_the_survivors_only():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    logits = torch.cat([logits, torch.full((1, vocab.SBER_VOCAB_SIZE - 4), -30.0)], dim=1)
    logits[0, :4] = -30.0
    logits[0, 300:304] = torch.tensor([3.0, 2.0, 1.0, 0.0])
    params = SamplingParams.plain(top_k=0, top_p=0.8, temperature=2.0, sber_compatible=True)
    out = sber_filter_logits(logits, params)
    assert _kept(out) == [300]  # cumsum .64 < .8, then .88: only the first, at_least_k 1
    params = SamplingParams.plain(top_p=0.8, temperature=2.0, at_least_k=3, sber_compatible=True)
    out = sber_filter_logits(logits, params)
    assert _kept(out) == [300, 301, 302]
    assert torch.allclose(out[0, 300:303], torch.tensor([1.5, 1.0, 0.5]))  # logits / temperature


def test_sber_penalty_falls_back_to_the_rest_of_the_top_k():
    logits = _vocab_logits(t60=2.0, t300=1.2, t301=0.0)
    table = new_rp_table(1)
    table[0, 60] = 0.0  # note 60 fully penalised
    sber = SamplingParams.plain(top_k=3, top_p=0.5, rp_penalty=0.05, sber_compatible=True)
    assert _kept(sber_filter_logits(logits, sber, table)) == [300, 301]  # its top-p set died
    ours = SamplingParams.plain(top_k=3, top_p=0.5, rp_penalty=0.05)
    assert _kept(filter_logits(logits, ours, table)) == [300]  # penalty first, then nucleus


def test_filter_keeps_unpenalised_distribution_when_penalty_removes_everything():
    logits = torch.full((1, vocab.VOCAB_SIZE), INF)
    logits[0, 60] = 0.0
    table = new_rp_table(1)
    table[0, 60] = 0.0
    assert _kept(filter_logits(logits, SamplingParams.plain(rp_penalty=0.1), table)) == [60]


def test_allowed_mask_applies_before_everything():
    logits = _vocab_logits(t60=5.0, t300=1.0)
    allowed = torch.ones(1, vocab.VOCAB_SIZE, dtype=torch.bool)
    allowed[0, 60] = False
    assert _kept(filter_logits(logits, SamplingParams.plain(top_k=1), allowed=allowed)) == [300]
    assert _kept(sber_filter_logits(logits, SamplingParams.plain(top_k=1, sber_compatible=True),
                                    allowed=allowed)) == [300]


def test_sample_from_logits_is_inverse_cdf_most_likely_first():
    logits = _logits_of([0.2, 0.5, 0.3])
    picks = [sample_from_logits(logits, torch.tensor([u])).item() for u in (0.1, 0.49, 0.55, 0.79, 0.81, 0.999)]
    assert picks == [1, 1, 2, 2, 0, 0]
    masked = torch.tensor([[0.0, INF, 0.0]])
    assert sample_from_logits(masked, torch.tensor([0.9999999])).item() == 2


@pytest.mark.parametrize("key, value", [
    ("temperature", 0.0), ("top_k", -1), ("top_p", 0.0), ("top_p", 1.5), ("topp_temperature", -1.0),
    ("at_least_k", 0), ("rp_penalty", 2.0), ("rp_restore_speed", -0.1), ("pitch_range", (90, 20)),
    ("beam_width", 0), ("length_penalty", -1.0), ("sber_compatible", "yes"), ("genre_guidance", -0.5),
    ("genre_guidance", float("nan")),
])
def test_sampling_params_reject_bad_values_naming_the_key(key, value):
    with pytest.raises(InputError, match=f"'{key}'"):
        SamplingParams.plain(**{key: value})


def test_genre_guidance_is_for_sampling_with_our_models():
    with pytest.raises(InputError, match="'genre_guidance'.*beam_width 1"):
        SamplingParams.plain(genre_guidance=1.0, beam_width=4)
    with pytest.raises(InputError, match="'genre_guidance'.*sber_compatible false"):
        SamplingParams.plain(genre_guidance=1.0, sber_compatible=True)


def test_guide_moves_logits_away_from_the_unconditioned_ones():
    cond, uncond = torch.tensor([[2.0, 1.0, 0.0]] * 2), torch.tensor([[1.0, 1.0, 1.0]] * 2)
    out = guide(cond, uncond, torch.tensor([0.0, 2.0]))
    assert torch.equal(out[0], cond[0]) and torch.equal(out[1], torch.tensor([4.0, 1.0, -2.0]))
    shifted = guide(torch.log_softmax(cond, -1), torch.log_softmax(uncond, -1), torch.tensor([0.0, 2.0]))
    assert torch.allclose(torch.softmax(shifted, -1), torch.softmax(out, -1))  # logits or log-probs alike


def test_sampling_params_defaults_are_the_recipe_defaults_and_plain_is_off():
    p = SamplingParams()  # Sber's demo settings, as a recipe that leaves the keys out
    assert (p.temperature, p.top_k, p.top_p, p.at_least_k, p.rp_penalty, p.beam_width, p.pitch_range) == \
           (1.0, 60, 0.99, 1, 0.05, 1, (21, 96))
    logits = torch.randn(2, vocab.VOCAB_SIZE)
    assert torch.equal(filter_logits(logits, SamplingParams.plain()), logits)
    assert SamplingParams.plain(top_k=5).top_k == 5
