"""Training throughput of a model size: tokens/s of full AdamW steps, relative vs absolute positions.

    python3 bench/bench_train.py --config small --batch-size 8 --threads 1 --precision bf16

Variants run interleaved and the best of --repeats counts, so a busy shared CPU skews them alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.model.train import CONFIGS, autocast_dtype  # noqa: E402
from generator.model.transformer import ModelConfig, MusicTransformer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    amp = autocast_dtype(args.precision, torch.device("cpu"))
    base: ModelConfig = CONFIGS[args.config]()
    variants = {"relative": base, "absolute": replace(base, relative=False, absolute_pe=True)}
    ids = torch.randint(0, base.vocab_size, (args.batch_size, base.max_seq + 1))
    runs = {}
    for name, config in variants.items():
        torch.manual_seed(0)
        model = MusicTransformer(config).train()
        runs[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))

    def step(model: MusicTransformer, optimizer: torch.optim.Optimizer) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.float().transpose(1, 2), ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    for run in runs.values():
        step(*run)  # warm-up
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            best[name] = min(best[name], step(*run))
    tokens = args.batch_size * base.max_seq
    print(f"{args.config}: batch {args.batch_size} x {base.max_seq}, threads {torch.get_num_threads()}, "
          f"precision {amp or torch.float32}")
    for name, seconds in best.items():
        print(f"  {name:<9} {runs[name][0].n_params():>10,} params  {tokens / seconds:8.0f} tokens/s")


if __name__ == "__main__":
    main()
