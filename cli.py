"""The `gen` command line: parse, call the library, draw progress, map errors to exit codes.

Heavy libraries (torch, audio) are imported inside the commands so `gen --help` stays instant.
Each area's commands live in generator/commands/<area>.py and register themselves on `app`.
"""

from __future__ import annotations

import sys

import typer

from generator.audio.fluid import preload_fluidsynth
from generator.errors import GeneratorError

app = typer.Typer(
    name="gen",
    help="Batch generator of royalty-free music libraries.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Prepare the training corpus.", no_args_is_help=True)
model_app = typer.Typer(help="Inspect checkpoints.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(model_app, name="model")

from generator.commands import register_all  # noqa: E402

register_all(app, data_app, model_app)


def main() -> None:
    """Console entry point: library errors become `Error: ...` and their exit code."""
    preload_fluidsynth()
    try:
        app()
    except GeneratorError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
