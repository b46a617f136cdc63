import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli import app
from generator.corpus.shards import load_shard, shard_path, write_shard
from generator.errors import CheckpointError, InputError
from generator.model import train as train_module
from generator.model.checkpoint import load_checkpoint
from generator.model.train import (
    TrainOptions,
    WindowSampler,
    _eval_windows,
    evaluate_nll,
    family_before,
    learning_rate,
    train,
    train_pieces,
)
from generator.model.transformer import ModelConfig
from generator.tokens import vocab
from generator.tokens.tokenizer import midi_to_ids
from paths import SBER_MIDI


def write_sber_midi_corpus(data_dir: Path) -> None:
    """A real corpus in the shard format from the four Sber MIDI files: 80/10/10 % of each piece."""
    splits: dict[str, list] = {"train": [], "valid": [], "test": []}
    rows = []
    for midi in sorted(SBER_MIDI.glob("*.mid")):
        ids, genre = midi_to_ids(midi), midi.stem.split("_")[0]
        a, b = int(len(ids) * 0.8), int(len(ids) * 0.9)
        for split, part in (("train", ids[:a]), ("valid", ids[a:b]), ("test", ids[b:])):
            splits[split].append((part, genre, len(rows)))
            licence = "copyleft" if genre == "pop" else "pd"  # so --exclude-licence has work to do
            rows.append({"id": f"seed-{genre}/{midi.stem}-{split}", "genre": genre, "licence_class": licence,
                         "split": split, "n_tokens": len(part)})
    for split, items in splits.items():
        write_shard(shard_path(data_dir, split), [i[0] for i in items], [i[1] for i in items],
                    [i[2] for i in items])
    (data_dir / "pieces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("data")
    write_sber_midi_corpus(data_dir)
    return data_dir


def _opts(corpus: Path, out: Path, **changes) -> TrainOptions:
    base = TrainOptions(data_dir=corpus, out_dir=out, config="tiny", batch_size=4, lr=3e-3, warmup_steps=3,
                        max_steps=6, checkpoint_every=1000, eval_every=1000, eval_tokens_per_genre=512)
    return replace(base, **changes)


def test_shard_round_trip_and_errors(tmp_path):
    write_shard(tmp_path / "s.npz", [[1, 2, 3], [], [400]], ["jazz", "ambient", 0], [5, 6, 7])
    shard = load_shard(tmp_path / "s.npz")
    assert shard.ids(0).tolist() == [1, 2, 3] and shard.ids(1).tolist() == [] and shard.ids(2).tolist() == [400]
    assert shard.genre.tolist() == [1, 2, 0] and shard.piece.tolist() == [5, 6, 7]
    with pytest.raises(InputError, match="not found"):
        load_shard(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", tokens=np.zeros(3, np.uint16), offsets=np.array([0, 5]),
             genre=np.zeros(1, np.int8), piece=np.zeros(1, np.int32))
    with pytest.raises(InputError, match="offsets"):
        load_shard(tmp_path / "bad.npz")


def test_windows_start_with_the_genre_and_end_only_at_the_piece_end(corpus):
    shard = load_shard(shard_path(corpus, "train"))
    sampler = WindowSampler(shard, np.arange(len(shard)), 64, augment=False)
    rng = np.random.default_rng(0)
    pieces = {vocab.GENRE + int(g): shard.ids(i).tolist() for i, g in enumerate(shard.genre)}
    seen_end = seen_cut = 0
    for _ in range(300):
        window = sampler.window(rng)
        body = window[1:-1] if window[-1] == vocab.END else window[1:]
        piece = pieces[window[0]]
        assert len(window) <= 65 and len(body) <= 63
        if piece[: len(body)] != body:  # cut from the middle: the INSTRUMENT in force, then a slice
            seen_cut += 1
            rest = body[1:]
            starts = [s for s in range(1, len(piece) - len(rest) + 1) if piece[s : s + len(rest)] == rest
                      and body[0] == vocab.INSTRUMENT + family_before(np.array(piece), s)]
            assert starts, "window is not [INSTRUMENT in force] + a slice of its genre's piece"
        if window[-1] == vocab.END:
            seen_end += 1
            assert piece[-len(body) + 1:] == body[1:]
    assert seen_cut > 200
    x, y = sampler.batch(3, rng)
    real = y[:, 1:] != vocab.PAD  # x is y shifted right by one wherever the next target is real
    assert x.shape == y.shape == (3, 64) and torch.equal(x[:, 1:][real], y[:, :-1][real])
    assert torch.all(x[:, 0] >= vocab.GENRE) and torch.all(x[:, 0] < vocab.INSTRUMENT)


def test_a_window_cut_from_the_middle_names_the_instrument_in_force(tmp_path):
    drums, bass = vocab.INSTRUMENT + vocab.DRUMS_FAMILY, vocab.INSTRUMENT + 4
    kick = [36, vocab.TIME_SHIFT + 9, vocab.NOTE_OFF + 36]  # a drum hit of 100 ms
    piece = [drums] + kick * 40 + [bass] + [40, vocab.TIME_SHIFT + 9, vocab.NOTE_OFF + 40] * 40
    write_shard(tmp_path / "one.npz", [piece], ["pop"], [0])
    shard = load_shard(tmp_path / "one.npz")
    rng = np.random.default_rng(3)
    for augment in (False, True):
        sampler = WindowSampler(shard, np.arange(1), 32, augment=augment)
        for _ in range(100):
            window = sampler.window(rng)
            first_note = next(i for i, t in enumerate(window) if t < vocab.VELOCITY)
            named = [t for t in window[:first_note] if t >= vocab.INSTRUMENT]
            assert named and named[-1] in (drums, bass)  # never a note event of an unnamed family
            if named[-1] == drums and bass not in window:  # drums are never transposed
                assert {t for t in window[2:] if t < vocab.NOTE_OFF} <= {36}
    assert family_before(np.array(piece), 1) == vocab.DRUMS_FAMILY
    assert family_before(np.array(piece), len(piece)) == 4 and family_before(np.array([60]), 1) == 0


def test_augmented_windows_stay_valid(corpus):
    shard = load_shard(shard_path(corpus, "train"))
    sampler = WindowSampler(shard, np.arange(len(shard)), 128, augment=True)
    rng = np.random.default_rng(1)
    for _ in range(50):
        window = sampler.window(rng)
        assert vocab.GENRE <= window[0] < vocab.INSTRUMENT and len(window) <= 129
        assert all(t < vocab.END or t >= vocab.INSTRUMENT for t in window[1:-1])


def test_genre_dropout_trains_that_share_of_windows_unconditioned(corpus, tmp_path):
    shard = load_shard(shard_path(corpus, "train"))
    sampler = WindowSampler(shard, np.arange(len(shard)), 64, augment=True, genre_dropout=0.25)
    prefixes = [sampler.window(np.random.default_rng(k))[0] for k in range(400)]
    share = prefixes.count(vocab.NO_GENRE) / len(prefixes)
    assert 0.18 < share < 0.32 and all(p == vocab.NO_GENRE or vocab.GENRE <= p < vocab.INSTRUMENT for p in prefixes)
    plain = WindowSampler(shard, np.arange(len(shard)), 64, augment=True)
    assert vocab.NO_GENRE not in [plain.window(np.random.default_rng(k))[0] for k in range(100)]
    result = train(_opts(corpus, tmp_path, max_steps=1, genre_dropout=0.1))
    assert load_checkpoint(result.model_path)[0].config.unconditioned
    assert not load_checkpoint(train(_opts(corpus, tmp_path / "b", max_steps=1)).model_path)[0].config.unconditioned


def test_exclude_licence_drops_those_pieces(corpus):
    shard = load_shard(shard_path(corpus, "train"))
    kept = train_pieces(corpus, shard, ("copyleft",))
    assert sorted(vocab.GENRES[g] for g in shard.genre[kept]) == ["calm", "classic", "jazz"]
    with pytest.raises(InputError, match="no training pieces"):
        train_pieces(corpus, shard, ("pd", "copyleft"))


def test_exclude_source_drops_that_source_and_names_the_known_ones(corpus):
    shard = load_shard(shard_path(corpus, "train"))
    kept = train_pieces(corpus, shard, (), ("seed-pop", "seed-jazz"))
    assert sorted(vocab.GENRES[g] for g in shard.genre[kept]) == ["calm", "classic"]
    with pytest.raises(InputError, match="pop-mma not a source.*seed-calm, seed-classic"):
        train_pieces(corpus, shard, (), ("pop-mma",))


def test_eval_windows_cover_every_token_once(corpus):
    shard = load_shard(shard_path(corpus, "valid"))
    targets = {}
    for index, g, x, y in _eval_windows(shard, 64, None):
        assert g == shard.genre[index] and x[0] == vocab.GENRE + g and x[1:] == y[:-1]
        targets.setdefault(index, []).extend(y)
    for index in range(len(shard)):
        assert targets[index] == shard.ids(index).tolist() + [vocab.END]


def test_learning_rate_warms_up_then_decays():
    opts = TrainOptions(lr=1.0, warmup_steps=10, max_steps=110)
    assert learning_rate(0, opts) == pytest.approx(0.1)
    assert learning_rate(9, opts) == pytest.approx(1.0)
    assert learning_rate(60, opts) == pytest.approx(0.55)
    assert learning_rate(110, opts) == pytest.approx(0.1)


def test_tiny_model_training_loss_falls_on_a_real_shard(corpus, tmp_path):
    torch.manual_seed(0)
    from generator.model.transformer import MusicTransformer

    before = evaluate_nll(MusicTransformer(ModelConfig.tiny()), shard_path(corpus, "valid"))
    losses = []
    result = train(_opts(corpus, tmp_path, max_steps=40, lr=1e-2),
                   lambda p: losses.append(p.loss) if p.event == "step" else None)
    after = result.meta["valid_nll"]
    assert result.finished and set(after) == set(vocab.GENRES) == set(result.meta["test_nll"])
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5
    assert all(after[g] < before[g] - 0.5 for g in vocab.GENRES), (before, after)
    model, meta = load_checkpoint(result.model_path)
    assert evaluate_nll(model, shard_path(corpus, "valid")) == after  # deterministic, from the file
    assert meta["steps"] == 40 and meta["data"]["train_pieces"] == 4 and meta["tokens_seen"] > 0


def _with_dropout(monkeypatch):
    # dropout makes the torch RNG state matter, so resume has to restore it
    monkeypatch.setitem(train_module.CONFIGS, "tiny", lambda: replace(ModelConfig.tiny(), dropout=0.1))


def test_resume_after_a_signal_continues_the_same_run(corpus, tmp_path, monkeypatch):
    _with_dropout(monkeypatch)
    whole = train(_opts(corpus, tmp_path / "whole"))

    def stop_after_3(p):
        if p.event == "step" and p.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    first = train(_opts(corpus, tmp_path / "split"), stop_after_3)
    assert (first.step, first.stopped_by, first.finished) == (3, "SIGTERM", False)
    assert load_checkpoint(first.checkpoint)[1]["steps"] == 3
    second = train(_opts(corpus, tmp_path / "split", resume=True))
    assert (second.step, second.finished) == (6, True)
    a, b = load_checkpoint(whole.model_path)[0], load_checkpoint(second.model_path)[0]
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    assert whole.meta["tokens_seen"] == second.meta["tokens_seen"]
    assert whole.meta["test_nll"] == second.meta["test_nll"]


def test_minutes_budget_stops_at_a_checkpoint_that_resumes(corpus, tmp_path):
    chunk = train(_opts(corpus, tmp_path, minutes=0.0))
    assert (chunk.step, chunk.stopped_by) == (0, "minutes") and chunk.checkpoint.is_file()
    done = train(_opts(corpus, tmp_path, resume=True, max_steps=2))
    assert done.step == 2 and done.finished


def test_resume_refuses_changed_data(corpus, tmp_path):
    train(_opts(corpus, tmp_path / "run", max_steps=1))
    changed = tmp_path / "data"
    write_sber_midi_corpus(changed)
    write_shard(shard_path(changed, "train"), [[1, 2, 3]], ["jazz"], [0])
    with pytest.raises(InputError, match="data changed"):
        train(_opts(changed, tmp_path / "run", resume=True, max_steps=2))


def test_cli_train_then_model_info(corpus, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(corpus), "--out", str(out), "--config", "tiny",
                                 "--max-steps", "2", "--warmup-steps", "1", "--exclude-licence", "copyleft,none"])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["model", "info", str(out / "model.pt")])
    assert info.exit_code == 0, info.output
    lines = dict(line.split(":", 1) for line in info.output.splitlines())
    assert lines["steps"].strip() == "2" and "relative attention" in lines["architecture"]
    assert "--exclude-licence copyleft,none" in lines["command"] and lines["excluded licences"].strip() == \
        "copyleft, none"
    facts = json.loads(runner.invoke(app, ["model", "info", "--json", str(out / "checkpoint.pt")]).output)
    assert set(facts["test_nll"]) == set(vocab.GENRES)  # held-out evaluation covers every genre
    assert facts["data"]["licence_classes"] == {"pd": 3} and facts["parameters"] > 0


