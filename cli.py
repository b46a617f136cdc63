"""The `gen` command line: parse, call the library, draw progress, map errors to exit codes.

Heavy libraries (torch, audio) are imported inside the commands so `gen --help` stays instant.
Each area's commands live in generator/commands/<area>.py and register themselves on `app`.
"""

from __future__ import annotations

import signal
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
    """Console entry point: library errors become `Error: ...` and their exit code; Ctrl-C (or
    SIGTERM) is `Error: interrupted`, exit 130; a failed write (full disk, unwritable folder) is one
    line, exit 1."""
    preload_fluidsynth()
    _terminate_like_ctrl_c()
    try:
        app()
    except GeneratorError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as done:
        # typer turns Ctrl-C into a silent exit 130 (typer.core: `except KeyboardInterrupt: raise Exit(130)`).
        if _caused_by_ctrl_c(done):
            _interrupted()
        raise
    except OSError as error:
        from generator.files import write_failure

        print(f"Error: {write_failure(error)}", file=sys.stderr)
        sys.exit(1)


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (a scheduler's pre-emption, `timeout`, `kill`) ends a command as Ctrl-C does: every
    `with` unwinds, so the output lock, temp files and staging folders go with it instead of
    staying in the library. Left alone where the parent made gen ignore SIGTERM."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _caused_by_ctrl_c(error: BaseException) -> bool:
    """Whether a KeyboardInterrupt is in the exception's chain (SystemExit <- Exit(130) <- it)."""
    seen = error.__cause__ or error.__context__
    for _ in range(8):  # a short chain; the bound guards against a cycle
        if seen is None or isinstance(seen, KeyboardInterrupt):
            break
        seen = seen.__cause__ or seen.__context__
    return isinstance(seen, KeyboardInterrupt)


def _interrupted() -> None:
    print("Error: interrupted", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
    main()
