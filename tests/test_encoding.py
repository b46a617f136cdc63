"""The Encoding object: JSON round trips, built from what a checkpoint stores, and the time-shift
arithmetic of each encoding pinned on examples (quirks included)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.errors import CheckpointError
from generator.model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from generator.model.transformer import ModelConfig, MusicTransformer
from generator.sampling.filters import new_rp_table, rp_update
from generator.tokens import vocab
from generator.tokens.encoding import BEAT, DEFAULT, ENCODINGS, SBER, Encoding, encoding_named, encoding_of
from generator.tokens.tokenizer import Note, ids_to_notes, notes_to_ids
from paths import CI_ENV, VECTORS

SBER_STATE = VECTORS / "sber_tiny_state_dict.pt"
ROOT = Path(__file__).resolve().parents[1]
SHIFT = vocab.TIME_SHIFT


# ------------------------------------------------------------------ the object


@pytest.mark.parametrize("encoding", [DEFAULT, SBER])
def test_encoding_round_trips_through_json(encoding):
    text = encoding.to_json()
    assert json.loads(text)["name"] == encoding.name
    assert Encoding.from_json(text) is encoding
    assert Encoding.from_dict(encoding.to_dict()) == encoding


def test_encodings_differ_where_they_should():
    assert (DEFAULT.name, DEFAULT.vocab_size, DEFAULT.has_instruments) == ("default", 411, True)
    assert (SBER.name, SBER.vocab_size, SBER.has_instruments) == ("sber", 394, False)
    assert set(ENCODINGS) == {"default", "sber", "beat"} and encoding_named("seed") is SBER
    assert (BEAT.name, BEAT.vocab_size, BEAT.has_bars, DEFAULT.has_bars) == ("beat", 515, True, False)
    assert DEFAULT.instrument_token(4) == vocab.INSTRUMENT + 4 and SBER.instrument_token(4) is None
    assert SBER.instrument_ids is None and DEFAULT.instrument_ids == slice(vocab.INSTRUMENT, vocab.VOCAB_SIZE)


def test_a_json_of_another_build_or_an_unknown_name_is_refused():
    with pytest.raises(ValueError, match="differs"):
        Encoding.from_dict({**DEFAULT.to_dict(), "vocab_size": 500})
    with pytest.raises(ValueError, match="'beats' is unknown"):
        Encoding.from_json(json.dumps({**DEFAULT.to_dict(), "name": "beats"}))


def test_the_codec_is_the_encodings():
    notes = [Note(60, 0.0, 0.29, 80), Note(62, 0.29, 0.87, 81)]
    assert DEFAULT.encode(notes) == notes_to_ids(notes)
    assert SBER.encode(notes) == notes_to_ids(notes, encoding=SBER) == [276, 60, 315, 188, 276, 62, 344, 190]
    assert SBER.decode(SBER.encode(notes)) == ids_to_notes(SBER.encode(notes), encoding=SBER)


# ------------------------------------------------------------------ built from a checkpoint


def test_our_checkpoint_gives_its_encoding(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, MusicTransformer(ModelConfig.tiny()), {})
    assert read_checkpoint(path)["vocab"] == {"size": 411, "encoding": "default"}
    assert encoding_of(read_checkpoint(path)) is DEFAULT
    model, meta = load_checkpoint(path)
    assert model.encoding is DEFAULT and encoding_of(model) is DEFAULT and encoding_of(meta) is DEFAULT


def test_a_sber_state_dict_is_the_sber_encoding_and_saves_as_sber(tmp_path):
    model, meta = load_checkpoint(SBER_STATE)
    assert model.encoding is SBER and encoding_of(meta) is SBER
    save_checkpoint(tmp_path / "sber.pt", model, {})
    assert read_checkpoint(tmp_path / "sber.pt")["vocab"] == {"size": 394, "encoding": "sber"}
    assert load_checkpoint(tmp_path / "sber.pt")[0].encoding is SBER


def test_the_legacy_name_seed_reads_as_sber(tmp_path):
    model, _ = load_checkpoint(SBER_STATE)
    path = tmp_path / "legacy.pt"
    save_checkpoint(path, model, {})
    data = read_checkpoint(path)
    data["vocab"] = {"size": 394, "encoding": "seed"}  # what checkpoints saved before the rename hold
    torch.save(data, path)
    loaded, meta = load_checkpoint(path)
    assert loaded.encoding is SBER and meta["vocab"] == {"size": 394, "encoding": "sber"}
    assert encoding_of({"vocab": {"size": 394, "encoding": "seed"}}) is SBER


def test_an_unknown_stored_encoding_is_refused_naming_the_value(tmp_path):
    path = tmp_path / "beats.pt"
    save_checkpoint(path, MusicTransformer(ModelConfig.tiny()), {})
    data = read_checkpoint(path)
    data["vocab"]["encoding"] = "beats"
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="'beats'") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    with pytest.raises(CheckpointError, match="vocab size 394"):
        encoding_of({"size": 394, "encoding": "default"})


def test_a_model_refuses_an_encoding_that_does_not_fit_its_vocabulary():
    with pytest.raises(ValueError, match="'sber'"):
        MusicTransformer(ModelConfig.tiny(), SBER)


# ------------------------------------------------------------------ time-shift arithmetic


def test_a_time_shift_advances_its_steps_in_both_encodings():
    tokens = [vocab.NOTE_ON + 60, SHIFT, SHIFT + 27, SHIFT + 99, vocab.END, vocab.INSTRUMENT]
    for encoding in (DEFAULT, SBER):
        assert encoding.ticks_per_s == 100 and encoding.max_shift_ticks == 100
        assert encoding.shift_ticks(tokens).tolist() == [0, 1, 28, 100, 0, 0]
        assert [encoding.ticks_of(t) for t in tokens] == [0, 1, 28, 100, 0, 0]
        assert encoding.seconds_of(tokens) == pytest.approx(1.29)
        assert encoding.shift_tokens(235) == [SHIFT + 99, SHIFT + 99, SHIFT + 34]
        assert encoding.shift_tokens(0) == []


def test_a_gap_of_029_s_truncates_in_sber_and_rounds_in_ours():
    assert SBER.gap_shifts(0.29) == [SHIFT + 27]  # 0.29 * 100 = 28.999...: 280 ms
    assert DEFAULT.gap_shifts(0.29) == [SHIFT + 28]  # 290 ms
    assert SBER.gap_shifts(0.58) == [SHIFT + 56] and DEFAULT.gap_shifts(0.58) == [SHIFT + 57]
    assert SBER.gap_shifts(2.35) == DEFAULT.gap_shifts(2.35) == [SHIFT + 99, SHIFT + 99, SHIFT + 34]
    assert DEFAULT.tick(0.005) == 1 and DEFAULT.tick(0.0049) == 0 and DEFAULT.tick(-1.0) == 0
    assert SBER.quantise(0.125) == pytest.approx(0.12)  # float rounding, half to even


def test_the_repetition_penalty_counts_a_sber_shift_one_step_short():
    tokens = torch.tensor([SHIFT + 49, SHIFT, vocab.END, vocab.NOTE_ON + 60])
    assert DEFAULT.penalty_seconds(tokens).tolist() == pytest.approx([0.5, 0.01, 0.0, 0.0])
    assert SBER.penalty_seconds(tokens).tolist() == pytest.approx([0.49, 0.0, 1.0, 0.0])
    table = new_rp_table(1) * 0.0
    assert float(rp_update(table, torch.tensor([SHIFT + 49]), 0.05, 1.0, encoding=DEFAULT)[0, 0]) == pytest.approx(0.5)


def test_the_sampler_masks_the_shifts_past_the_target():
    for encoding in (DEFAULT, SBER):
        m = encoding.sampleable()
        assert m.shape == (encoding.vocab_size,) and not m[vocab.END:vocab.GENRE + 4].any()
        assert m[:vocab.END].all() and m[vocab.GENRE + 4:].all()
        assert encoding.longer_shifts(30) == slice(SHIFT + 30, vocab.END)  # TIME_SHIFT + 30 is 31 ticks
        assert np.arange(500)[encoding.longer_shifts(-3)].tolist() == list(range(SHIFT, vocab.END))
        assert np.arange(500)[encoding.longer_shifts(500)].size == 0


def test_gen_tokenize_json_names_the_sber_encoding():
    result = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "tokenize",
                             str(VECTORS / "sber_midi" / "pop_0.mid"), "--sber-compatible", "--json"],
                            cwd=ROOT, env=CI_ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["encoding"] == "sber"


def test_token_names_come_from_the_encoding():
    names = [DEFAULT.token_name(t) for t in (60, 188, 257, 299, 387, 388, 389, 391, 398, 411)]
    assert names == ["NOTE_ON(60)", "NOTE_OFF(60)", "VELOCITY(1)", "TIME_SHIFT(120ms)", "TIME_SHIFT(1000ms)",
                     "END", "PAD", "GENRE(jazz)", "INSTRUMENT(bass)", "UNKNOWN(411)"]
    assert SBER.token_name(398) == "UNKNOWN(398)"  # Sber's vocabulary has no INSTRUMENT tokens
