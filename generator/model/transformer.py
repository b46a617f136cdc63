"""MusicTransformer and ModelConfig (checkpoint I/O is in checkpoint.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from generator.model.attention import KVCache, RelativeSelfAttention
from generator.tokens import vocab
from generator.tokens.encoding import DEFAULT, Encoding


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
    """Decoder-only transformer over token ids: (B, T) -> logits (B, T, V).

    `encoding` is what its ids mean (DEFAULT: ours); its vocabulary is the model's.
    """

    def __init__(self, config: ModelConfig, encoding: Encoding = DEFAULT) -> None:
        super().__init__()
        if config.vocab_size != encoding.vocab_size:
            raise ValueError(f"vocab_size {config.vocab_size} does not fit the {encoding.name!r} encoding "
                             f"({encoding.vocab_size} ids)")
        self.config = config
        self.encoding = encoding
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
