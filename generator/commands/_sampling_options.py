"""One typer option per sampling parameter, generated from the spec (generator/sampling/params.py).

`@sampling_options` gives a command `--temperature`, `--top-k`, ... `--sber-compatible` (old names
kept as aliases), each with the spec's help and default, and hands the command one validated
`params: SamplingParams` instead of a dozen arguments. `gen sample` and `gen eval` share it, so
they offer the same parameters with the same defaults as a recipe. Not a command module itself.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer

from generator.sampling.params import SamplingParams, field_spec, spec_fields

PANEL = "Sampling (defaults as in a recipe; see docs/sampling.md)"


def option_names(name: str) -> list[str]:
    """`--top-k` for the field top_k, then its old names."""
    return [f"--{n.replace('_', '-')}" for n in (name, *field_spec(name).aliases)]


def sampling_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Replace the command's `params: SamplingParams` argument by one option per spec field."""
    hints = typing.get_type_hints(command, include_extras=True)
    signature = inspect.signature(command)
    own = [p.replace(annotation=hints[p.name]) for p in signature.parameters.values() if p.name != "params"]
    assert "params" in signature.parameters, "the command takes the SamplingParams as `params`"
    types = typing.get_type_hints(SamplingParams)
    defaults = SamplingParams()
    added = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, f.name),
                          annotation=Annotated[_cli_type(types[f.name]), typer.Option(
                              *option_names(f.name), help=field_spec(f).help, rich_help_panel=PANEL)])
        for f in spec_fields()
    ]

    @functools.wraps(command)
    def run(**kwargs: Any) -> Any:
        values = {f.name: kwargs.pop(f.name) for f in spec_fields()}
        if values["pitch_range"] is not None:
            values["pitch_range"] = tuple(values["pitch_range"])
        return command(**kwargs, params=SamplingParams(**values))

    parameters = own + added
    run.__signature__ = signature.replace(parameters=parameters)  # what typer reads
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    del run.__wrapped__  # typer must see the generated options, not the original arguments
    return run


def _cli_type(hint: Any) -> Any:
    """The option's type: `X | None` becomes X (pitch_range is given as two numbers)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if type(None) in typing.get_args(hint) and len(args) == 1 else hint