def test_init_warm_starts_from_the_parent_and_records_the_lineage(corpus, tmp_path):
    parent = train(_opts(corpus, tmp_path / "parent", max_steps=3))
    child = train(_opts(corpus, tmp_path / "child", max_steps=0, init=str(parent.model_path)))
    a, b = load_checkpoint(parent.model_path)[0], load_checkpoint(child.model_path)[0]
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name  # step 0 of the child is the parent
    assert child.meta["init"]["steps"] == 3 and child.meta["init"]["checkpoint"] == str(parent.model_path)
    assert len(child.meta["init"]["sha256"]) == 64
    assert child.meta["init"]["data_sha256"] == parent.meta["data"]["sha256"]

    def stop_after_2(p):
        if p.event == "step" and p.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    first = train(_opts(corpus, tmp_path / "grand", max_steps=4, init=str(child.model_path)), stop_after_2)
    parent.model_path.unlink()  # a resumed warm start needs only its own checkpoint
    done = train(_opts(corpus, tmp_path / "grand", max_steps=4, resume=True))
    assert (first.step, done.step, done.finished) == (2, 4, True)
    assert done.meta["init"]["checkpoint"] == str(child.model_path) and done.meta["init"]["init"]["steps"] == 3
    assert done.meta["steps_total"] == 4 + 0 + 3
    assert done.meta["tokens_seen_total"] == done.meta["tokens_seen"] + parent.meta["tokens_seen"]
    info = CliRunner().invoke(app, ["model", "info", str(done.model_path)])
    lines = dict(line.split(":", 1) for line in info.output.splitlines())
    assert lines["steps, all runs"].strip() == "7" and str(child.model_path) in lines["warm start from"]


def test_init_refuses_a_sber_checkpoint_and_absolute(corpus, tmp_path):
    from paths import VECTORS

    with pytest.raises(CheckpointError, match="--init takes a `gen train` checkpoint"):
        train(_opts(corpus, tmp_path / "a", init=str(VECTORS / "sber_tiny_state_dict.pt")))
    parent = train(_opts(corpus, tmp_path / "parent", max_steps=1))
    with pytest.raises(InputError, match="drop --absolute"):
        train(_opts(corpus, tmp_path / "b", init=str(parent.model_path), absolute=True))


def test_model_info_on_a_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    result = CliRunner().invoke(app, ["model", "info", str(tmp_path / "none.pt")])
    assert isinstance(result.exception, CheckpointError) and "not found" in str(result.exception)
