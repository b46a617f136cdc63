"""Decoding speed: our KV-cached decoder against Sber's full recompute, and throughput.

    python bench/bench_decode.py                            # everything (the 1024-token recompute takes long)
    python bench/bench_decode.py --new-tokens 64,128 --recompute-max 128 --throughput-s 5   # a short proof run

Three parts, all in one process on the same device:
1. Sber's released configuration (12 layers, d_model 1024, 16 heads, d_ff 2048, max 2048,
   absolute PE + relative attention; random weights: the cost does not depend on them) decoding
   N new tokens at batch 1 from a genre token, (a) as Sber does it: the whole prefix
   recomputed for every token, no cache, its filter order (top-k 60, top-p 0.99), and (b) with
   our KV cache and the same filters. Recompute runs above --recompute-max are not run: their
   time is extrapolated from a non-negative fit of the measured per-token times (a + b L + c L^2
   in the prefix length L) and marked "extrapolated". Timings need an otherwise idle machine:
   on a shared 2-core box the numbers swing by 10x with the neighbours' load.
2. The tiny and small models through `search.generate` (the real path: masks, ending policy,
   sliding window) at batch 1, 8, 32 for --throughput-s seconds each (time budget): new tokens
   per wall second, converted to seconds of music per wall second with the token rate of real
   music, overall and per genre (data/shards/test.npz; Sber's sample files without it).
   Random weights emit random tokens, so the token rate is what is measured; music per second
   is that rate divided by the rate real music needs (jazz ~100 tokens/s, calm ~8).
3. Per-step time of the cached decoder at batch 1 against the memory-bandwidth floor: a step
   must read every weight once, so it cannot beat weight bytes / measured copy bandwidth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.model.transformer import ModelConfig, MusicTransformer  # noqa: E402
from generator.sampling.filters import filter_logits, sample_from_logits  # noqa: E402
from generator.sampling.generate import GenerationRequest, generate  # noqa: E402
from generator.sampling.params import SamplingParams  # noqa: E402
from generator.tokens import vocab  # noqa: E402
from generator.tokens.encoding import DEFAULT, SBER  # noqa: E402

SBER_DEMO = SamplingParams.plain(top_k=60, top_p=0.99, sber_compatible=True)


def sber_release() -> ModelConfig:
    return ModelConfig.sber(d_model=1024, n_layers=12, n_heads=16, d_ff=2048, max_seq=2048)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.inference_mode()
def decode_recompute(model, n_new: int, device: str) -> list[float]:
    """Sber's loop: forward over the whole prefix, take the last logits, filter, sample."""
    ids = torch.tensor([[vocab.genre_token("jazz")]], device=device)
    rng = torch.Generator().manual_seed(0)
    times = []
    for _ in range(n_new):
        start = time.perf_counter()
        logits = model(ids)[:, -1].float()
        token = sample_from_logits(filter_logits(logits, SBER_DEMO), torch.rand(1, generator=rng))
        ids = torch.cat([ids, token.view(1, 1)], dim=1)
        sync(device)
        times.append(time.perf_counter() - start)
    return times


@torch.inference_mode()
def decode_cached(model, n_new: int, device: str, batch: int = 1) -> list[float]:
    """The same loop with the KV cache: one new token through the model per step."""
    cache = model.new_cache()
    ids = torch.full((batch, 1), vocab.genre_token("jazz"), device=device)
    rng = torch.Generator().manual_seed(0)
    times = []
    for _ in range(n_new):
        start = time.perf_counter()
        logits = model.step(ids, cache)[:, -1].float()
        ids = sample_from_logits(filter_logits(logits, SBER_DEMO), torch.rand(batch, generator=rng)).view(batch, 1)
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def extrapolate(step_times: list[float], n_new: int) -> float:
    """Total seconds for n_new recompute steps: a + b L + c L^2 fitted to the measured step times
    with a, b, c >= 0 (non-negative least squares), so noise cannot bend the curve down."""
    from scipy.optimize import nnls

    lengths = np.arange(1, len(step_times) + 1, dtype=float)
    design = np.stack([np.ones_like(lengths), lengths, lengths**2], axis=1)
    coeffs, _ = nnls(design, np.array(step_times))
    future = np.arange(1, n_new + 1, dtype=float)
    return float((coeffs[0] + coeffs[1] * future + coeffs[2] * future**2).sum())


def part_recompute(args, device: str) -> list[dict]:
    torch.manual_seed(0)
    model = MusicTransformer(sber_release(), SBER).to(device).eval()
    print(f"Sber release config: {model.config.describe()}, {model.n_params() / 1e6:.1f} M parameters")
    decode_cached(model, 8, device)  # warm-up
    rows, longest = [], None
    for n_new in args.new_tokens:
        cached = decode_cached(model, n_new, device)
        row = {"new_tokens": n_new, "cached_s": sum(cached), "cached_tok_s": n_new / sum(cached)}
        if n_new <= args.recompute_max:
            recompute = decode_recompute(model, n_new, device)
            longest = recompute if longest is None or len(recompute) > len(longest) else longest
            row.update(recompute_s=sum(recompute), recompute_extrapolated=False,
                       recompute_first_last_ms=(recompute[0] * 1e3, recompute[-1] * 1e3))
        elif longest is not None and len(longest) >= 32:
            row.update(recompute_s=extrapolate(longest, n_new), recompute_extrapolated=True,
                       recompute_fit_from_tokens=len(longest))
        if "recompute_s" in row:
            row.update(recompute_tok_s=n_new / row["recompute_s"], speedup=row["recompute_s"] / row["cached_s"])
        rows.append(row)
        print(json.dumps(row))
    return rows


