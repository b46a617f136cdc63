"""Sampling speed of the shipped model with a recipe's real controls (not random weights).

    python bench/bench_shipped_sampling.py [--genre jazz] [--batch 8] [--seconds 30] [--threads 2]
                                           [--genre-guidance W] [--grid 3 4]

Composes `batch` tracks of `seconds` with models/gen-small.pt (or `--checkpoint`), the cafe-jazz
recipe's controls (top-k 60, top-p 0.98, repetition penalty 0.05, the genre's default instruments
as `gen batch` plays them, the genre's note release; a beat-time model plays whole bars at the
genre's usual tempo) in one batch, and prints tokens, wall time, tokens/s and seconds of music per second.
No loop detection and no resampling: this is the sampler alone. `--genre-guidance` > 0 adds
each row's unconditioned twin (classifier-free guidance), the cost that option pays. `--grid`
sets the onset grid (divisions of the beat) in place of the genre's default (vocab.DEFAULT_GRIDS).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.eval.evaluate import default_palette  # noqa: E402
from generator.model.checkpoint import load_checkpoint  # noqa: E402
from generator.paths import SHIPPED_CHECKPOINT  # noqa: E402
from generator.sampling.generate import GenerationRequest, generate  # noqa: E402
from generator.sampling.loops import LoopLimits, release_after_s  # noqa: E402
from generator.sampling.params import SamplingParams  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genre", default="jazz")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--genre-guidance", type=float, default=0.0)
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT)
    parser.add_argument("--grid", type=int, nargs="+", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.checkpoint)
    params = SamplingParams.plain(top_k=60, top_p=0.98, rp_penalty=0.05, genre_guidance=args.genre_guidance)
    release = release_after_s(LoopLimits.for_genre(args.genre), args.genre)
    palette = default_palette(args.genre)
    grid = tuple(args.grid) if args.grid else None
    requests = [GenerationRequest(args.genre, seed, args.seconds, params, max_note_s=release, instruments=palette,
                                  grid=grid)
                for seed in range(args.batch)]
    generate(model, requests[:1], time_budget_s=0.5)  # warm-up
    start = time.perf_counter()
    results = generate(model, requests, batch_size=args.batch)
    wall = time.perf_counter() - start
    tokens = sum(r.tokens_generated for r in results)
    music = sum(r.duration_s for r in results)
    print(json.dumps({"checkpoint": str(args.checkpoint), "genre": args.genre, "batch": args.batch,
                      "genre_guidance": args.genre_guidance, "grid": grid,
                      "tokens": tokens, "wall_s": round(wall, 2),
                      "tok_s": round(tokens / wall), "music_s_per_wall_s": round(music / wall, 1)}))


if __name__ == "__main__":
    main()
