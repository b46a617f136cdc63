"""Held-out NLL per token and per bar, comparable across encodings: each model is scored on the
test pieces of its own shards, and the nats of a piece are divided by the bars that piece has in the
beat shards (its BAR tokens), so models that count time differently are compared on the same music.

    python bench/nll_per_bar.py --model models/gen-small.pt --data data/beat \
        --model runs/parent-default.pt --data data [--bars data/beat] [--tokens 50000] [--json]

Each --model goes with the --data in the same position. Pieces are matched by their id in each
folder's pieces.jsonl; a piece missing from the beat shards is left out of both sums. `--tokens`
caps the scored tokens per genre (whole pieces, in shard order, as `gen eval` scores them); 0: all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.corpus.shards import load_shard, shard_path  # noqa: E402
from generator.model.checkpoint import load_checkpoint  # noqa: E402
from generator.model.train import piece_nll  # noqa: E402
from generator.tokens import vocab  # noqa: E402


def piece_ids(data: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (data / "pieces.jsonl").read_text().splitlines() if line.strip()]


def bars_by_id(bars_data: Path) -> dict[str, int]:
    shard, ids = load_shard(shard_path(bars_data, "test")), piece_ids(bars_data)
    return {ids[shard.piece[i]]: int(np.count_nonzero(shard.ids(i) == vocab.BAR)) for i in range(len(shard))}


def score(checkpoint: Path, data: Path, bars: dict[str, int], tokens: int | None) -> dict[str, dict]:
    model, _ = load_checkpoint(checkpoint)
    shard, ids = load_shard(shard_path(data, "test")), piece_ids(data)
    out = {}
    for g, genre in enumerate(vocab.GENRES):
        scored = piece_nll(model, _genre_only(shard, g), max_tokens_per_genre=tokens)
        nats = n_tokens = n_bars = 0
        for index, (total, count) in scored.items():
            piece_bars = bars.get(ids[shard.piece[_rows(shard, g)[index]]])
            if piece_bars:
                nats, n_tokens, n_bars = nats + total, n_tokens + count, n_bars + piece_bars
        if n_bars:
            out[genre] = {"nats_per_token": nats / n_tokens, "nats_per_bar": nats / n_bars,
                          "tokens_per_bar": n_tokens / n_bars, "pieces": len(scored), "bars": n_bars}
    return out


def _rows(shard, g: int) -> np.ndarray:
    return np.flatnonzero(shard.genre == g)


def _genre_only(shard, g: int):
    """The shard's pieces of genre g alone (so each genre's cap counts only its own pieces)."""
    from dataclasses import replace

    rows = _rows(shard, g)
    parts = [shard.ids(i) for i in rows]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return replace(shard, tokens=np.concatenate(parts) if parts else shard.tokens[:0], offsets=offsets,
                   genre=shard.genre[rows], piece=shard.piece[rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--bars", type=Path, default=ROOT / "data" / "beat")
    parser.add_argument("--tokens", type=int, default=50_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if len(args.model) != len(args.data):
        parser.error("give one --data per --model")
    bars = bars_by_id(args.bars)
    results = {str(m): score(m, d, bars, args.tokens or None) for m, d in zip(args.model, args.data)}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| model | genre | nats/token | tokens/bar | nats/bar | pieces | bars |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for model, genres in results.items():
        for genre, r in genres.items():
            print(f"| `{model}` | {genre} | {r['nats_per_token']:.3f} | {r['tokens_per_bar']:.1f} | "
                  f"{r['nats_per_bar']:.1f} | {r['pieces']} | {r['bars']} |")


if __name__ == "__main__":
    main()
