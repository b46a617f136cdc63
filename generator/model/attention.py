"""Causal self-attention with relative position logits (Huang et al. 2018) and a KV cache.

The relative term for query i and key j <= i is q_i . Er[M - 1 - (i - j)], where Er (M x head_dim)
holds one learned vector per distance 0..M-1 (stored reversed, as in the Sber system). Full-sequence
attention computes it with the memory-efficient "skew" (pad + reshape + slice of Q Er^T), which
needs O(L D) extra memory instead of the O(L^2 D) of gathering one Er row per (i, j) pair.
In step mode (new queries over a cache) it is a gather from a slice of Q Er^T, no skew needed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def skew(qe: Tensor) -> Tensor:
    """(..., L, L) with column c = distance L-1-c  ->  (..., L, L) Srel[i, j] for j <= i.

    Entries above the diagonal are meaningless (the causal mask removes them).
    """
    *lead, length, _ = qe.shape
    padded = F.pad(qe, (1, 0))  # (..., L, L+1)
    padded = padded.reshape(*lead, length + 1, length)
    return padded[..., 1:, :]  # (..., L, L)


def relative_logits(q: Tensor, er: Tensor) -> Tensor:
    """Srel with the skew. q (B, H, L, hd); er (L, hd) shared or (H, L, hd) per head, the last L rows."""
    qe = q @ er.transpose(-1, -2)  # (B, H, L, L): column c is distance L-1-c
    return skew(qe)


def relative_logits_naive(q: Tensor, er: Tensor) -> Tensor:
    """Reference: Srel[i, j] = q_i . er[L-1-(i-j)] for j <= i, 0 above the diagonal. O(L^2 D) memory."""
    length = q.shape[-2]
    i = torch.arange(length).unsqueeze(1)
    j = torch.arange(length).unsqueeze(0)
    index = (length - 1 - (i - j)).clamp(min=0, max=length - 1)  # (L, L)
    rows = er[..., index, :]  # (L, L, hd) or (H, L, L, hd)
    srel = (q.unsqueeze(-2) * rows).sum(-1)  # (B, H, L, L)
    return srel.masked_fill(j > i, 0.0)


def _q_er(q: Tensor, er: Tensor) -> Tensor:
    """Q Er^T: q (B, H, T, hd) with er (total, hd) shared or (H, total, hd) per head -> (B, H, T, total).

    Per-head Er runs as one bmm over the heads: the broadcasting `q @ er.transpose(-1, -2)` expands
    Er over the batch and took 600 us per layer at batch 8 on the 2-core CPU, against 28 us here.
    """
    if er.dim() == 2:
        return q @ er.transpose(0, 1)
    b, h, t, d = q.shape
    qe = torch.bmm(q.transpose(0, 1).reshape(h, b * t, d), er.transpose(1, 2))  # (H, B*T, total)
    return qe.view(h, b, t, -1).transpose(0, 1)


def relative_logits_step(q: Tensor, er: Tensor, total: int) -> Tensor:
    """Srel for the last T queries of a length-`total` sequence over all `total` keys.

    q (B, H, T, hd); er is the last `total` rows of Er. Query t sits at absolute position
    total-T+t; key j gets column total-1-(i-j) of Q Er^T, clamped above the diagonal.
    """
    n_new = q.shape[-2]
    qe = _q_er(q, er)  # (B, H, T, total)
    if n_new == 1:  # the usual decoding step: column j already is distance total-1-j
        return qe
    t = torch.arange(n_new, device=q.device).unsqueeze(1)
    j = torch.arange(total, device=q.device).unsqueeze(0)
    index = (j + (n_new - 1 - t)).clamp(max=total - 1)  # (T, total)
    return qe.gather(-1, index.expand(*qe.shape[:-2], n_new, total))


def causal_mask(n_new: int, total: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Additive mask (T, total): 0 where key j <= query position total-T+t, -inf after."""
    t = torch.arange(n_new, device=device).unsqueeze(1)
    j = torch.arange(total, device=device).unsqueeze(0)
    mask = torch.zeros(n_new, total, device=device, dtype=dtype)
    return mask.masked_fill(j > t + (total - n_new), float("-inf"))


