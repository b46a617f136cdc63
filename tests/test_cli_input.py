"""Bad CLI values exit 2 on every command, Ctrl-C and SIGTERM are `Error: interrupted` and exit 130, and the
recipe's loose ends (the track limit over genre counts, control characters in titles) are refused."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from delivered import leftovers
from generator.errors import RecipeError
from generator.library.recipe import load_recipe
from paths import CI_ENV
from test_pipeline import MIDI_ONLY, PERMISSIVE_LOOPS, tiny_checkpoint, write_recipe

__all__ = ["tiny_checkpoint"]  # a fixture used by name

ROOT = Path(__file__).resolve().parent.parent


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """The real entry point (cli.main) in this process: its exit code and stderr."""
    import cli

    monkeypatch.setattr(sys, "argv", ["gen", *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    return done.value.code, capsys.readouterr().err


BAD_VALUES = [
    ("batch", ["--limit", "0"], "--limit 0"),
    ("batch", ["--limit", "-1"], "--limit -1"),
    ("batch", ["--device", "tpu"], "--device 'tpu'"),
    ("batch", ["--shard", "0/3"], "--shard '0/3'"),
    ("sample", ["--device", "tpu"], "--device 'tpu'"),
    ("sample", ["--primer-seconds", "-1"], "--primer-seconds -1"),
    ("sample", ["--seconds", "0"], "duration_s"),
    ("sample", ["--temperature", "0"], "temperature"),
    ("sample", ["--genre", "polka"], "--genre 'polka'"),
    ("eval", ["--device", "tpu"], "--device 'tpu'"),
    ("eval", ["--genres", "polka"], "--genres"),
    ("data prepare", ["--max-minutes", "-1"], "--max-minutes"),
    ("data prepare", ["--timeout-s", "0"], "--timeout-s"),
]


@pytest.mark.parametrize(("command", "bad", "named"), BAD_VALUES,
                         ids=[f"{c} {' '.join(b)}" for c, b, _ in BAD_VALUES])
def test_a_bad_cli_value_exits_2_in_one_line(tmp_path, tiny_checkpoint, monkeypatch, capsys, command, bad, named):
    recipe = write_recipe(tmp_path, tiny_checkpoint, outputs=MIDI_ONLY)
    base = {
        "batch": ["batch", str(recipe), "--quiet"],
        "sample": ["sample", "--genre", "jazz", "--seconds", "1", "--checkpoint", str(tiny_checkpoint),
                   "--out", str(tmp_path / "x.mid")],
        "eval": ["eval", "--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path), "--quiet"],
        "data prepare": ["data", "prepare", "--out", str(tmp_path / "data"), "--shared", str(tmp_path), "--quiet"],
    }[command]
    args = list(base)
    for i in range(0, len(bad), 2):  # replace the base's own value of the option, if it has one
        if bad[i] in args:
            args[args.index(bad[i]) + 1] = bad[i + 1]
        else:
            args += bad[i:i + 2]
    code, stderr = run_main(monkeypatch, capsys, *args)
    assert code == 2, stderr
    assert stderr.count("Error:") == 1 and stderr.startswith("Error: ") and named in stderr, stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_during_a_batch_exits_130_and_leaves_no_lock_or_temp(tmp_path, tiny_checkpoint, sig):
    recipe = write_recipe(tmp_path, tiny_checkpoint, outputs=MIDI_ONLY, genres={"jazz": 64}, duration_s=600,
                          loops=PERMISSIVE_LOOPS)
    out = tmp_path / "out"
    # A shell starts background jobs with SIGINT ignored, and a child inherits that (Python then
    # keeps ignoring it): give gen the default disposition, as an interactive terminal would.
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "batch", str(recipe), "--quiet"], cwd=ROOT,
                            env=CI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not (out / ".gen.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # into the sampling of the first group (64 tracks of 10 minutes take far longer)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)  # generous: a loaded CI machine
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert stderr == "Error: interrupted\n"
    assert leftovers(out) == []  # a scheduler's SIGTERM used to leave `.gen.lock` in the library


def test_genre_counts_may_not_pass_the_track_limit(tmp_path, tiny_checkpoint):
    path = write_recipe(tmp_path, tiny_checkpoint, genres={"jazz": 6000, "pop": 5000})
    with pytest.raises(RecipeError, match=r"genres: the genre counts add up to 11000 tracks, more than 10000"):
        load_recipe(path, check_files=False)
    write_recipe(tmp_path, tiny_checkpoint, genres={"jazz": 6000, "pop": 4000})
    assert load_recipe(path, check_files=False).track_count == 10_000


@pytest.mark.parametrize("template", ["{n:c}", "{name} {n:c}", "{n}\u2028{genre}", "{n}\u202e"])
def test_a_title_template_that_makes_control_characters_is_refused(tmp_path, tiny_checkpoint, template):
    path = write_recipe(tmp_path, tiny_checkpoint, title_template=template)
    with pytest.raises(RecipeError, match="title_template: track 1's title .* holds the control character"):
        load_recipe(path, check_files=False)
