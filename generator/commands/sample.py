"""`gen sample`: one MIDI file from a checkpoint (ours or Sber-format), optionally continuing a primer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("sample")(sample)


def sample(
    genre: Annotated[str, typer.Option("--genre", help="classic, jazz, calm (ambient) or pop.")],
    out: Annotated[Path, typer.Option("--out", help="MIDI file to write (atomically).")],
    seconds: Annotated[float, typer.Option("--seconds", help="Length of the track in seconds of music.")] = 60.0,
    primer: Annotated[Path | None, typer.Option("--primer", help="MIDI file to continue from.")] = None,
    primer_seconds: Annotated[float, typer.Option("--primer-seconds", help="Seconds of the primer to use.")] = 15.0,
    primer_from_end: Annotated[bool, typer.Option("--primer-from-end", help="Use the primer's last seconds, not its first.")] = False,
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Model checkpoint (default: the shipped model).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same track.")] = 0,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    ending: Annotated[str, typer.Option("--ending", help="ring (last notes ring) or fade (the renderer fades).")] = "ring",
    temperature: Annotated[float, typer.Option("--temperature", help="Sampling temperature (1 = the model's own).")] = 1.0,
    top_k: Annotated[int, typer.Option("--top-k", help="Keep the k most likely tokens (0 = off).")] = 0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus: smallest set with this much probability (1 = off).")] = 1.0,
    topp_temperature: Annotated[float, typer.Option("--topp-temperature", help="Temperature of the distribution the nucleus is cut from.")] = 1.0,
    at_least_k: Annotated[int, typer.Option("--at-least-k", help="Always keep the k most likely tokens.")] = 1,
    rp_penalty: Annotated[float, typer.Option("--rp-penalty", help="Repetition penalty per repeated note (0 = off; Sber used 0.05).")] = 0.0,
    rp_restore_speed: Annotated[float, typer.Option("--rp-restore-speed", help="Penalty restored per second of music.")] = 0.7,
    beam_width: Annotated[int, typer.Option("--beam-width", help="Beam search width (1 = sampling); for short continuations.")] = 1,
    length_penalty: Annotated[float, typer.Option("--length-penalty", help="Beam score = log p / length ** this.")] = 1.0,
    sber_compatible: Annotated[bool, typer.Option("--sber-compatible", "--seed-compatible", help="Filter in Sber's exact order.")] = False,
    genre_guidance: Annotated[float, typer.Option("--genre-guidance", help="Classifier-free genre guidance: push each step away from the model's unconditioned prediction by this much (0 = off; needs a model trained with --genre-dropout; twice the model work).")] = 0.0,
) -> None:
    """Sample one track to a MIDI file."""
    from generator.tokens import vocab
    from generator.errors import GeneratorError, InputError
    from generator.sampling.filters import SamplingParams

    try:
        vocab.canonical_genre(genre)
    except KeyError:
        raise InputError(f"--genre '{genre}' is unknown: use one of {', '.join(vocab.GENRES)} "
                         f"(or {', '.join(vocab.GENRE_ALIASES)})") from None
    params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, topp_temperature=topp_temperature,
                            at_least_k=at_least_k, rp_penalty=rp_penalty, rp_restore_speed=rp_restore_speed,
                            beam_width=beam_width, length_penalty=length_penalty, sber_compatible=sber_compatible,
                            genre_guidance=genre_guidance)
    if device != "cpu" and not device.startswith("cuda"):
        raise GeneratorError(f"--device {device!r}: use cpu or cuda")

    import torch

    from generator.model.checkpoint import load_checkpoint
    from generator.paths import SHIPPED_CHECKPOINT
    from generator.sampling.loops import LoopLimits, release_after_s
    from generator.sampling.generate import GenerationRequest, generate
    from generator.sampling.primer import primer_from_midi
    from generator.tokens.tokenizer import ids_to_midi

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GeneratorError(f"--device {device}: no CUDA GPU is visible here; use --device cpu")
    model, _ = load_checkpoint(checkpoint or SHIPPED_CHECKPOINT, map_location=device)
    primer_ids = () if primer is None else primer_from_midi(primer, primer_seconds, primer_from_end,
                                                            encoding=model.encoding)
    request = GenerationRequest(genre, seed, seconds, params, primer_ids, ending,
                                max_note_s=release_after_s(LoopLimits.for_genre(genre), genre))
    result = generate(model, [request], device=device, batch_size=1)[0]
    _write_midi(ids_to_midi(result.ids), out)
    typer.echo(f"wrote {out}: {result.duration_s:.2f} s, {result.tokens_generated} new tokens, "
               f"stop {result.stop_reason}, {result.wall_s:.1f} s")


def _write_midi(pm, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        pm.write(str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
