"""`gen sample`: one MIDI file from a checkpoint (ours or Sber-format), optionally continuing a primer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from generator.commands._sampling_options import sampling_options
from generator.sampling.params import SamplingParams


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("sample")(sample)


@sampling_options
def sample(
    genre: Annotated[str, typer.Option("--genre", help="classic, jazz, calm (ambient) or pop.")],
    out: Annotated[Path, typer.Option("--out", help="MIDI file to write (atomically).")],
    seconds: Annotated[float, typer.Option("--seconds", help="Length of the track in seconds of music.")] = 60.0,
    primer: Annotated[Path | None, typer.Option("--primer", help="MIDI file to continue from.")] = None,
    primer_seconds: Annotated[float, typer.Option("--primer-seconds", help="Seconds of the primer to use.")] = 15.0,
    primer_from_end: Annotated[
        bool, typer.Option("--primer-from-end", help="Use the primer's last seconds, not its first."),
    ] = False,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Model checkpoint (default: the shipped model)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same track.")] = 0,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    ending: Annotated[
        str, typer.Option("--ending", help="ring (last notes ring) or fade (the renderer fades)."),
    ] = "ring",
    bpm: Annotated[
        float | None, typer.Option("--bpm", help="Tempo (beat-time models; default: the genre's).", min=20, max=300),
    ] = None,
    meter: Annotated[
        str | None, typer.Option("--meter", help="2/4, 3/4, 4/4, 6/8, 9/8 or 12/8 (beat-time models; default 4/4)."),
    ] = None,
    *,
    params: SamplingParams,
) -> None:
    """Sample one track to a MIDI file."""
    from generator.errors import InputError
    from generator.files import probe_writable, write_failure
    from generator.library.pipeline import check_device
    from generator.tokens import vocab

    try:
        vocab.canonical_genre(genre)
    except KeyError:
        raise InputError(f"--genre '{genre}' is unknown: use one of {', '.join(vocab.GENRES)} "
                         f"(or {', '.join(vocab.GENRE_ALIASES)})") from None
    check_device(device)
    if not primer_seconds > 0:
        raise InputError(f"--primer-seconds {primer_seconds}: use a number of seconds > 0")
    try:  # before sampling, which may take minutes
        probe_writable(out)
    except OSError as error:
        where = write_failure(error, out)
        raise InputError(f"--out {out}: {where}" if not where.startswith(f"{out}:") else f"--out {where}") from None

    from generator.model.checkpoint import load_checkpoint
    from generator.paths import SHIPPED_CHECKPOINT
    from generator.sampling.generate import GenerationRequest, generate, parse_meter
    from generator.sampling.loops import LoopLimits, release_after_s
    from generator.sampling.primer import primer_from_midi
    from generator.tokens.tokenizer import ids_to_midi

    model, _ = load_checkpoint(checkpoint or SHIPPED_CHECKPOINT, map_location=device)
    if (bpm is not None or meter is not None) and not model.encoding.has_bars:
        raise InputError(f"--bpm and --meter need a beat-time model; this one's encoding is "
                         f"{model.encoding.name!r}; fix: drop them or use a model trained on beat shards")
    primer_ids = () if primer is None else primer_from_midi(primer, primer_seconds, primer_from_end,
                                                            encoding=model.encoding)
    request = GenerationRequest(genre, seed, seconds, params, primer_ids, ending,
                                max_note_s=release_after_s(LoopLimits.for_genre(genre), genre),
                                bpm=bpm, meter=None if meter is None else parse_meter(meter, "--meter"))
    result = generate(model, [request], device=device, batch_size=1)[0]
    _write_midi(ids_to_midi(result.ids, encoding=model.encoding, bpm=result.bars.bpm if result.bars else None), out)
    typer.echo(f"wrote {out}: {result.duration_s:.2f} s, {result.tokens_generated} new tokens, "
               f"stop {result.stop_reason}, {result.wall_s:.1f} s")


def _write_midi(pm, out: Path) -> None:
    from generator.files import atomic_path

    with atomic_path(out) as tmp:
        pm.write(str(tmp))