def real_tokens_per_music_s() -> dict[str, float]:
    """Tokens per second of music in real pieces (the rate a trained model learns), overall and
    per genre of the test shard; Sber's files when there is no shard."""
    from generator.sampling.loops import calibration_pieces
    from generator.tokens.tokenizer import seconds_of

    shard = ROOT / "data" / "shards" / "test.npz"
    pieces = list(calibration_pieces(None, shard)) or list(
        calibration_pieces(ROOT / "tests" / "vectors" / "sber_midi", None))
    totals: dict[str, list[float]] = {}
    for genre, ids in pieces:
        for key in ("all", genre):
            tokens_seconds = totals.setdefault(key, [0.0, 0.0])
            tokens_seconds[0] += len(ids)
            tokens_seconds[1] += seconds_of(ids)
    return {key: tokens / seconds for key, (tokens, seconds) in totals.items() if seconds}


def part_throughput(args, device: str, rates: dict[str, float]) -> list[dict]:
    rows = []
    for name in args.models:
        torch.manual_seed(0)
        model = MusicTransformer(getattr(ModelConfig, name)()).to(device).eval()
        for batch in args.batches:
            requests = [GenerationRequest("jazz", s, 3600.0, SamplingParams.plain(top_k=60, top_p=0.99))
                        for s in range(batch)]
            generate(model, requests[:1], device=device, time_budget_s=0.5)  # warm-up
            start = time.perf_counter()
            results = generate(model, requests, device=device, batch_size=batch, time_budget_s=args.throughput_s)
            wall = time.perf_counter() - start
            tokens = sum(r.tokens_generated for r in results)
            row = {"model": name, "params_m": model.n_params() / 1e6, "batch": batch, "tokens": tokens,
                   "wall_s": wall, "tok_s": tokens / wall,
                   "music_s_per_wall_s": {key: tokens / wall / rate for key, rate in rates.items()}}
            rows.append(row)
            print(json.dumps(row))
    return rows


def memory_bandwidth_gb_s(device: str, mbytes: int = 256) -> float:
    """Copy bandwidth (bytes read + written per second) of a large tensor clone, best of 5."""
    src = torch.empty(mbytes * 2**20 // 4, dtype=torch.float32, device=device).fill_(1.0)
    best = float("inf")
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        src.clone()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * 4 / best / 1e9


def part_floor(args, device: str) -> list[dict]:
    bandwidth = memory_bandwidth_gb_s(device)
    rows = []
    for name, config, encoding in (("sber_release", sber_release(), SBER), ("small", ModelConfig.small(), DEFAULT),
                                   ("tiny", ModelConfig.tiny(), DEFAULT)):
        if name not in args.floor_models:
            continue
        torch.manual_seed(0)
        model = MusicTransformer(config, encoding).to(device).eval()
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        steps = decode_cached(model, args.floor_tokens, device)[8:]
        step_ms = float(np.median(steps)) * 1e3
        floor_ms = weight_bytes / (bandwidth * 1e9) * 1e3
        row = {"model": name, "weight_mb": weight_bytes / 2**20, "bandwidth_gb_s": bandwidth,
               "step_ms_median": step_ms, "floor_ms": floor_ms, "step_over_floor": step_ms / floor_ms}
        rows.append(row)
        print(json.dumps(row))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--new-tokens", type=lambda s: [int(x) for x in s.split(",")], default=[256, 512, 1024])
    parser.add_argument("--recompute-max", type=int, default=1024,
                        help="run the recompute baseline only up to this many new tokens; extrapolate above")
    parser.add_argument("--models", type=lambda s: s.split(","), default=["tiny", "small"])
    parser.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--throughput-s", type=float, default=20.0, help="time budget per throughput run")
    parser.add_argument("--floor-models", type=lambda s: s.split(","), default=["sber_release", "small", "tiny"])
    parser.add_argument("--floor-tokens", type=int, default=64)
    parser.add_argument("--skip", type=lambda s: s.split(","), default=[],
                        help="parts to skip: recompute,throughput,floor")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads")
    report = {"device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__}
    if "recompute" not in args.skip:
        report["recompute_vs_cached"] = part_recompute(args, args.device)
    if "throughput" not in args.skip:
        report["real_tokens_per_music_s"] = real_tokens_per_music_s()
        print(json.dumps(report["real_tokens_per_music_s"]))
        report["throughput"] = part_throughput(args, args.device, report["real_tokens_per_music_s"])
    if "floor" not in args.skip:
        report["bandwidth_floor"] = part_floor(args, args.device)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
