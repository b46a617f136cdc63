"""The sampling spec (generator/sampling/params.py) is the only list of sampling parameters: the
recipe section, the plan, `gen sample`, `gen eval` and the docs' tables all follow it."""

import dataclasses
import re
from typing import Annotated

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from cli import app
from generator.commands._sampling_options import option_names, sampling_options
from generator.errors import InputError
from generator.library.plan import plan_tracks
from generator.library.recipe import PROJECT_ROOT, Sampling, parse_recipe
from generator.sampling.params import SamplingParams, drawn_fields, field_spec, spec_fields

NAMES = [f.name for f in spec_fields()]
DEFAULTS = SamplingParams()


def test_the_spec_describes_every_field():
    # The field order is the draw order: test_recipe pins a ranged recipe's drawn values.
    for f in spec_fields():
        spec = field_spec(f)
        assert spec.help.endswith(".") and spec.example, f.name
        if spec.drawn:
            assert spec.lo is not None and spec.hi is not None and spec.example_range, f.name
            assert spec.lo <= getattr(DEFAULTS, f.name) <= spec.hi, f.name


def test_the_recipe_section_has_the_spec_fields_and_defaults():
    assert list(Sampling.model_fields) == [*NAMES, "primer"]
    section = Sampling()
    for f in spec_fields():
        default = getattr(DEFAULTS, f.name)
        assert getattr(section, f.name) == ((default, default) if field_spec(f).drawn else default), f.name


def test_the_recipe_section_uses_the_spec_bounds():
    for f in drawn_fields():
        spec = field_spec(f)
        too_high = spec.hi + 1
        with pytest.raises(InputError, match=rf"sampling\.{f.name}: .* is outside"):
            parse_recipe(f"name: x\ngenres: {{jazz: 1}}\nsampling:\n  {f.name}: {too_high}\n",
                         check_files=False)
        with pytest.raises(InputError, match=f"'{f.name}'"):
            SamplingParams(**{f.name: too_high})


def test_a_recipe_without_sampling_plans_the_spec_defaults():
    plans = plan_tracks(parse_recipe("name: x\ngenres: {jazz: 3}\n", check_files=False))
    assert [p.sampling for p in plans] == [DEFAULTS] * 3


def _options(command_name):
    command = typer.main.get_command(app).commands[command_name]
    return {p.name: p for p in command.params}


@pytest.mark.parametrize("command_name", ["sample", "eval"])
def test_gen_sample_and_gen_eval_offer_every_spec_field_with_its_default_and_help(command_name):
    options = _options(command_name)
    assert set(NAMES) <= set(options)
    for f in spec_fields():
        option = options[f.name]
        assert option.opts + option.secondary_opts == option_names(f.name)
        assert option.help == field_spec(f).help
        default = getattr(DEFAULTS, f.name)
        assert (tuple(option.default) if isinstance(default, tuple) else option.default) == default
    help_text = CliRunner().invoke(app, [command_name, "--help"], env={"COLUMNS": "200"}).output
    for f in spec_fields():
        assert re.search(rf"{option_names(f.name)[0]}\b", help_text), f.name
    assert "--seed-compatible" in help_text


def test_generated_options_build_the_params_and_keep_the_old_names():
    seen = []
    demo = typer.Typer()

    @demo.command()
    @sampling_options
    def run(seconds: Annotated[float, typer.Option("--seconds", help="s")] = 1.0, *,
            params: SamplingParams) -> None:
        """Demo."""
        seen.append((seconds, params))

    runner = CliRunner()
    result = runner.invoke(demo, ["--seconds", "2", "--top-k", "5", "--seed-compatible", "--pitch-range", "30", "90"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == (2.0, dataclasses.replace(DEFAULTS, top_k=5, sber_compatible=True, pitch_range=(30, 90)))
    assert runner.invoke(demo, []).exit_code == 0 and seen[-1] == (1.0, DEFAULTS)
    bad = runner.invoke(demo, ["--top-p", "1.5"])
    assert isinstance(bad.exception, InputError)
    assert "sampling parameter 'top_p' = 1.5 is invalid: use a number in (0, 1] (1 = off)" in str(bad.exception)


def _default_text(value, *, yaml):
    if isinstance(value, bool):
        return str(value).lower() if yaml else str(value)
    if isinstance(value, tuple):
        return f"[{value[0]}, {value[1]}]" if yaml else f"({value[0]}, {value[1]})"
    return str(value)


def test_the_recipe_docs_table_matches_the_spec():
    doc = (PROJECT_ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    for f in spec_fields():
        spec, default = field_spec(f), _default_text(getattr(DEFAULTS, f.name), yaml=True)
        if spec.drawn:
            kind = "whole number" if spec.integer else "number"
            row = f"| `{f.name}` | {kind} or range, {spec.interval} | `{default}` |"
        else:
            row = f"| `{f.name}` | "
            assert re.search(rf"^\| `{f.name}` \| [^|]+ \| `{re.escape(default)}` \|", doc, re.M), f.name
        assert row in doc, row
    assert "`seed_compatible`" in doc  # the old name is documented


def test_the_sampling_docs_table_matches_the_spec():
    doc = (PROJECT_ROOT / "docs" / "sampling.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| (\w+) \| ([^|]+?) \|", doc.split("## Parameters")[1].split("\n## ")[0], re.M)
    rows = {name: default for name, default in table if name != "key"}
    assert list(rows) == NAMES
    for name in NAMES:
        assert rows[name].split(" (")[0] == _default_text(getattr(DEFAULTS, name), yaml=False), name
