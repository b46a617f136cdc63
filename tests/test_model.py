from dataclasses import replace

import pytest
import torch

from generator.errors import CheckpointError
from generator.model.attention import KVCache, relative_logits, relative_logits_naive, relative_logits_step
from generator.model.checkpoint import load_checkpoint, save_checkpoint
from generator.model.transformer import ModelConfig, MusicTransformer
from paths import VECTORS

SBER_STATE = VECTORS / "sber_tiny_state_dict.pt"
SBER_IO = VECTORS / "sber_tiny_io.pt"



def _tiny(**changes) -> MusicTransformer:
    torch.manual_seed(0)
    return MusicTransformer(replace(ModelConfig.tiny(), **changes)).eval()


def _ids(batch: int, length: int, vocab_size: int) -> torch.Tensor:
    return torch.randint(0, vocab_size, (batch, length), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("per_head", [False, True])
def test_skew_equals_naive_relative_attention(per_head):
    torch.manual_seed(0)
    q = torch.randn(2, 3, 37, 8)
    er = torch.randn(3, 37, 8) if per_head else torch.randn(37, 8)
    lower = torch.tril(torch.ones(37, 37, dtype=torch.bool))
    skewed = relative_logits(q, er)
    naive = relative_logits_naive(q, er)
    assert torch.allclose(skewed[..., lower], naive[..., lower], atol=1e-5)
    # spot-check one entry against the definition q_i . Er[L-1-(i-j)]
    i, j = 20, 5
    expected = q[1, 2, i] @ (er[2] if per_head else er)[36 - (i - j)]
    assert torch.allclose(skewed[1, 2, i, j], expected, atol=1e-5)


def test_step_relative_logits_match_the_last_rows_of_the_full_ones():
    torch.manual_seed(0)
    q = torch.randn(1, 2, 30, 4)
    er = torch.randn(30, 4)
    full = relative_logits_naive(q, er)
    part = relative_logits_step(q[:, :, -7:], er, 30)
    lower = torch.tril(torch.ones(30, 30, dtype=torch.bool))[-7:]
    assert torch.allclose(part[..., lower], full[:, :, -7:][..., lower], atol=1e-5)


def test_sber_state_dict_reproduces_seed_logits():
    model, meta = load_checkpoint(SBER_STATE)
    io = torch.load(SBER_IO, weights_only=True)
    assert model.config.n_heads == 4 and model.config.vocab_size == 394 and not model.config.norm_first
    assert meta["vocab"]["encoding"] == "sber"
    with torch.no_grad():
        logits = model(io["input_tokens"])
    assert (logits - io["logits_eval"]).abs().max() <= 1e-4


def test_sber_model_cached_steps_equal_seed_logits():
    model, _ = load_checkpoint(SBER_STATE)
    io = torch.load(SBER_IO, weights_only=True)
    ids = io["input_tokens"]
    cache = model.new_cache()
    with torch.no_grad():
        parts = [model.step(ids[:, :50], cache)]
        parts += [model.step(ids[:, t : t + 1], cache) for t in range(50, 120)]
        parts.append(model.step(ids[:, 120:], cache))
    assert cache.length == ids.shape[1]
    assert (torch.cat(parts, 1) - io["logits_eval"]).abs().max() <= 1e-4


@pytest.mark.parametrize(
    "changes",
    [{}, {"relative": False, "absolute_pe": True}, {"norm_first": False, "absolute_pe": True, "shared_er": True,
                                                   "tie_embeddings": False}],
    ids=["ours", "absolute", "sber-like"],
)
def test_cached_step_equals_forward_at_every_step(changes):
    model = _tiny(**changes)
    ids = _ids(3, 40, model.config.vocab_size)
    cache = model.new_cache()
    with torch.no_grad():
        full = model(ids)
        for t in range(ids.shape[1]):
            logits = model.step(ids[:, t : t + 1], cache)
            assert (logits[:, 0] - full[:, t]).abs().max() <= 1e-4, f"step {t}"


def test_cache_reorder_selects_batch_rows():
    model = _tiny()
    ids = _ids(3, 20, model.config.vocab_size)
    cache = model.new_cache()
    with torch.no_grad():
        model.step(ids[:, :12], cache)
        cache.reorder(torch.tensor([2, 2, 0]))
        logits = model.step(ids[[2, 2, 0], 12:], cache)
        full = model(ids[[2, 2, 0]])
    assert (logits - full[:, 12:]).abs().max() <= 1e-4


def test_cache_crop_keeps_the_last_tokens():
    cache = KVCache(1)
    k = torch.arange(10.0).view(1, 1, 10, 1)
    cache.append(0, k, -k)
    cache.advance(10)
    cache.crop(4)
    assert cache.length == 4
    assert cache.keys(0).flatten().tolist() == [6.0, 7.0, 8.0, 9.0]
    assert cache.values(0).flatten().tolist() == [-6.0, -7.0, -8.0, -9.0]


def test_relative_attention_refuses_more_than_max_seq():
    model = _tiny()
    with pytest.raises(ValueError):
        model(torch.zeros(1, model.config.max_seq + 1, dtype=torch.long))


def test_tiny_has_a_few_thousand_parameters():
    assert 1_000 < _tiny().n_params() < 30_000


def test_save_then_load_gives_identical_logits(tmp_path):
    model = _tiny()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, {"steps": 7})
    loaded, meta = load_checkpoint(path)
    assert meta["steps"] == 7 and loaded.config == model.config
    ids = _ids(2, 30, model.config.vocab_size)
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left behind


def test_sber_model_round_trips_through_our_format(tmp_path):
    model, _ = load_checkpoint(SBER_STATE)
    save_checkpoint(tmp_path / "sber.pt", model, {})
    loaded, meta = load_checkpoint(tmp_path / "sber.pt")
    io = torch.load(SBER_IO, weights_only=True)
    with torch.no_grad():
        assert (loaded(io["input_tokens"]) - io["logits_eval"]).abs().max() <= 1e-4
    assert meta["vocab"] == {"size": 394, "encoding": "sber"}


def test_missing_checkpoint_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path):
    path = tmp_path / "bad.pt"
    save_checkpoint(path, _tiny(), {})
    path.write_bytes(path.read_bytes()[: 300])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_unknown_checkpoint_format_raises_checkpoint_error(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_checkpoint(path)


def test_sber_state_dict_with_wrong_head_override_is_rejected():
    with pytest.raises(CheckpointError, match="n_heads"):
        load_checkpoint(SBER_STATE, n_heads=8)


def test_sber_state_dict_without_relative_attention_needs_the_head_count(tmp_path):
    state = torch.load(SBER_STATE, weights_only=True)
    path = tmp_path / "no_rpr.pt"
    torch.save({k: v for k, v in state.items() if not k.endswith(".Er")}, path)
    with pytest.raises(CheckpointError, match="n_heads"):
        load_checkpoint(path)
    model, _ = load_checkpoint(path, n_heads=4)
    assert (model.config.n_heads, model.config.relative, model.config.absolute_pe) == (4, False, True)
