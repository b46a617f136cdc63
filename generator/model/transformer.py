"""MusicTransformer and ModelConfig; self-describing checkpoints (ours) and Sber-format state_dicts.

A checkpoint stores its config, so it rebuilds its own model. Sber's released
state_dicts (Sber AI music-composer) load too: their layout is detected by key names and their
config inferred from tensor shapes.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from generator.tokens import vocab
from generator.model.attention import KVCache, RelativeSelfAttention
from generator.errors import CheckpointError
from generator.files import atomic_path

log = logging.getLogger(__name__)

FORMAT = "gen-music-transformer"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = vocab.VOCAB_SIZE
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 256
    d_ff: int = 1024
    max_seq: int = 512
    dropout: float = 0.1
    norm_first: bool = True  # pre-LN (ours) vs post-LN + final LN (Sber)
    absolute_pe: bool = False  # sinusoidal absolute positions added to the embedding (Sber)
    relative: bool = True  # relative attention logits (skew)
    tie_embeddings: bool = True
    shared_er: bool = False  # one Er per layer shared by all heads (Sber) vs one per head
    # Multiply embeddings by sqrt(d_model) before adding absolute PE (Vaswani et al.). With our
    # std-0.02 init the unit-amplitude sinusoids otherwise drown the tokens (Sber does not scale).
    scale_embedding: bool = False
    # Trained on some windows with NO_GENRE in place of the genre token (gen train --genre-dropout),
    # so it also predicts unconditioned: what classifier-free genre guidance contrasts with.
    unconditioned: bool = False

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")

    @classmethod
    def tiny(cls) -> ModelConfig:
        """A few-thousand-parameter model for fast tests."""
        return cls(n_layers=2, n_heads=2, d_model=16, d_ff=32, max_seq=64, dropout=0.0)

    @classmethod
    def small(cls) -> ModelConfig:
        """The shipped model, sized to train on a 2-core CPU in about an hour."""
        return cls()

    @classmethod
    def sber(cls, d_model: int, n_layers: int, n_heads: int, d_ff: int, max_seq: int,
             vocab_size: int = vocab.SBER_VOCAB_SIZE, relative: bool = True) -> ModelConfig:
        """Sber's architecture (its 103M release: 1024, 12, 16, 2048, 2048)."""
        return cls(vocab_size=vocab_size, n_layers=n_layers, n_heads=n_heads, d_model=d_model,
                   d_ff=d_ff, max_seq=max_seq, dropout=0.1, norm_first=False, absolute_pe=True,
                   relative=relative, tie_embeddings=False, shared_er=True)

    def describe(self) -> str:
        position = " + ".join(
            name for name, on in (("absolute PE", self.absolute_pe), ("relative attention", self.relative)) if on
        ) or "no positions"
        return (f"{self.n_layers} layers, d_model {self.d_model}, {self.n_heads} heads, d_ff {self.d_ff}, "
                f"max_seq {self.max_seq}, {'pre' if self.norm_first else 'post'}-LN, {position}, "
                f"vocab {self.vocab_size}" + (", also unconditioned (genre guidance)" if self.unconditioned else ""))


def sinusoidal_positions(length: int, d_model: int) -> Tensor:
    """(length, d_model) sin on even, cos on odd dimensions (Vaswani et al.; Sber's formula)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)
    return pe


class Block(nn.Module):
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.norm_first = c.norm_first
        self.attn = RelativeSelfAttention(c.d_model, c.n_heads, c.max_seq, c.dropout, c.relative, c.shared_er)
        self.norm1 = nn.LayerNorm(c.d_model)
        self.norm2 = nn.LayerNorm(c.d_model)
        self.ff1 = nn.Linear(c.d_model, c.d_ff)
        self.ff2 = nn.Linear(c.d_ff, c.d_model)
        self.drop = nn.Dropout(c.dropout)

    def _ff(self, x: Tensor) -> Tensor:
        return self.ff2(self.drop(torch.relu(self.ff1(x))))

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        attend = self.attn if cache is None else (lambda h: self.attn.step(h, cache, layer))
        if self.norm_first:
            x = x + self.drop(attend(self.norm1(x)))
            return x + self.drop(self._ff(self.norm2(x)))
        x = self.norm1(x + self.drop(attend(x)))
        return self.norm2(x + self.drop(self._ff(x)))


class MusicTransformer(nn.Module):
    """Decoder-only transformer over token ids: (B, T) -> logits (B, T, V)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        if c.absolute_pe:
            self.register_buffer("pe", sinusoidal_positions(c.max_seq, c.d_model), persistent=False)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)
        self.apply(self._init)
        if c.tie_embeddings:
            self.head.weight = self.embed.weight

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, ids: Tensor, start: int) -> Tensor:
        x = self.embed(ids)  # (B, T, D)
        if self.config.scale_embedding:
            x = x * math.sqrt(self.config.d_model)
        if self.config.absolute_pe:
            end = start + ids.shape[1]
            if end > self.pe.shape[0]:
                raise ValueError(f"position {end} exceeds the {self.pe.shape[0]} absolute positions")
            x = x + self.pe[start:end]
        return self.drop(x)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, T) -> logits (B, T, V); causal."""
        x = self._embed(ids, 0)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_layers)

    def step(self, ids: Tensor, cache: KVCache) -> Tensor:
        """ids (B, T_new) following the cached tokens -> logits (B, T_new, V); appends to the cache."""
        x = self._embed(ids, cache.length)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        cache.advance(ids.shape[1])
        return self.head(self.norm(x))


# --- checkpoints -------------------------------------------------------------------------------

def save_checkpoint(path: str | Path, model: MusicTransformer, meta: dict, extra: dict | None = None) -> None:
    """Write {format, config, vocab, model, meta} atomically. `extra` (e.g. training state) rides along."""
    path = Path(path)
    config = model.config
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": asdict(config),
        "vocab": {"size": config.vocab_size,
                  "encoding": "seed" if config.vocab_size == vocab.SBER_VOCAB_SIZE else "default"},
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
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; train one with `gen train` or pass an existing file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_reason(error)}); "
                              "re-download or re-train it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(data).__name__}; not a model checkpoint")
    return data


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
        raise CheckpointError(f"{path}: format_version {version} unsupported (this build reads "
                              f"{FORMAT_VERSION}); use a matching gen version")
    try:
        known = {f.name for f in fields(ModelConfig)}
        config = ModelConfig(**{k: v for k, v in data["config"].items() if k in known})
        model = MusicTransformer(config)
        model.load_state_dict(data["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: config/weights do not match ({str(error).splitlines()[0][:120]}); "
                              "the file is damaged") from None
    meta = dict(data.get("meta") or {})
    meta.setdefault("vocab", data.get("vocab", {}))
    return model, meta


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
        model = MusicTransformer(config)
        model.load_state_dict(renamed)
        if "positional_encoding.pe" in state:  # use the stored table bit for bit
            model.pe.copy_(state["positional_encoding.pe"].reshape(config.max_seq, config.d_model))
    except (KeyError, ValueError, RuntimeError, AttributeError) as error:
        raise CheckpointError(f"{path}: Sber-format state_dict does not fit the Sber architecture "
                              f"({str(error).splitlines()[0][:120]}); pass n_heads or check the file") from None
    log.info("%s: Sber-format state_dict, inferred %s", path, config.describe())
    meta = {"source": "Sber music-composer state_dict", "vocab": {"size": config.vocab_size, "encoding": "seed"}}
    return model, meta

