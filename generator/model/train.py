"""Training with resume: genre-balanced random windows, AdamW, warm-up + cosine, chunked by wall time.

OUT/checkpoint.pt holds the model, its meta and the training state (optimizer, RNGs, step), so a
run can stop at any checkpoint (every N steps, at the --minutes budget, on SIGINT/SIGTERM) and
continue bit for bit. OUT/model.pt is the same model without the training state: the file to ship.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from generator.corpus.shards import Shard, data_sha256, load_shard, read_pieces, shard_path
from generator.errors import CheckpointError, InputError
from generator.files import file_sha256
from generator.model.checkpoint import FORMAT, read_checkpoint, save_checkpoint
from generator.model.transformer import ModelConfig, MusicTransformer
from generator.tokens import beat_codec, vocab
from generator.tokens.tokenizer import augment_ids
from generator.tokens.transpose import transpose_ids

log = logging.getLogger(__name__)

CONFIGS = {"small": ModelConfig.small, "tiny": ModelConfig.tiny}
# Options that define the run; on --resume they come from the checkpoint, not the command line.
RUN_FIELDS = ("config", "absolute", "batch_size", "lr", "weight_decay", "warmup_steps", "grad_clip",
              "exclude_licences", "exclude_sources", "augment", "genre_dropout", "seed", "init")


@dataclass(frozen=True)
class TrainOptions:
    data_dir: Path = Path("data")
    out_dir: Path = Path("models/run")
    config: str = "small"
    context: int | None = None  # context length in tokens (None: the config's, or the --init checkpoint's)
    absolute: bool = False  # ablation: absolute PE instead of relative attention, same size
    device: str = "cpu"
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 200
    grad_clip: float = 1.0
    max_steps: int = 2000
    minutes: float | None = None  # wall-time budget of this chunk
    checkpoint_every: int = 100
    eval_every: int = 250
    eval_tokens_per_genre: int | None = 20_000  # cap for evaluations during training
    exclude_licences: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()  # source keys: the part of a piece id before "/", e.g. pop-mma
    augment: bool = True
    genre_dropout: float = 0.0  # share of windows whose prefix is NO_GENRE (for genre guidance)
    init: str | None = None  # warm start: the weights (and config) of this checkpoint of ours
    resume: bool = False
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (autocast; weights stay fp32)
    threads: int | None = None  # CPU threads for torch; None: torch's default (all cores)
    command: str = ""


@dataclass(frozen=True)
class TrainProgress:
    step: int
    max_steps: int
    loss: float
    tokens_per_s: float
    lr: float
    event: str = "step"  # step | eval | checkpoint
    valid_nll: dict[str, float] | None = None


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    model_path: Path
    step: int
    finished: bool
    stopped_by: str  # max_steps | minutes | SIGINT | SIGTERM
    meta: dict = field(default_factory=dict)


# --- data ---------------------------------------------------------------------------------------

def source_key(row: dict) -> str:
    """The source a piece came from, as `gen data prepare --limit` names it: its id before "/"."""
    return str(row.get("id", "")).split("/", 1)[0]


def train_pieces(data_dir: Path, shard: Shard, exclude_licences: tuple[str, ...],
                 exclude_sources: tuple[str, ...] = ()) -> np.ndarray:
    """Indices of the shard's pieces to train on (licence classes and sources removed, empty
    pieces dropped)."""
    keep = shard.lengths() > 0
    if exclude_licences or exclude_sources:
        rows = read_pieces(data_dir / "pieces.jsonl")
        if len(shard) and shard.piece.max() >= len(rows):
            raise InputError(f"{shard.path}: piece row {int(shard.piece.max())} beyond "
                             f"{data_dir / 'pieces.jsonl'} ({len(rows)} rows); re-create the data")
        classes = np.array([rows[r].get("licence_class", "none") for r in shard.piece])
        keep &= ~np.isin(classes, list(exclude_licences))
        sources = np.array([source_key(rows[r]) for r in shard.piece])
        unknown = sorted(set(exclude_sources) - set(sources.tolist()))
        if unknown:
            raise InputError(f"--exclude-source: {', '.join(unknown)} not a source of {shard.path}; "
                             f"its sources are {', '.join(sorted(set(sources.tolist())))}")
        keep &= ~np.isin(sources, list(exclude_sources))
    index = np.flatnonzero(keep)
    if not len(index):
        left_out = [*exclude_licences, *exclude_sources]
        raise InputError(f"{shard.path}: no training pieces left after excluding {left_out}; "
                         "include more licence classes or sources, or add data")
    return index


def family_before(ids: np.ndarray, index: int) -> int:
    """The instrument family in force just before ids[index] (piano before any INSTRUMENT)."""
    head = ids[:index]
    marks = np.flatnonzero((head >= vocab.INSTRUMENT) & (head < vocab.INSTRUMENT + vocab.N_INSTRUMENTS))
    return int(ids[marks[-1]]) - vocab.INSTRUMENT if marks.size else 0


def extended_state(parent: dict, model: MusicTransformer, source: object) -> dict:
    """The parent's weights for `model`; a parent with a smaller vocabulary (a default-encoding model
    warm-starting a beat-encoding one, whose ids extend the default ones) gives its rows for the ids
    they share, and the new ids keep the model's fresh initialisation. A parent with a shorter
    context gives its relative embeddings Er for the distances it knew (Er's last rows: row M-1-d is
    distance d), and the longer distances start as its farthest one."""
    state = dict(parent)
    for name, tensor in model.state_dict().items():
        old = state.get(name)
        if old is None or old.shape == tensor.shape:
            continue
        if name.endswith("attn.er") and old.shape[:-2] == tensor.shape[:-2] and old.shape[-1] == tensor.shape[-1] \
                and old.shape[-2] < tensor.shape[-2]:
            known = old.shape[-2]
            grown = tensor.clone()
            grown[..., -known:, :] = old
            grown[..., :-known, :] = old[..., :1, :]
            state[name] = grown
        elif old.dim() >= 1 and old.shape[1:] == tensor.shape[1:] and old.shape[0] < tensor.shape[0]:
            grown = tensor.clone()
            grown[: old.shape[0]] = old
            state[name] = grown
        else:
            raise CheckpointError(f"{source}: its {name} has shape {tuple(old.shape)}, this model needs "
                                  f"{tuple(tensor.shape)}; --init takes a model of the same size")
    return state


class WindowSampler:
    """Random training windows: genre-balanced, length-weighted within a genre, augmented."""

    def __init__(self, shard: Shard, pieces: np.ndarray, max_seq: int, augment: bool,
                 instruments: bool = True, genre_dropout: float = 0.0) -> None:
        self.shard, self.max_seq, self.augment, self.instruments = shard, max_seq, augment, instruments
        self.bars = shard.encoding.has_bars
        self.genre_dropout = genre_dropout
        lengths = shard.lengths()
        self.by_genre = []
        for g in range(len(vocab.GENRES)):
            members = pieces[shard.genre[pieces] == g]
            if len(members):
                weights = lengths[members].astype(np.float64)
                self.by_genre.append((g, members, weights / weights.sum()))

    def window(self, rng: np.random.Generator) -> list[int]:
        """[GENRE] + up to max_seq-1 tokens (+ END when the window reaches the piece's end); with
        genre dropout, a share of the windows start with NO_GENRE instead.

        A window cut from the middle starts with the INSTRUMENT token in force at the cut, in place
        of its oldest token, as the sampler's re-primed windows do (rowstate.RowState.prompt): its
        first note events then belong to their own family, not to piano, and drums stay untransposed.
        """
        g, members, weights = self.by_genre[rng.integers(len(self.by_genre))]
        ids = self.shard.ids(int(members[rng.choice(len(members), p=weights)]))
        body = self.max_seq - 1
        if self.bars:
            tokens, ended = self._bar_window(ids, body, rng)
            prefix = vocab.NO_GENRE if self.genre_dropout and rng.random() < self.genre_dropout else vocab.GENRE + g
            return [prefix] + tokens[:body] + ([vocab.END] if ended else [])
        # One window in ten starts at the beginning: generation starts from the genre token alone.
        start = 0 if rng.random() < 0.1 else int(rng.integers(0, max(1, len(ids) - body + 1)))
        head: list[int] = []
        if start > 0 and self.instruments:  # the cut token gives way to the INSTRUMENT in force
            head, start = [vocab.INSTRUMENT + family_before(ids, start + 1)], start + 1
        if self.augment:
            transpose, stretch = int(rng.integers(-3, 4)), float(rng.uniform(0.95, 1.05))
            margin = body // 8 + 16  # stretch and dropped notes change the token count a little
            piece = ids[start : start + body - len(head) + margin]
            tokens = augment_ids(head + piece.tolist(), transpose=transpose, stretch=stretch)
            ended = start + len(piece) >= len(ids) and len(tokens) <= body
        else:
            tokens = head + ids[start : start + body - len(head)].tolist()
            ended = start + body - len(head) >= len(ids)
        # Drawn only when asked for, so a run without dropout keeps its window stream.
        prefix = vocab.NO_GENRE if self.genre_dropout and rng.random() < self.genre_dropout else vocab.GENRE + g
        return [prefix] + tokens[:body] + ([vocab.END] if ended else [])

    def _bar_window(self, ids: np.ndarray, body: int, rng: np.random.Generator) -> tuple[list[int], bool]:
        """Beat encoding: a window cut from the middle restates the meter, chord and instrument in
        force at the cut (beat_codec.window_at, as the sampler's re-primed windows do); the
        augmentation transposes notes and chord roots by -3..+3 (time is beats: no stretch)."""
        start = 0 if rng.random() < 0.1 else int(rng.integers(0, max(1, len(ids) - body + 1)))
        piece = ids[: start + body + 1]
        window = beat_codec.window_at(piece, start) if start > 0 else piece.tolist()
        if self.augment:
            window = transpose_ids(window, int(rng.integers(-3, 4)), self.shard.encoding)
        ended = start + body + 1 >= len(ids) and len(window) <= body
        return window, ended

    def batch(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) each (B, max_seq); PAD in y is ignored by the loss."""
        x = torch.full((batch_size, self.max_seq), vocab.PAD, dtype=torch.long)
        y = torch.full((batch_size, self.max_seq), vocab.PAD, dtype=torch.long)
        for row in range(batch_size):
            seq = torch.tensor(self.window(rng), dtype=torch.long)
            x[row, : len(seq) - 1] = seq[:-1]
            y[row, : len(seq) - 1] = seq[1:]
        return x, y


# --- evaluation ---------------------------------------------------------------------------------

def _eval_windows(shard: Shard, max_seq: int, max_tokens_per_genre: int | None):
    """Deterministic non-overlapping windows: (piece index, genre, x, y) with x = [GENRE] + chunk[:-1],
    y = chunk; whole pieces, in shard order, until a genre has max_tokens_per_genre."""
    used = [0] * len(vocab.GENRES)
    for index in range(len(shard)):
        g = int(shard.genre[index])
        if max_tokens_per_genre is not None and used[g] >= max_tokens_per_genre:
            continue
        body = shard.ids(index).tolist() + [vocab.END]
        for begin in range(0, len(body), max_seq):
            chunk = body[begin : begin + max_seq]
            used[g] += len(chunk)
            yield index, g, [vocab.GENRE + g] + chunk[:-1], chunk


@torch.no_grad()
def piece_nll(model: MusicTransformer, shard: Shard, device: str | torch.device = "cpu", *,
              max_tokens_per_genre: int | None = None, batch_size: int = 16) -> dict[int, tuple[float, int]]:
    """Held-out NLL per scored piece: shard index -> (nats summed over its tokens + END, tokens)."""
    sums: dict[int, list] = {}
    was_training = model.training
    model.eval()
    windows = list(_eval_windows(shard, model.config.max_seq, max_tokens_per_genre))
    windows.sort(key=lambda w: len(w[3]))  # similar lengths together: less padding
    for begin in range(0, len(windows), batch_size):
        group = windows[begin : begin + batch_size]
        width = max(len(w[3]) for w in group)
        x = torch.full((len(group), width), vocab.PAD, dtype=torch.long)
        y = torch.full((len(group), width), vocab.PAD, dtype=torch.long)
        for row, (_, _, xs, ys) in enumerate(group):
            x[row, : len(xs)] = torch.tensor(xs)
            y[row, : len(ys)] = torch.tensor(ys)
        logits = model(x.to(device)).float()
        nll = F.cross_entropy(logits.transpose(1, 2), y.to(device), ignore_index=vocab.PAD, reduction="none")
        for row, (index, _, _, ys) in enumerate(group):
            total = sums.setdefault(index, [0.0, 0])
            total[0] += float(nll[row, : len(ys)].sum())
            total[1] += len(ys)
    model.train(was_training)
    return {index: (total, count) for index, (total, count) in sorted(sums.items())}


def evaluate_nll(model: MusicTransformer, shard_path: str | Path, device: str | torch.device = "cpu", *,
                 max_tokens_per_genre: int | None = None, batch_size: int = 16) -> dict[str, float]:
    """Held-out NLL in nats per token, per genre, over every piece of the shard (or a capped prefix)."""
    shard = load_shard(shard_path)
    total = np.zeros(len(vocab.GENRES))
    count = np.zeros(len(vocab.GENRES))
    scored = piece_nll(model, shard, device, max_tokens_per_genre=max_tokens_per_genre, batch_size=batch_size)
    for index, (nats, tokens) in scored.items():
        total[shard.genre[index]] += nats
        count[shard.genre[index]] += tokens
    return {vocab.GENRES[g]: float(total[g] / count[g]) for g in range(len(vocab.GENRES)) if count[g]}


# --- the loop -----------------------------------------------------------------------------------

def learning_rate(step: int, opts: TrainOptions) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak at max_steps."""
    if step < opts.warmup_steps:
        return opts.lr * (step + 1) / opts.warmup_steps
    progress = min(1.0, (step - opts.warmup_steps) / max(1, opts.max_steps - opts.warmup_steps))
    return opts.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def model_config(opts: TrainOptions) -> ModelConfig:
    if opts.config not in CONFIGS:
        raise InputError(f"--config {opts.config!r} unknown; choose one of {', '.join(CONFIGS)}")
    config = CONFIGS[opts.config]()
    return replace(config, relative=False, absolute_pe=True, scale_embedding=True) if opts.absolute else config


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str) -> dict:
    info = {"device": device, "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": str(torch.__version__),
            "python": platform.python_version()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for --precision; auto: bf16 on GPUs and on CPUs with native bf16 (AMX), else fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        native = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        return torch.bfloat16 if native else None
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes or (precision == "fp16" and device.type != "cuda"):
        raise InputError(f"--precision {precision!r}: use auto, fp32, bf16 (or fp16 on CUDA)")
    return dtypes[precision]


class _Stop:
    """SIGINT/SIGTERM ask the loop to stop at the next step boundary; a second signal aborts."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Stop:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: no handlers, the budget still applies
            pass
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    def __init__(self, opts: TrainOptions) -> None:
        self.out = Path(opts.out_dir)
        self.checkpoint = self.out / "checkpoint.pt"
        state = self._resume_state(opts)
        if state is not None:
            stored = {k: (tuple(v) if isinstance(v, list) else v) for k, v in state["options"].items()
                      if k in RUN_FIELDS}
            for key, value in stored.items():
                if getattr(opts, key) != value:
                    log.warning("--resume keeps the run's %s=%r (ignoring %r)", key, value, getattr(opts, key))
            opts = replace(opts, **stored)
        self.opts = opts
        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.device = torch.device(opts.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available here; use --device cpu")
        self.data_hash = data_sha256(opts.data_dir)
        self.shard = load_shard(shard_path(opts.data_dir, "train"))
        self.pieces = train_pieces(Path(opts.data_dir), self.shard, opts.exclude_licences, opts.exclude_sources)
        parent = self._init_checkpoint(opts) if state is None and opts.init else None
        config = ModelConfig(**(state or parent)["config"]) if (state or parent) else model_config(opts)
        if state is None and opts.context:
            config = replace(config, max_seq=opts.context)  # a longer one than --init's: extended_state
        encoding = self.shard.encoding
        if opts.genre_dropout > 0:
            config = replace(config, unconditioned=True)
        config = replace(config, vocab_size=encoding.vocab_size)
        torch.manual_seed(opts.seed)
        self.model = MusicTransformer(config, encoding).to(self.device).train()
        if parent is not None:
            self.model.load_state_dict(extended_state(parent["model"], self.model, opts.init))
        self.optimizer = torch.optim.AdamW(self._param_groups(), lr=opts.lr, betas=(0.9, 0.95))
        self.sampler = WindowSampler(self.shard, self.pieces, config.max_seq, opts.augment,
                                     instruments=self.model.encoding.has_instruments,
                                     genre_dropout=opts.genre_dropout)
        self.rng = np.random.default_rng(opts.seed)
        self.step, self.tokens_seen, self.wall_s, self.history = 0, 0, 0.0, []
        self.meta: dict = {"init": parent["init"]} if parent is not None else {}
        if state is not None:
            self._restore(state)
        self.amp = autocast_dtype(opts.precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp is torch.float16)
        if state is not None and state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])

    def _resume_state(self, opts: TrainOptions) -> dict | None:
        if not opts.resume or not self.checkpoint.is_file():
            return None
        data = read_checkpoint(self.checkpoint)
        if "train" not in data:
            raise CheckpointError(f"{self.checkpoint}: holds no training state; cannot --resume from it")
        return {**data["train"], "config": data["config"], "model": data["model"], "meta": data["meta"]}

    def _init_checkpoint(self, opts: TrainOptions) -> dict:
        """The weights, config and lineage of the --init checkpoint (a model of ours)."""
        path = Path(opts.init)
        data = read_checkpoint(path)
        if data.get("format") != FORMAT or "config" not in data or "model" not in data:
            raise CheckpointError(f"{path}: --init takes a `gen train` checkpoint (model.pt or "
                                  "checkpoint.pt); a Sber-format state_dict cannot be trained on here")
        if opts.absolute:
            raise InputError("--init and --absolute: the model's positions come from the --init checkpoint; "
                             "drop --absolute")
        meta = data.get("meta") or {}
        lineage = {key: meta.get(key) for key in ("steps", "tokens_seen", "wall_time_s", "command")}
        lineage["steps_total"] = meta.get("steps_total", meta.get("steps"))
        lineage["tokens_seen_total"] = meta.get("tokens_seen_total", meta.get("tokens_seen"))
        lineage["wall_time_s_total"] = meta.get("wall_time_s_total", meta.get("wall_time_s"))
        lineage["data_sha256"] = (meta.get("data") or {}).get("sha256")
        lineage["test_nll"] = meta.get("test_nll")
        lineage["init"] = meta.get("init")  # its own parent, if it was a warm start too
        return {"config": data["config"], "model": data["model"],
                "init": {"checkpoint": str(path), "sha256": file_sha256(path), **lineage}}

    def _param_groups(self) -> list[dict]:
        """No weight decay on biases, norms and Er (the usual GPT recipe)."""
        decay, plain = [], []
        for name, p in self.model.named_parameters():
            (decay if p.dim() >= 2 and not name.endswith(".er") else plain).append(p)
        return [{"params": decay, "weight_decay": self.opts.weight_decay}, {"params": plain, "weight_decay": 0.0}]

    def _restore(self, state: dict) -> None:
        if state["meta"].get("data", {}).get("sha256") != self.data_hash:
            raise InputError(f"{self.opts.data_dir}: training data changed since step {state['step']} of "
                             f"{self.checkpoint}; start a new run (another --out, or without --resume)")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.step, self.tokens_seen, self.wall_s = state["step"], state["tokens_seen"], state["wall_s"]
        self.history, self.meta = list(state["meta"].get("history", [])), dict(state["meta"])
        if self.step < self.opts.max_steps:  # more steps to come: the final evaluation is stale
            self.meta.pop("valid_nll", None)
            self.meta.pop("test_nll", None)
        log.info("resumed %s at step %d", self.checkpoint, self.step)

    def train_step(self) -> tuple[float, int]:
        lr = learning_rate(self.step, self.opts)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.sampler.batch(self.opts.batch_size, self.rng)
        x, y = x.to(self.device), y.to(self.device)
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            logits = self.model(x)
        loss = F.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=vocab.PAD)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.opts.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.item(), int((y != vocab.PAD).sum())

    def evaluate(self, split: str, cap: int | None) -> dict[str, float]:
        path = shard_path(self.opts.data_dir, split)
        return evaluate_nll(self.model, path, self.device, max_tokens_per_genre=cap) if path.is_file() else {}

    def build_meta(self, finished: bool) -> dict:
        meta = dict(self.meta)
        parent = meta.get("init")
        if parent:  # a warm start: totals over the whole lineage, this run's own figures beside them
            meta["steps_total"] = self.step + (parent.get("steps_total") or 0)
            meta["tokens_seen_total"] = self.tokens_seen + (parent.get("tokens_seen_total") or 0)
            meta["wall_time_s_total"] = round(self.wall_s + (parent.get("wall_time_s_total") or 0), 1)
        lengths = self.shard.lengths()[self.pieces]
        genres = self.shard.genre[self.pieces]
        meta.update({
            "config_name": self.opts.config,
            "position": "absolute" if self.opts.absolute else "relative",
            "n_params": self.model.n_params(),
            "steps": self.step, "max_steps": self.opts.max_steps, "finished": finished,
            "tokens_seen": self.tokens_seen, "wall_time_s": round(self.wall_s, 1),
            "hardware": {**hardware(str(self.device)), "precision": str(self.amp or torch.float32)},
            "command": self.opts.command,
            "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.opts).items()
                        if k in RUN_FIELDS},
            "data": {"dir": str(self.opts.data_dir), "sha256": self.data_hash,
                     "train_pieces": int(len(self.pieces)), "train_tokens": int(lengths.sum()),
                     "train_tokens_per_genre": {vocab.GENRES[g]: int(lengths[genres == g].sum())
                                                for g in range(len(vocab.GENRES)) if (genres == g).any()},
                     "excluded_licences": list(self.opts.exclude_licences),
                     "excluded_sources": list(self.opts.exclude_sources), **self._provenance()},
            "history": self.history,
            "saved_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        })
        return meta

    def _provenance(self) -> dict:
        """Pieces per licence class and per source among the training pieces (from pieces.jsonl)."""
        path = Path(self.opts.data_dir) / "pieces.jsonl"
        if not path.is_file():
            return {}
        rows = read_pieces(path)
        counts: dict[str, dict[str, int]] = {"licence_classes": {}, "sources": {}}
        for row in (rows[r] for r in self.shard.piece[self.pieces] if r < len(rows)):
            for key, field_name in (("licence_classes", "licence_class"), ("sources", "source")):
                value = str(row.get(field_name, "unknown"))
                counts[key][value] = counts[key].get(value, 0) + 1
        return counts

    def save(self, finished: bool = False) -> None:
        self.meta = self.build_meta(finished)
        train_state = {
            "step": self.step, "tokens_seen": self.tokens_seen, "wall_s": self.wall_s,
            "optimizer": self.optimizer.state_dict(),
            "numpy_rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "grad_scaler": self.scaler.state_dict(),
            "options": self.meta["options"],
        }
        save_checkpoint(self.checkpoint, self.model, self.meta, extra={"train": train_state})
        save_checkpoint(self.out / "model.pt", self.model, self.meta)

    def run(self, on_progress: Callable[[TrainProgress], None] | None = None) -> TrainResult:
        opts, report = self.opts, on_progress or (lambda p: None)
        budget_s = opts.minutes * 60 if opts.minutes is not None else math.inf
        started = last = time.perf_counter()
        stopped_by, loss, rate = "max_steps", float("nan"), 0.0
        with _Stop() as stop:
            while self.step < opts.max_steps:
                if stop.signal or time.perf_counter() - started >= budget_s:
                    stopped_by = stop.signal or "minutes"
                    break
                step_start = time.perf_counter()
                loss, n_tokens = self.train_step()
                self.step += 1
                self.tokens_seen += n_tokens
                rate = n_tokens / max(time.perf_counter() - step_start, 1e-9)
                report(TrainProgress(self.step, opts.max_steps, loss, rate, learning_rate(self.step - 1, opts)))
                if self.step % opts.eval_every == 0 or self.step == opts.max_steps:
                    nll = self.evaluate("valid", opts.eval_tokens_per_genre)
                    self.history.append({"step": self.step, "tokens_seen": self.tokens_seen,
                                         "train_loss": round(loss, 4), "valid_nll": nll})
                    report(TrainProgress(self.step, opts.max_steps, loss, rate, 0.0, "eval", nll))
                if self.step % opts.checkpoint_every == 0:
                    self.save()
                    report(TrainProgress(self.step, opts.max_steps, loss, rate, 0.0, "checkpoint"))
                now = time.perf_counter()
                self.wall_s, last = self.wall_s + now - last, now
        finished = self.step >= opts.max_steps
        if finished and "test_nll" not in self.meta:
            self.meta["valid_nll"] = self.evaluate("valid", None)
            self.meta["test_nll"] = self.evaluate("test", None)
        self.wall_s += time.perf_counter() - last
        self.save(finished)
        return TrainResult(self.checkpoint, self.out / "model.pt", self.step, finished, stopped_by, self.meta)


def train(opts: TrainOptions, on_progress: Callable[[TrainProgress], None] | None = None) -> TrainResult:
    """Train (or continue with opts.resume) until max_steps, the minutes budget or a signal."""
    return Trainer(opts).run(on_progress)
