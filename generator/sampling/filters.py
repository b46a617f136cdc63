"""Logit filters: pure `logits (B, V) -> logits (B, V)` functions, and the two orders they run in.

A filtered-out token gets -inf; the softmax of what comes out is the sampling distribution.
`filter_logits` is our order; `sber_filter_logits` reproduces Sber's order exactly
(docs/sampling.md gives both, step by step). The repetition-penalty table is per row: a row's
notes never lower another row's multipliers (Sber's batch version leaks them).
"""

from __future__ import annotations

import torch

from generator.sampling.params import SamplingParams
from generator.tokens import vocab
from generator.tokens.encoding import DEFAULT, Encoding

NEG_INF = float("-inf")
SBER_PITCH_RANGE = (21, 96)  # Sber's whitelist (piano range as its encoder keeps it)


# ---- the filters ------------------------------------------------------------------------------

def guide(conditioned: torch.Tensor, unconditioned: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance: (B, V) logits pushed away from the unconditioned ones by
    weight (B,) times their difference. Raw logits and log-probabilities give the same softmax."""
    return conditioned + weight[:, None] * (conditioned - unconditioned)


def fold_shifts(logits: torch.Tensor, allowed: torch.Tensor, first: int, count: int) -> torch.Tensor:
    """(B, V) logits whose disallowed time shifts (ids first..first+count-1, a shift of k steps at
    first+k-1) hand their probability to the next allowed shift, the next grid position (a shift
    past every allowed one, e.g. across a bar line, to the longest allowed one): the time the model
    means to let pass is quantised to the grid, as a DAW quantises a played note, instead of being
    dropped. Dropped, it went to the note events, and a model asked for a grid it rarely plays
    (calm in eighths only) wrote notes without moving time until the token cap closed the track.
    Rows with no allowed shift are left as they are; the probabilities of the other tokens do not change."""
    shifts = logits[:, first:first + count]  # (B, n)
    ok = allowed[:, first:first + count]
    steps = torch.arange(count, device=logits.device).expand_as(shifts)
    at_or_after = torch.where(ok, steps, count).flip(-1).cummin(-1).values.flip(-1)  # next allowed index, or count
    longest = torch.where(ok, steps, -1).max(-1, keepdim=True).values  # (B, 1), -1: none allowed
    target = torch.where(at_or_after < count, at_or_after, longest)
    top = shifts.max(-1, keepdim=True).values
    mass = torch.exp(shifts - top).masked_fill(target < 0, 0.0)
    folded = torch.zeros_like(shifts).scatter_add_(-1, target.clamp(min=0), mass)
    out = logits.clone()
    out[:, first:first + count] = torch.where(ok, torch.log(folded) + top, shifts)
    return out


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / temperature (B, V). A temperature so small that the division overflows (1e-300 is
    0 in float32) gives the limit of the softmax instead: greedy, the row's largest logits kept."""
    if temperature == 1.0:
        return logits
    scaled = logits / temperature
    overflow = (~torch.isfinite(scaled) & torch.isfinite(logits)).any(-1, keepdim=True)  # (B, 1)
    if not bool(overflow.any()):
        return scaled
    best = logits.max(-1, keepdim=True).values
    greedy = torch.zeros_like(logits).masked_fill(logits < best, NEG_INF)
    return torch.where(overflow, greedy, scaled)


def top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (ties at the k-th value are all kept); k=0: off."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p(logits: torch.Tensor, p: float, *, topp_temperature: float = 1.0,
          keep_crossing: bool = True) -> torch.Tensor:
    """Nucleus filter on softmax(logits / topp_temperature), most likely first.

    keep_crossing=True (ours): keep each token whose preceding mass is < p, so the token that
    takes the sum to p is kept. False (Sber): keep tokens while the cumulative sum, the
    token's own mass included, is strictly below p, so the crossing token is dropped.
    """
    if p >= 1.0:
        return logits
    probs = torch.softmax(apply_temperature(logits, topp_temperature), dim=-1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)  # (B, V)
    cum = sorted_p.cumsum(-1)
    keep_sorted = (cum - sorted_p < p) if keep_crossing else (cum < p)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, NEG_INF)


def at_least_k(filtered: torch.Tensor, reference: torch.Tensor, k: int) -> torch.Tensor:
    """Put the k most likely tokens of `reference` back into `filtered` with their reference logits."""
    idx = torch.topk(reference, min(k, reference.shape[-1]), dim=-1).indices  # (B, k)
    restored = filtered.clone()
    restored.scatter_(-1, idx, reference.gather(-1, idx))
    return restored


def pitch_range_mask(logits: torch.Tensor, lo: int, hi: int, *, note_off_too: bool = False) -> torch.Tensor:
    """Mask NOTE_ON (and with note_off_too, NOTE_OFF) of pitches outside [lo, hi]."""
    out = logits.clone()
    for base in (vocab.NOTE_ON, vocab.NOTE_OFF) if note_off_too else (vocab.NOTE_ON,):
        out[..., base:base + lo] = NEG_INF
        out[..., base + hi + 1:base + vocab.N_PITCHES] = NEG_INF
    return out


