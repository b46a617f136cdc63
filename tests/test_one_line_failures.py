"""Failures a user meets (a full or unwritable disk, a damaged sidecar or checkpoint, extreme
sampling values) end in one `Error:` line and a documented exit code, never a traceback; nothing
finished is lost and nothing is written outside the output folder."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.errors import CheckpointError, GeneratorError, InputError
from generator.model.checkpoint import load_checkpoint, save_checkpoint
from generator.model.transformer import ModelConfig, MusicTransformer
from html_page import parse
from paths import CI_ENV
from test_pipeline import MIDI_ONLY, midi_bytes, midi_only_batch, no_audio_tools, tiny_checkpoint, write_recipe

__all__ = ["no_audio_tools", "tiny_checkpoint"]  # fixtures used by name

ROOT = Path(__file__).resolve().parent.parent


def run_gen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env=CI_ENV, timeout=120)


def assert_one_error_line(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")} if folder.exists() else set()


# ---- writing a library ----------------------------------------------------------------------

WRITE_ERRORS = [
    (errno.ENOSPC, "no space left on device"),
    (errno.EDQUOT, "disk quota exceeded"),
    (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"),
    (errno.EPERM, "operation not permitted"),
    (errno.EIO, "input/output error"),
]


@pytest.mark.parametrize(("code", "cause"), WRITE_ERRORS, ids=[errno.errorcode[c] for c, _ in WRITE_ERRORS])
def test_a_failed_write_mid_batch_is_one_error_and_keeps_finished_tracks(tmp_path, tiny_checkpoint,
                                                                         no_audio_tools, monkeypatch, code, cause):
    import generator.library.export as export

    real = export.write_json_atomic
    written = []

    def fail_on_the_third_track(path, data):
        if len(written) == 2:
            raise OSError(code, os.strerror(code), str(path))
        real(path, data)
        written.append(path)

    monkeypatch.setattr(export, "write_json_atomic", fail_on_the_third_track)
    with pytest.raises(GeneratorError) as info:  # one finishing thread: exactly two tracks finish first
        midi_only_batch(tmp_path, tiny_checkpoint, "out", jobs=1)
    message = str(info.value)
    assert type(info.value) is GeneratorError and info.value.exit_code == 1
    assert cause in message and "\n" not in message
    assert str(tmp_path / "out") in message and ".partial-" not in message and ".tmp" not in message
    out = tmp_path / "out"
    assert not list(out.glob(".partial-*")), "the half-made track's staging folder is left behind"
    finished = midi_bytes(out)
    assert len(finished) == 2

    monkeypatch.setattr(export, "write_json_atomic", real)
    again = midi_only_batch(tmp_path, tiny_checkpoint, "out")
    assert [t.status for t in again.tracks[:2]] == ["skipped", "skipped"]
    assert {k: v for k, v in midi_bytes(out).items() if k in finished} == finished


def test_libsndfile_system_error_on_a_full_disk_says_no_space(tmp_path, monkeypatch):
    import numpy as np
    import soundfile

    from generator.audio import codecs
    from generator.files import NEARLY_FULL_BYTES, write_failure

    def full_disk(*args, **kwargs):
        raise soundfile.LibsndfileError(2, "Error writing: ")  # what libsndfile reports for ENOSPC

    monkeypatch.setattr(soundfile, "write", full_disk)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: type("Usage", (), {"free": NEARLY_FULL_BYTES // 2})())
    target = tmp_path / "a.wav"
    with pytest.raises(OSError) as info:
        codecs.write_wav(target, np.zeros((100, 2)), 48000, 24, np.random.default_rng(0))
    assert info.value.errno == errno.ENOSPC
    assert write_failure(info.value) == (f"{target}: cannot write: no space left on device: "
                                         "free space or choose another output folder")


def test_an_output_folder_that_cannot_be_created_is_one_error(tmp_path, tiny_checkpoint, no_audio_tools,
                                                              monkeypatch):
    # Tests run as root here, where chmod 0555 stops nothing: refuse the folder's creation instead.
    real_mkdir = os.mkdir
    locked = tmp_path / "locked"

    def refuse(path, *args, **kwargs):
        if Path(path).is_relative_to(locked):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(GeneratorError, match="permission denied: make the folder writable") as info:
        midi_only_batch(tmp_path, tiny_checkpoint, "locked/out")
    assert str(locked / "out") in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0555 folder; the test above covers it")
def test_a_read_only_output_folder_is_one_error(tmp_path, tiny_checkpoint):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        recipe = write_recipe(tmp_path, tiny_checkpoint, outputs=MIDI_ONLY, output=str(locked / "out"))
        assert_one_error_line(run_gen("batch", str(recipe), "--quiet"), 1, "permission denied")
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("where", ["a file", "under /proc"])
def test_an_output_path_that_is_no_folder_is_one_error(tmp_path, tiny_checkpoint, where):
    target = tmp_path / "taken" if where == "a file" else Path(f"/proc/gen-test-{os.getpid()}/out")
    if where == "a file":
        target.write_text("mine")
    recipe = write_recipe(tmp_path, tiny_checkpoint, outputs=MIDI_ONLY)
    before = files_under(tmp_path)
    # Refused up front as bad input (library/folders.py), before anything is written.
    assert_one_error_line(run_gen("batch", str(recipe), "--quiet", "--out", str(target)), 2, str(target))
    assert files_under(tmp_path) == before
    if where == "a file":
        assert target.read_text() == "mine"


def test_gen_sample_refuses_an_unwritable_out_before_sampling(tmp_path, tiny_checkpoint, monkeypatch):
    from typer.testing import CliRunner

    import generator.sampling.generate as generate
    from cli import app

    monkeypatch.setattr(generate, "generate", lambda *a, **k: pytest.fail("sampled before checking --out"))
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "file" / "x.mid", tmp_path, Path("/proc/gen-test/x.mid")):
        result = CliRunner().invoke(app, ["sample", "--genre", "jazz", "--seconds", "1", "--checkpoint",
                                          str(tiny_checkpoint), "--out", str(out)])
        assert isinstance(result.exception, InputError), result.output
        assert str(out) in str(result.exception) and "\n" not in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temp file left by the check
    line = assert_one_error_line(run_gen("sample", "--genre", "jazz", "--seconds", "1", "--checkpoint",
                                         str(tiny_checkpoint), "--out", str(tmp_path / "file" / "x.mid")), 2)
    assert "a file stands where a folder is needed" in line


# ---- damaged sidecars -----------------------------------------------------------------------

@pytest.mark.parametrize("constant", ["Infinity", "-Infinity", "NaN"])
def test_a_sidecar_with_non_finite_numbers_is_skipped_as_damaged(tmp_path, tiny_checkpoint, no_audio_tools,
                                                                 constant):
    from generator.library.sidecar import SidecarError, load_sidecar

    report = midi_only_batch(tmp_path, tiny_checkpoint, "out")
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    damaged = out / manifest["tracks"][report.tracks[0].track_id]["sidecar"]
    text = damaged.read_text()
    damaged.write_text(text.replace('"duration_s":', f'"duration_s":{constant},"was":', 1))
    with pytest.raises(SidecarError, match=constant.lstrip("-")):
        load_sidecar(damaged)
    result = run_gen("catalogue", str(out))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if str(damaged) in line]
    titles = parse(out / "index.html").titles
    assert report.tracks[0].title not in titles and report.tracks[1].title in titles


# ---- damaged checkpoints --------------------------------------------------------------------

def _payload() -> dict:
    path_model = MusicTransformer(ModelConfig.tiny())
    return {"format": "gen-music-transformer", "format_version": 1,
            "config": dataclasses.asdict(ModelConfig.tiny()),
            "vocab": {"size": path_model.config.vocab_size, "encoding": "default"},
            "model": {k: v.detach().clone() for k, v in path_model.state_dict().items()}, "meta": {"name": "t"}}


def _nan_weights(payload: dict) -> None:
    payload["model"]["head.bias"][3] = float("nan")


def _inf_weights(payload: dict) -> None:
    payload["model"]["embed.weight"][0, 0] = float("inf")


DAMAGE = {
    "config as a list": (lambda p: p.update(config=[1, 2, 3]), "'config' is a list"),
    "config missing": (lambda p: p.pop("config"), "'config' is missing"),
    "n_heads 0": (lambda p: p["config"].update(n_heads=0), "n_heads"),
    "n_heads a string": (lambda p: p["config"].update(n_heads="2"), "n_heads"),
    "d_model not a multiple": (lambda p: p["config"].update(n_heads=3), "multiple"),
    "huge d_model": (lambda p: p["config"].update(d_model=10**12), "d_model"),
    "huge layer count": (lambda p: p["config"].update(n_layers=10**9), "n_layers"),
    "dropout nan": (lambda p: p["config"].update(dropout=float("nan")), "dropout"),
    "meta as a list": (lambda p: p.update(meta=[1]), "'meta' is a list"),
    "weights missing": (lambda p: p.pop("model"), "'model'"),
    "weights a list": (lambda p: p.update(model=[1]), "'model'"),
    "a weight missing": (lambda p: p["model"].pop("head.bias"), "missing head.bias"),
    "a weight of the wrong shape": (lambda p: p["model"].update({"head.bias": torch.zeros(3)}), "wrong shape"),
    "a weight not a tensor": (lambda p: p["model"].update({"head.bias": [0.0]}), "wrong shape"),
    "an extra weight": (lambda p: p["model"].update({"x.weight": torch.zeros(1)}), "unexpected x.weight"),
    "bigger config than weights": (lambda p: p["config"].update(n_layers=3), "missing"),
    "NaN weights": (_nan_weights, "NaN or Inf"),
    "Inf weights": (_inf_weights, "NaN or Inf"),
    "vocab as a list": (lambda p: p.update(vocab=[411]), "encoding"),
    "format_version text": (lambda p: p.update(format_version="1"), "format_version"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_checkpoint_is_a_checkpoint_error_naming_the_file(tmp_path, damage):
    change, needle = DAMAGE[damage]
    payload = _payload()
    change(payload)
    path = tmp_path / "damaged.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("damage", ["config as a list", "n_heads 0", "meta as a list", "NaN weights"])
def test_gen_sample_with_a_damaged_checkpoint_exits_2_in_one_line(tmp_path, damage):
    payload = _payload()
    DAMAGE[damage][0](payload)
    path = tmp_path / "damaged.pt"
    torch.save(payload, path)
    result = run_gen("sample", "--genre", "jazz", "--seconds", "1", "--checkpoint", str(path),
                     "--out", str(tmp_path / "x.mid"))
    assert_one_error_line(result, 2, str(path))
    assert not (tmp_path / "x.mid").exists()


class _Pickled:
    pass


def test_a_pickled_checkpoint_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({**_payload(), "extra": _Pickled()}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a safe checkpoint: it holds pickled Python objects")
    assert "weights_only" in message and "re-save it with gen or torch.save of tensors only" in message
    assert "add_safe_globals" not in message and "\n" not in message


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)
_config_keys = st.sampled_from([f.name for f in dataclasses.fields(ModelConfig)] + ["other"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=st.one_of(_json_values, st.dictionaries(_config_keys, _json_values | st.integers(0, 64))),
       meta=_json_values, vocab=_json_values, drop=st.sets(st.sampled_from(["model", "vocab", "meta"])))
def test_any_damaged_checkpoint_content_is_a_checkpoint_error(tmp_path, config, meta, vocab, drop):
    payload = _payload()
    payload.update(config=config, meta=meta)
    if not isinstance(vocab, dict) or vocab:
        payload["vocab"] = vocab
    for key in drop:
        payload.pop(key)
    path = tmp_path / "fuzzed.pt"
    torch.save(payload, path)
    try:
        model, _ = load_checkpoint(path)
    except CheckpointError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:  # what loads is a working model
        assert model.config.vocab_size == model.encoding.vocab_size


def test_a_valid_checkpoint_still_loads(tmp_path):
    path = tmp_path / "ok.pt"
    model = MusicTransformer(ModelConfig.tiny())
    save_checkpoint(path, model, {"name": "ok"})
    loaded, meta = load_checkpoint(path)
    assert meta["name"] == "ok"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


# ---- sampling parameters at their documented extremes ---------------------------------------

@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-45])
def test_a_tiny_temperature_samples_greedily(temperature):
    from generator.sampling.filters import apply_temperature, filter_logits, sample_from_logits
    from generator.sampling.params import SamplingParams

    logits = torch.tensor([[0.5, 2.0, -1.0, float("-inf"), 1.9], [0.0, 0.0, -3.0, 1e-3, -1e-3]])
    scaled = apply_temperature(logits, temperature)
    assert not torch.isnan(scaled).any()
    assert scaled.argmax(-1).tolist() == [1, 3]
    for sber in (False, True):
        params = SamplingParams.plain(temperature=temperature, topp_temperature=temperature, top_p=0.9,
                                      sber_compatible=sber)
        padded = torch.nn.functional.pad(logits, (60, 411 - 65), value=-5.0)  # NOTE_ON 60..64: in Sber's range
        filtered = filter_logits(padded, params)
        draws = sample_from_logits(filtered.repeat_interleave(4, dim=0), torch.tensor([0.0, 0.3, 0.7, 0.999] * 2))
        assert draws.tolist() == [61] * 4 + [63] * 4


def test_temperature_one_and_moderate_values_are_unchanged():
    from generator.sampling.filters import apply_temperature

    logits = torch.randn(3, 411)
    assert apply_temperature(logits, 1.0) is logits
    assert torch.equal(apply_temperature(logits, 0.5), logits / 0.5)


def _extreme(name: str):
    from generator.sampling.params import field_spec

    spec = field_spec(name)
    lo = 5e-324 if spec.lo_open and not spec.integer else spec.lo + (1 if spec.lo_open else 0)
    if spec.integer:
        return st.sampled_from([int(lo), int(spec.hi)]) | st.integers(int(lo), int(spec.hi))
    return st.sampled_from([lo, spec.hi]) | st.floats(lo, spec.hi)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return MusicTransformer(ModelConfig.tiny()).eval()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sampling_parameters_at_their_documented_extremes_sample(tiny_model, data):
    from generator.sampling.generate import GenerationRequest, generate
    from generator.sampling.params import SamplingParams, drawn_fields, guidance_conflict

    values = {f.name: data.draw(_extreme(f.name), label=f.name) for f in drawn_fields()}
    values["beam_width"] = data.draw(st.sampled_from([1, 2]), label="beam")  # wide beams are slow, not wrong
    values["genre_guidance"] = 0.0  # needs a model trained with genre dropout
    sber = data.draw(st.booleans(), label="sber_compatible")
    if guidance_conflict(values["genre_guidance"], values["beam_width"], sber):
        return
    params = SamplingParams(**values, sber_compatible=sber)
    (result,) = generate(tiny_model, [GenerationRequest("jazz", 1, 0.3, params)], batch_size=1, time_budget_s=5)
    assert result.ids and all(0 <= t < tiny_model.config.vocab_size for t in result.ids)
