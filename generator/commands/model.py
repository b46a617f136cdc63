"""`gen train` (train or continue a model) and `gen model info [CHECKPOINT]` (the model card facts).

The facts and their text live in generator/model/card.py; this module parses, calls and prints."""

from __future__ import annotations

import json
import shlex
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated

import typer

from generator.errors import InputError
from generator.paths import CORPUS_DIRS, DEFAULT_ENCODING

LICENCE_CLASSES = ("pd", "permissive", "copyleft", "none", "synthetic")


class ConfigName(StrEnum):
    small = "small"
    tiny = "tiny"


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("train")(train)
    model_app.command("info")(info)


def _licences(text: str) -> tuple[str, ...]:
    names = _names(text)
    for name in names:
        if name not in LICENCE_CLASSES:
            raise InputError(f"--exclude-licence: {name!r} is not a licence class; use some of "
                             f"{', '.join(LICENCE_CLASSES)} separated by commas")
    return names


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def train(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(
        "--data", help="Corpus folder with shards/{train,valid,test}.npz and pieces.jsonl; its encoding is the "
        "model's.")] = CORPUS_DIRS[DEFAULT_ENCODING],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoint.pt (resumable) and model.pt "
                                      "(the model to ship).")] = Path("models/run"),
    config: Annotated[ConfigName, typer.Option("--config", help="Model size.")] = ConfigName.small,
    absolute: Annotated[bool, typer.Option("--absolute", help="Ablation baseline: absolute positions, "
                                           "no relative attention, same size.")] = False,
    device: Annotated[Device, typer.Option("--device", help="Train on the CPU or a CUDA GPU "
                                           "(bf16/fp16 autocast).")] = Device.cpu,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Total optimizer steps of the run "
                                           "(the learning-rate schedule ends here).")] = 2000,
    minutes: Annotated[float | None, typer.Option("--minutes", min=0.0, help="Stop (and save) after this "
                                                     "many minutes; continue later with --resume.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue OUT/checkpoint.pt if it exists (same step, "
                                         "optimizer, RNG and run options); start a new run otherwise.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Windows per step.")] = 8,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak AdamW learning rate.")] = 1e-3,
    warmup_steps: Annotated[int, typer.Option("--warmup-steps", min=1, help="Linear warm-up steps before "
                                              "the cosine decay.")] = 200,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1, help="Save every N steps "
                                                  "(a killed run loses at most N).")] = 100,
    eval_every: Annotated[int, typer.Option("--eval-every", min=1, help="Validation NLL per genre every "
                                            "N steps.")] = 250,
    eval_tokens: Annotated[int, typer.Option("--eval-tokens", min=0, help="Tokens per genre for the evaluations "
                                             "during training (0: all); the final one uses all.")] = 20_000,
    exclude_licence: Annotated[str, typer.Option("--exclude-licence", help="Licence classes to leave out of "
                                                 "training, comma-separated, e.g. copyleft,none.")] = "",
    exclude_source: Annotated[str, typer.Option("--exclude-source", help="Sources to leave out of training, "
                                                "comma-separated, as `gen data prepare --limit` names them "
                                                "(the part of a piece id before '/'), e.g. pop-mma.")] = "",
    context: Annotated[int | None, typer.Option("--context", min=16, max=8192, help="Context length in tokens "
                                                "(default: the config's, 512 for small; or the --init "
                                                "checkpoint's). Longer than --init's: its relative embeddings "
                                                "keep the distances it knew.")] = None,
    init: Annotated[Path | None, typer.Option("--init", help="Warm start: begin from this checkpoint's "
                                                 "weights and config (a fresh optimizer and schedule); the "
                                                 "card records it as the parent.")] = None,
    genre_dropout: Annotated[float, typer.Option("--genre-dropout", min=0.0, max=0.5, help="Share of windows "
                                                 "trained without their genre token (NO_GENRE prefix), so "
                                                 "the model can also predict unconditioned: what genre "
                                                 "guidance at sampling contrasts with.")] = 0.0,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Random transposition -3..+3 and "
                                          "time stretch 0.95-1.05.")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the weights and the window sampling.")] = 0,
    precision: Annotated[Precision, typer.Option("--precision", help="Autocast precision; auto: bf16 on GPUs "
                                                 "and on CPUs with native bf16 (AMX), else fp32.")] = Precision.auto,
    threads: Annotated[int, typer.Option("--threads", min=1, help="CPU threads for torch. One ran 2.5x faster "
                                         "than two on the shared 2-core machine; raise it on a dedicated "
                                         "multi-core one.")] = 1,
) -> None:
    """Train a Music Transformer on the token shards, in resumable chunks; print where it was saved."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from generator.model.train import TrainOptions
    from generator.model.train import train as run_training

    opts = TrainOptions(
        data_dir=data, out_dir=out, config=config.value, context=context, absolute=absolute, device=device.value,
        batch_size=batch_size, lr=lr, warmup_steps=warmup_steps, max_steps=max_steps, minutes=minutes,
        checkpoint_every=checkpoint_every, eval_every=eval_every, eval_tokens_per_genre=eval_tokens or None,
        exclude_licences=_licences(exclude_licence), exclude_sources=_names(exclude_source),
        init=str(init) if init else None, augment=augment, genre_dropout=genre_dropout, resume=resume, seed=seed,
        threads=threads, precision=precision.value,
        command=_command_line(ctx),
    )
    console = Console(stderr=True)
    columns = (TextColumn("train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.3f}"), TextColumn("{task.fields[rate]:,.0f} tok/s"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=max_steps, loss=float("nan"), rate=0.0)

        def on_progress(p) -> None:
            if p.event == "step":
                progress.update(task, completed=p.step, loss=p.loss, rate=p.tokens_per_s)
            elif p.event == "eval":
                scores = "  ".join(f"{genre} {nll:.3f}" for genre, nll in p.valid_nll.items())
                progress.console.print(f"step {p.step}: valid NLL {scores}")
            elif p.event == "checkpoint" and not console.is_terminal:  # a log file gets no live bar
                progress.console.print(f"step {p.step}/{p.max_steps}: loss {p.loss:.3f}, "
                                       f"{p.tokens_per_s:,.0f} tok/s, checkpoint saved")

        result = run_training(opts, on_progress)
    state = "finished" if result.finished else f"stopped ({result.stopped_by})"
    console.print(f"{state} at step {result.step}/{max_steps}; resume with --resume" if not result.finished
                  else f"{state} at step {result.step}")
    typer.echo(str(result.model_path))
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        raise typer.Exit(130 if result.stopped_by == "SIGINT" else 143)


def _command_line(ctx: typer.Context) -> str:
    """`gen train` plus the options given on the command line (defaults omitted), for the model card."""
    words = ["gen", "train"]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)  # typer vendors click: compare by name
        if getattr(source, "name", None) != "COMMANDLINE":
            continue
        value = ctx.params[param.name]
        value = value.value if isinstance(value, Enum) else value
        if getattr(param, "is_flag", False) and param.secondary_opts:
            words.append(param.opts[0] if value else param.secondary_opts[0])
        elif getattr(param, "is_flag", False):
            words.append(param.opts[0])
        else:
            words += [param.opts[0], str(value)]
    return shlex.join(words)


def info(
    checkpoint: Annotated[Path | None, typer.Argument(help="Checkpoint file (ours or a Sber-format "
                                                         "state_dict). Default: the shipped model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Print the model card facts stored in a checkpoint: architecture, size, training, data, scores."""
    from generator.model.card import card_facts, card_lines
    from generator.paths import SHIPPED_CHECKPOINT

    facts = card_facts(checkpoint or SHIPPED_CHECKPOINT)
    if as_json:
        typer.echo(json.dumps(facts, indent=1))
        return
    for line in card_lines(facts):
        typer.echo(line)