def repetition_penalty(logits: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Multiply each NOTE_ON(p) probability by table[:, p] (B, 128): add log(table) to its logit."""
    out = logits.clone()
    out[..., vocab.NOTE_ON:vocab.NOTE_ON + vocab.N_PITCHES] += torch.log(table)  # log 0 = -inf
    return out


def new_rp_table(batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.ones(batch, vocab.N_PITCHES, device=device)


def rp_update(table: torch.Tensor, tokens: torch.Tensor, penalty: float, restore_speed: float,
              *, encoding: Encoding = DEFAULT) -> torch.Tensor:
    """The table after each row emitted tokens[b]: a NOTE_ON(p) lowers table[b, p] by `penalty`;
    a TIME_SHIFT of s seconds raises all of row b by s * restore_speed; clamped to [0, 1].

    The seconds of a token are the encoding's (`Encoding.penalty_seconds`): the Sber encoding
    counts a shift of k+1 steps as k/100 s and any token from END up as 1 s, as Sber's update
    does. A row never touches other rows (Sber's batch version does).
    """
    tokens = tokens.to(table.device).long()  # (B,)
    seconds = encoding.penalty_seconds(tokens)
    out = table + (seconds * restore_speed)[:, None]
    is_note = tokens < vocab.NOTE_ON + vocab.N_PITCHES
    rows = torch.nonzero(is_note).flatten()
    out[rows, tokens[rows]] -= penalty
    return out.clamp_(0.0, 1.0)


# ---- the two orders ---------------------------------------------------------------------------

def filter_logits(logits: torch.Tensor, params: SamplingParams, rp_table: torch.Tensor | None = None,
                  allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Our order: allowed-token mask and pitch range -> repetition penalty -> nucleus on
    softmax(l / topp_temperature) (crossing token kept) and top-k -> at_least_k restores the k
    most likely -> temperature. A row whose tokens the penalty removed entirely is sampled unpenalised.
    """
    if params.sber_compatible:
        return sber_filter_logits(logits, params, rp_table, allowed)
    out = logits if allowed is None else logits.masked_fill(~allowed, NEG_INF)
    if params.pitch_range is not None:
        out = pitch_range_mask(out, *params.pitch_range)
    if rp_table is not None and params.rp_penalty > 0:
        penalised = repetition_penalty(out, rp_table)
        dead = torch.isneginf(penalised).all(-1, keepdim=True)  # (B, 1)
        out = torch.where(dead, out, penalised)
    reference = out
    out = top_k(out, params.top_k)
    out = top_p(out, params.top_p, topp_temperature=params.topp_temperature, keep_crossing=True)
    if params.at_least_k > 1:
        out = at_least_k(out, reference, params.at_least_k)
    return apply_temperature(out, params.temperature)


def sber_filter_logits(logits: torch.Tensor, params: SamplingParams, rp_table: torch.Tensor | None = None,
                       allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Sber's order: mask pitches outside 21..96 (NOTE_ON and NOTE_OFF); p = softmax(l /
    topp_temperature); top-k of p; top-p keeps tokens while the cumulative sum < top_p (crossing
    dropped); at_least_k forces the k most likely back in; temperature on the survivors' logits;
    repetition penalty on their probabilities with Sber's two fallbacks (the rest of the
    top-k unpenalised, then the top-p set unpenalised)."""
    lo, hi = SBER_PITCH_RANGE
    if params.pitch_range is not None:
        lo, hi = max(lo, params.pitch_range[0]), min(hi, params.pitch_range[1])
    out = logits if allowed is None else logits.masked_fill(~allowed, NEG_INF)
    out = pitch_range_mask(out, lo, hi, note_off_too=True)
    p = torch.softmax(apply_temperature(out, params.topp_temperature), dim=-1)
    k = params.top_k if 0 < params.top_k < out.shape[-1] else out.shape[-1]
    p_topk, idxs = torch.topk(p, k, dim=-1, sorted=True)  # (B, k)
    keep = p_topk.cumsum(-1) < params.top_p
    keep[:, :params.at_least_k] = True
    kept = apply_temperature(out.gather(-1, idxs).masked_fill(~keep, NEG_INF), params.temperature)  # (B, k)
    if rp_table is not None and params.rp_penalty > 0:
        kept = _sber_penalty(kept, p_topk, keep, idxs, rp_table)
    return torch.full_like(out, NEG_INF).scatter(-1, idxs, kept)


def _sber_penalty(kept: torch.Tensor, p_topk: torch.Tensor, keep: torch.Tensor, idxs: torch.Tensor,
                  table: torch.Tensor) -> torch.Tensor:
    is_note = idxs < vocab.N_PITCHES
    mult = torch.where(is_note, table.gather(-1, idxs.clamp(max=vocab.N_PITCHES - 1)), torch.ones_like(p_topk))
    penalised = torch.log_softmax(kept, dim=-1) + torch.log(mult)
    dead = torch.isneginf(penalised).all(-1, keepdim=True)
    rest_of_topk = torch.log(p_topk).masked_fill(keep, NEG_INF)  # Sber's first fallback
    out = torch.where(dead, rest_of_topk, penalised)
    dead = torch.isneginf(out).all(-1, keepdim=True)
    return torch.where(dead, kept, out)  # the second fallback: top-p set, no penalty


# ---- drawing ----------------------------------------------------------------------------------

def sample_from_logits(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw per row from softmax(logits) (B, V) with one uniform in [0, 1) per row.

    Tokens are visited most likely first, so a draw depends only on the row's logits and its own
    uniform: a row samples the same token alone or in any batch.
    """
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    cum = sorted_p.cumsum(-1)
    target = uniforms.to(cum.device, cum.dtype)[:, None] * cum[:, -1:]
    pos = torch.searchsorted(cum, target, right=True).clamp_(max=cum.shape[-1] - 1)  # (B, 1)
    pos = torch.minimum(pos, (sorted_p > 0).sum(-1, keepdim=True) - 1)  # never a zero-mass token
    return order.gather(-1, pos).squeeze(-1)
