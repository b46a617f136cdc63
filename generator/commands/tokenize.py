"""`gen tokenize FILE.mid`: show the token ids (and their names) of a MIDI file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("tokenize")(tokenize)


def tokenize(
    file: Annotated[Path, typer.Argument(help="MIDI file to encode.", show_default=False)],
    sber_compatible: Annotated[
        bool,
        typer.Option(
            "--sber-compatible", "--seed-compatible",
            help="Use Sber's encoding (piano range, no INSTRUMENT tokens).",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (file, encoding, seconds, ids) instead of text.")
    ] = False,
) -> None:
    """Print the token ids of a MIDI file; without --json also their readable names."""
    from generator.tokens import tokenizer
    from generator.tokens.encoding import DEFAULT, SBER

    encoding = SBER if sber_compatible else DEFAULT
    ids = tokenizer.midi_to_ids(file, encoding=encoding)
    seconds = tokenizer.seconds_of(ids, encoding=encoding)
    if as_json:
        record = {"file": str(file), "encoding": encoding.name, "n_tokens": len(ids), "seconds": seconds, "ids": ids}
        typer.echo(json.dumps(record))
        return
    typer.echo(f"# {file}: {len(ids)} tokens, {seconds:.2f} s of music, {encoding.name} encoding")
    typer.echo(" ".join(map(str, ids)))
    typer.echo(" ".join(tokenizer.names(ids, encoding=encoding)))
