"""Self-describing checkpoints (ours) and Sber-format state_dicts: save, read, load.

A checkpoint stores its config, so it rebuilds its own model. Sber's released
state_dicts (Sber AI music-composer) load too: their layout is detected by key names and their
config inferred from tensor shapes.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, BinaryIO

import torch

from generator.errors import CheckpointError
from generator.files import FileRefused, atomic_path, format_bytes, open_regular
from generator.model.transformer import ModelConfig, MusicTransformer
from generator.tokens.encoding import SBER, encoding_of

log = logging.getLogger(__name__)

FORMAT = "gen-music-transformer"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 2 << 30  # 2 GiB: the shipped model is ~15 MB, Sber's ~400 MB



def save_checkpoint(path: str | Path, model: MusicTransformer, meta: dict, extra: dict | None = None) -> None:
    """Write {format, config, vocab, model, meta} atomically. `extra` (e.g. training state) rides along."""
    path = Path(path)
    config = model.config
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": asdict(config),
        "vocab": {"size": config.vocab_size, "encoding": model.encoding.name},
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta),
    }
    if extra:
        payload.update(extra)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """The raw checkpoint dict (ours or a Sber state_dict); CheckpointError if missing/corrupt."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; train one with `gen train` or pass an existing file")
    try:
        handle = _open_checkpoint(path)
    except OSError as error:
        raise CheckpointError(f"{path}: checkpoint cannot be read ({error.strerror}); check its permissions") from None
    try:
        with handle:
            data = torch.load(handle, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        if "Weights only load failed" in str(error) or "WeightsUnpickler" in str(error):
            found = re.search(r"GLOBAL (\S+)", str(error))
            held = f" ({found.group(1)})" if found else ""
            raise CheckpointError(f"{path}: not a safe checkpoint: it holds pickled Python objects{held}, which "
                                  "gen never loads (weights_only); re-save it with gen or torch.save of "
                                  "tensors only") from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_reason(error)}); "
                              "re-download or re-train it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(data).__name__}; not a model checkpoint")
    return data


def _open_checkpoint(path: Path) -> BinaryIO:
    """The checkpoint opened for torch.load: a regular file (never a FIFO or a device) of at most
    MAX_CHECKPOINT_BYTES, else CheckpointError naming the file and the limit."""
    try:
        fd = open_regular(path, "checkpoint")
    except FileRefused as refused:
        raise CheckpointError(f"{path}: the checkpoint {refused.problem}; pass a .pt file") from None
    size = os.fstat(fd).st_size
    if size > MAX_CHECKPOINT_BYTES:
        os.close(fd)
        raise CheckpointError(f"{path}: {size / (1 << 30):.1f} GiB, larger than the limit of "
                              f"{format_bytes(MAX_CHECKPOINT_BYTES)} for a checkpoint; pass a model checkpoint")
    return os.fdopen(fd, "rb")


def _reason(error: Exception) -> str:
    """The informative line of a torch.load failure (its weights-only advice is noise here)."""
    text = str(error).strip()
    match = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    lines = [match.group(1)] if match else text.splitlines()
    return (lines[0].strip() if lines and lines[0].strip() else type(error).__name__)[:120]


def load_checkpoint(path: str | Path, map_location: Any = "cpu", *, n_heads: int | None = None
                    ) -> tuple[MusicTransformer, dict]:
    """Load our format or a Sber-format state_dict -> (model in eval mode, meta).

    `n_heads` overrides the head count of a Sber state_dict without relative attention (its
    shapes cannot tell; the default is Sber's 16 heads for d_model 1024).
    """
    data = read_checkpoint(path, map_location)
    if data.get("format") == FORMAT:
        model, meta = _from_ours(path, data)
    elif "embedding.weight" in data and "Wout.weight" in data:
        model, meta = _from_sber(path, data, n_heads)
    else:
        keys = ", ".join(list(data)[:4])
        raise CheckpointError(f"{path}: unknown checkpoint format (keys {keys}); expected a `gen train` "
                              "checkpoint or a Sber music-composer state_dict")
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    return model.eval(), meta