class KVCache:
    """Per-layer keys and values (B, H, T, hd) of the tokens seen so far.

    Buffers grow by doubling so a decoding step appends in place instead of copying the cache.
    `length` counts cached tokens; the model advances it after every layer has appended.
    """

    def __init__(self, n_layers: int) -> None:
        self._keys: list[Tensor | None] = [None] * n_layers
        self._values: list[Tensor | None] = [None] * n_layers
        self.length = 0

    @property
    def n_layers(self) -> int:
        return len(self._keys)

    @property
    def batch_size(self) -> int | None:
        return None if self._keys[0] is None else self._keys[0].shape[0]

    def keys(self, layer: int) -> Tensor:
        """(B, H, length, hd) view of one layer's keys."""
        buffer = self._keys[layer]
        assert buffer is not None, "empty cache"
        return buffer[:, :, : self.length]

    def values(self, layer: int) -> Tensor:
        buffer = self._values[layer]
        assert buffer is not None, "empty cache"
        return buffer[:, :, : self.length]

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k, v (B, H, T, hd) after the cached tokens; return all keys/values (B, H, length+T, hd)."""
        end = self.length + k.shape[2]
        buffer_k, buffer_v = self._keys[layer], self._values[layer]
        if buffer_k is None or buffer_k.shape[2] < end:
            capacity = max(end, 64 if buffer_k is None else 2 * buffer_k.shape[2])
            new_k = k.new_empty(k.shape[0], k.shape[1], capacity, k.shape[3])
            new_v = v.new_empty(v.shape[0], v.shape[1], capacity, v.shape[3])
            if buffer_k is not None:
                new_k[:, :, : self.length] = buffer_k[:, :, : self.length]
                new_v[:, :, : self.length] = buffer_v[:, :, : self.length]
            buffer_k, buffer_v = new_k, new_v
            self._keys[layer], self._values[layer] = buffer_k, buffer_v
        buffer_k[:, :, self.length : end] = k
        buffer_v[:, :, self.length : end] = v
        return buffer_k[:, :, :end], buffer_v[:, :, :end]

    def advance(self, n_tokens: int) -> None:
        """Called by the model once every layer holds the new tokens."""
        self.length += n_tokens

    def reorder(self, index: Tensor) -> None:
        """Keep/reorder batch rows (beam search): row b becomes old row index[b]."""
        for layer in range(self.n_layers):
            if self._keys[layer] is not None:
                self._keys[layer] = self._keys[layer].index_select(0, index)
                self._values[layer] = self._values[layer].index_select(0, index)

    def crop(self, keep_last: int) -> None:
        """Keep only the last `keep_last` tokens: a sliding window for decoding past max_seq.

        The kept keys still carry what they saw of the dropped context (as in Transformer-XL
        memory). Meant for relative-position models; with absolute positions new tokens would
        reuse positions already taken.
        """
        if keep_last >= self.length:
            return
        drop = self.length - keep_last
        for layer in range(self.n_layers):
            if self._keys[layer] is not None:
                self._keys[layer] = self._keys[layer][:, :, drop : self.length].clone()
                self._values[layer] = self._values[layer][:, :, drop : self.length].clone()
        self.length = keep_last


class RelativeSelfAttention(nn.Module):
    """Multi-head causal self-attention; fused q/k/v projection; optional relative logits."""

    def __init__(
        self, d_model: int, n_heads: int, max_seq: int, dropout: float, relative: bool, shared_er: bool
    ) -> None:
        super().__init__()
        assert d_model % n_heads == 0, "d_model must be a multiple of n_heads"
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.max_seq = max_seq
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.er: nn.Parameter | None = None
        if relative:
            shape = (max_seq, self.head_dim) if shared_er else (n_heads, max_seq, self.head_dim)
            self.er = nn.Parameter(torch.randn(shape) * 0.02)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        batch, length, _ = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, L, hd)
        return q, k, v

    def _merge(self, y: Tensor) -> Tensor:
        batch, _, length, _ = y.shape
        return self.proj(y.transpose(1, 2).reshape(batch, length, -1))  # (B, L, D)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, D) -> (B, L, D), causal."""
        q, k, v = self._split(x)
        length = x.shape[1]
        p = self.dropout if self.training else 0.0
        if self.er is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            return self._merge(y)
        if length > self.max_seq:
            raise ValueError(f"sequence of {length} tokens exceeds max_seq {self.max_seq}")
        srel = relative_logits(q, self.er[..., self.max_seq - length :, :])  # (B, H, L, L)
        bias = srel / math.sqrt(self.head_dim) + causal_mask(length, length, x.device, srel.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        return self._merge(y)

    def step(self, x: Tensor, cache: KVCache, layer: int) -> Tensor:
        """x (B, T, D) new tokens after cache.length cached ones -> (B, T, D)."""
        q, k, v = self._split(x)
        k_all, v_all = cache.append(layer, k, v)
        n_new, total = x.shape[1], k_all.shape[2]
        mask = causal_mask(n_new, total, x.device, q.dtype) if n_new > 1 else None
        if self.er is not None:
            if total > self.max_seq:
                raise ValueError(f"{total} tokens exceed max_seq {self.max_seq}; crop the cache")
            srel = relative_logits_step(q, self.er[..., self.max_seq - total :, :], total) / math.sqrt(self.head_dim)
            mask = srel if mask is None else mask + srel
        y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask)
        return self._merge(y)
