"""Token shards: data/shards/{train,valid,test}.npz plus data/pieces.jsonl. No torch.

A shard holds `tokens` (uint16, the ids of every piece, concatenated, without GENRE/END),
`offsets` (int64, n_pieces + 1), `genre` (int8, index into vocab.GENRES per piece), `piece`
(int32, the piece's row in pieces.jsonl) and `encoding` (the name of the encoding of its ids; a
shard without it is in the default encoding, as every shard was before the beat encoding).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator.errors import InputError
from generator.files import atomic_path
from generator.tokens import vocab
from generator.tokens.encoding import BEAT, DEFAULT, Encoding, encoding_named

SHARD_ENCODING = BEAT  # the encoding `gen data prepare` writes (and so of the models trained on it)
SPLITS = ("train", "valid", "test")
LICENCE_CLASSES = ("pd", "permissive", "copyleft", "none", "synthetic")
_ARRAYS = {"tokens": np.uint16, "offsets": np.int64, "genre": np.int8, "piece": np.int32}


@dataclass(frozen=True, eq=False)
class Shard:
    path: Path
    tokens: np.ndarray  # (N,) uint16
    offsets: np.ndarray  # (n_pieces + 1,) int64
    genre: np.ndarray  # (n_pieces,) int8
    piece: np.ndarray  # (n_pieces,) int32
    encoding: Encoding = DEFAULT

    def __len__(self) -> int:
        return len(self.genre)

    def ids(self, index: int) -> np.ndarray:
        """The tokens of piece `index` (a view)."""
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def shard_path(data_dir: str | Path, split: str) -> Path:
    return Path(data_dir) / "shards" / f"{split}.npz"


def load_shard(path: str | Path) -> Shard:
    """Read and check one shard; InputError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: shard not found; prepare the corpus with `gen data` first")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name]) for name in _ARRAYS}
            name = str(data["encoding"]) if "encoding" in data.files else DEFAULT.name
    except KeyError as error:
        raise InputError(f"{path}: array {error} missing; expected {', '.join(_ARRAYS)}") from None
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable .npz shard ({error}); re-create it") from None
    try:
        encoding = encoding_named(name)
    except ValueError:
        raise InputError(f"{path}: its encoding {name[:40]!r} is unknown to this build; re-create the shard") from None
    offsets, n_pieces = arrays["offsets"], len(arrays["genre"])
    problems = []
    if len(offsets) != n_pieces + 1 or len(arrays["piece"]) != n_pieces:
        problems.append(f"offsets/genre/piece lengths {len(offsets)}/{n_pieces}/{len(arrays['piece'])} disagree")
    elif offsets[0] != 0 or offsets[-1] != len(arrays["tokens"]) or np.any(np.diff(offsets) < 0):
        problems.append("offsets do not cover `tokens` in order")
    if n_pieces and (arrays["genre"].min() < 0 or arrays["genre"].max() >= len(vocab.GENRES)):
        problems.append(f"genre outside 0..{len(vocab.GENRES) - 1}")
    if len(arrays["tokens"]) and arrays["tokens"].max() >= encoding.vocab_size:
        problems.append(f"token id {int(arrays['tokens'].max())} >= vocabulary size {encoding.vocab_size} "
                        f"of its encoding {encoding.name!r}")
    if problems:
        raise InputError(f"{path}: {problems[0]}; re-create the shard")
    return Shard(path, **{name: arrays[name].astype(dtype, copy=False) for name, dtype in _ARRAYS.items()},
                 encoding=encoding)


def write_shard(path: str | Path, pieces: Sequence[Sequence[int]], genres: Sequence[int | str],
                piece_rows: Sequence[int] | None = None, encoding: Encoding = DEFAULT) -> None:
    """Write a shard atomically. `genres` are vocab.GENRES indices or names."""
    path = Path(path)
    genre_ids = [g if isinstance(g, int) else vocab.GENRES.index(vocab.canonical_genre(g)) for g in genres]
    lengths = [len(p) for p in pieces]
    arrays = {
        "tokens": np.concatenate([np.asarray(p, dtype=np.uint16) for p in pieces]) if pieces
        else np.zeros(0, np.uint16),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "genre": np.asarray(genre_ids, dtype=np.int8),
        "piece": np.asarray(range(len(pieces)) if piece_rows is None else piece_rows, dtype=np.int32),
        "encoding": np.asarray(encoding.name),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def read_pieces(path: str | Path) -> list[dict]:
    """pieces.jsonl -> one dict per row (row index = the shard's `piece` value)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: piece list not found; prepare the corpus with `gen data` first")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{number}: invalid JSON ({error.msg}); fix or re-create the file") from None
    return rows


def data_sha256(data_dir: str | Path) -> str:
    """One hash over the three shards and pieces.jsonl (those present): the training-data identity."""
    digest = hashlib.sha256()
    data_dir = Path(data_dir)
    for path in [shard_path(data_dir, s) for s in SPLITS] + [data_dir / "pieces.jsonl"]:
        if path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()