def _from_ours(path: Path, data: dict) -> tuple[MusicTransformer, dict]:
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {_show(version)} unsupported (this build reads "
                              f"{FORMAT_VERSION}); use a matching gen version")
    try:
        encoding = encoding_of(data)  # maps the legacy name "seed" to "sber"
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    meta = {} if data.get("meta") is None else data["meta"]
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: 'meta' is a {type(meta).__name__}, not a mapping; the file is damaged")
    config = _config(path, data.get("config"), encoding.vocab_size)
    model = _fitted(path, config, encoding, data.get("model"))
    meta = dict(meta)
    meta.setdefault("vocab", {"size": config.vocab_size, "encoding": encoding.name})
    return model, meta


# Bounds of a config a checkpoint may ask for: far above any model gen trains or Sber released, and
# low enough that building the (not yet loaded) model cannot exhaust the memory.
MAX_LAYERS = 256
MAX_WIDTH = 1 << 16
MAX_POSITION_TABLE = 1 << 26  # max_seq * d_model: the absolute-position table is computed, not stored


def _show(value: Any) -> str:
    return repr(value)[:60]


def _config(path: Path, raw: Any, vocab_size: int) -> ModelConfig:
    """A ModelConfig from a checkpoint's `config`, every value checked for its type and range."""
    if not isinstance(raw, dict):
        what = "missing" if raw is None else f"a {type(raw).__name__}, not a mapping"
        raise CheckpointError(f"{path}: 'config' is {what}; the file is damaged")
    values = {}
    for f in fields(ModelConfig):
        if f.name not in raw:
            continue  # older checkpoints lack newer keys; their defaults are what those builds meant
        value, kind = raw[f.name], type(f.default)
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            high = MAX_LAYERS if f.name == "n_layers" else MAX_WIDTH
            ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high
        else:  # dropout
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
        if not ok:
            raise CheckpointError(f"{path}: config '{f.name}' = {_show(value)} is not a valid {kind.__name__} "
                                  "for a model; the file is damaged")
        values[f.name] = value
    try:
        config = ModelConfig(**values)
    except ValueError as error:
        raise CheckpointError(f"{path}: config does not describe a model ({error}); the file is damaged") from None
    if config.vocab_size != vocab_size:
        raise CheckpointError(f"{path}: config vocab_size {config.vocab_size} does not fit the stored "
                              f"encoding ({vocab_size} ids); the file is damaged")
    if config.max_seq * config.d_model > MAX_POSITION_TABLE:
        raise CheckpointError(f"{path}: config max_seq {config.max_seq} x d_model {config.d_model} is beyond "
                              "any model gen can run; the file is damaged")
    return config


def _fitted(path: Path, config: ModelConfig, encoding, weights: Any) -> MusicTransformer:
    """The model with `weights` loaded, after checking that they fit `config` (on the meta device, so a
    damaged config allocates nothing) and hold only finite numbers."""
    if not isinstance(weights, dict) or not weights:
        raise CheckpointError(f"{path}: 'model' (the weights) is missing or not a mapping; the file is damaged")
    with torch.device("meta"):
        expected = MusicTransformer(config, encoding).state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    wrong = [k for k in expected if k in weights and (not isinstance(weights[k], torch.Tensor)
                                                       or weights[k].shape != expected[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(f"{label} {', '.join(map(str, keys[:3]))}" for label, keys in
                           (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys)
        raise CheckpointError(f"{path}: the weights do not fit the config ({detail[:160]}); the file is damaged")
    _check_finite(path, weights)
    model = MusicTransformer(config, encoding)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: config/weights do not match ({str(error).splitlines()[0][:120]}); "
                              "the file is damaged") from None
    return model


def _check_finite(path: Path, weights: dict) -> None:
    """Refuse NaN or Inf weights: such a model samples noise and would write random MIDI."""
    for key, tensor in weights.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: weight {key} holds NaN or Inf values (a diverged or damaged "
                                  "model); use an earlier checkpoint or re-train")


_SBER_RENAMES = [
    (r"^embedding\.", "embed."),
    (r"^transformer\.encoder\.layers\.(\d+)\.self_attn\.in_proj_weight$", r"blocks.\1.attn.qkv.weight"),
    (r"^transformer\.encoder\.layers\.(\d+)\.self_attn\.in_proj_bias$", r"blocks.\1.attn.qkv.bias"),
    (r"^transformer\.encoder\.layers\.(\d+)\.self_attn\.Er$", r"blocks.\1.attn.er"),
    (r"^transformer\.encoder\.layers\.(\d+)\.self_attn\.out_proj\.", r"blocks.\1.attn.proj."),
    (r"^transformer\.encoder\.layers\.(\d+)\.linear1\.", r"blocks.\1.ff1."),
    (r"^transformer\.encoder\.layers\.(\d+)\.linear2\.", r"blocks.\1.ff2."),
    (r"^transformer\.encoder\.layers\.(\d+)\.norm([12])\.", r"blocks.\1.norm\2."),
    (r"^transformer\.encoder\.norm\.", "norm."),
    (r"^Wout\.", "head."),
]


def sber_config(state: dict, n_heads: int | None = None) -> ModelConfig:
    """Infer the Sber architecture from a state_dict's shapes."""
    vocab_size, d_model = state["embedding.weight"].shape
    layers = {int(m.group(1)) for k in state if (m := re.match(r"transformer\.encoder\.layers\.(\d+)\.", k))}
    er = state.get("transformer.encoder.layers.0.self_attn.Er")
    if er is not None:
        inferred = d_model // er.shape[-1]
        if n_heads is not None and n_heads != inferred:
            raise ValueError(f"n_heads {n_heads} contradicts Er head_dim {er.shape[-1]} (n_heads {inferred})")
        n_heads = inferred
    elif n_heads is None:
        if d_model != 1024:
            raise ValueError(f"cannot infer n_heads for d_model {d_model} without Er; pass n_heads")
        n_heads = 16
    max_seq = state["positional_encoding.pe"].shape[0] if "positional_encoding.pe" in state else er.shape[0]
    d_ff = state["transformer.encoder.layers.0.linear1.weight"].shape[0]
    return ModelConfig.sber(d_model=d_model, n_layers=len(layers), n_heads=n_heads, d_ff=d_ff,
                            max_seq=max_seq, vocab_size=vocab_size, relative=er is not None)


def _from_sber(path: Path, state: dict, n_heads: int | None) -> tuple[MusicTransformer, dict]:
    _check_finite(path, state)
    try:
        config = sber_config(state, n_heads)
        renamed = {}
        for key, value in state.items():
            if key == "positional_encoding.pe":
                continue
            new = key
            for pattern, replacement in _SBER_RENAMES:
                new = re.sub(pattern, replacement, new)
            renamed[new] = value
        model = MusicTransformer(config, SBER)
        model.load_state_dict(renamed)
        if "positional_encoding.pe" in state:  # use the stored table bit for bit
            model.pe.copy_(state["positional_encoding.pe"].reshape(config.max_seq, config.d_model))
    except (KeyError, ValueError, RuntimeError, AttributeError, TypeError, IndexError, ZeroDivisionError) as error:
        raise CheckpointError(f"{path}: Sber-format state_dict does not fit the Sber architecture "
                              f"({str(error).splitlines()[0][:120]}); pass n_heads or check the file") from None
    log.info("%s: Sber-format state_dict, inferred %s", path, config.describe())
    meta = {"source": "Sber music-composer state_dict", "vocab": {"size": config.vocab_size, "encoding": SBER.name}}
    return model, meta

