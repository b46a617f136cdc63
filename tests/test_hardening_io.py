"""Hostile files and folders: nothing written outside the output folder, every read bounded.

Each `gen` run is a subprocess with a timeout (a hang fails the test), and each refusal is exit
code 2 with exactly one `Error:` line and no traceback.
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator import files
from generator.files import FileRefused, atomic_write_text, install_folder, read_bytes_bounded
from generator.library.folders import refusal
from html_page import parse
from paths import CI_ENV
from test_pipeline import MIDI_ONLY, tiny_checkpoint, write_recipe  # noqa: F401  (tiny_checkpoint: a fixture)

ROOT = Path(__file__).resolve().parent.parent


def gen(*args: str, timeout: float = 120, memory_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limit_memory():
        if memory_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env=CI_ENV, timeout=timeout, preexec_fn=limit_memory)


def refused(result: subprocess.CompletedProcess, code: int = 2, *words: str) -> str:
    """The one Error line of a run that exited with `code`; no traceback."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0]
    return errors[0]


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder` (links not followed): bytes of files, targets of links."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        found[key] = f"-> {os.readlink(path)}" if path.is_symlink() else (path.read_bytes() if path.is_file() else "/")
    return found


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the output that gen must never touch, holding a precious file."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "important").write_text("precious\n")
    return folder


@pytest.fixture
def dummy_recipe(tmp_path) -> Path:
    """A valid MIDI-only recipe whose model is not a checkpoint: fine for runs refused before sampling."""
    model = tmp_path / "model.pt"
    model.write_bytes(b"not a checkpoint")
    return write_recipe(tmp_path, model, outputs=MIDI_ONLY)


# --- 1. no write outside the output folder ------------------------------------------------------

def test_a_symlinked_lock_is_never_written_through(tmp_path, outside, dummy_recipe):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".gen.lock").symlink_to(outside / "important")
    before = snapshot(outside)
    line = refused(gen("batch", str(dummy_recipe), "--quiet"), 2, ".gen.lock", "symbolic link")
    assert "Remove it" in line
    assert snapshot(outside) == before
    assert (out / ".gen.lock").is_symlink()


@pytest.mark.parametrize("kind", ["folder", "fifo", "hard link"])
def test_a_lock_that_is_not_a_regular_file_is_refused(tmp_path, outside, dummy_recipe, kind):
    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".gen.lock"
    if kind == "folder":
        lock.mkdir()
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        os.link(outside / "important", lock)
    before = snapshot(outside)
    word = {"folder": "a folder", "fifo": "FIFO", "hard link": "hard link"}[kind]
    refused(gen("batch", str(dummy_recipe), "--quiet", timeout=60), 2, ".gen.lock", word)
    assert snapshot(outside) == before


def test_a_device_as_lock_is_refused_without_opening_it(tmp_path):
    from generator.errors import InputError
    from generator.library.lock import OutputLock

    out = tmp_path / "out"
    out.mkdir()
    try:
        os.mknod(out / ".gen.lock", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    except PermissionError:
        pytest.skip("making a device node needs privileges this machine does not give")
    with pytest.raises(InputError, match="character device"):
        with OutputLock(out):
            pass


@pytest.mark.parametrize("where", ["/", "/etc", "/proc/self", "/usr/share/x", "/tmp", "a file", "home"])
def test_output_folders_gen_must_not_write_to_are_refused(tmp_path, dummy_recipe, where):
    if where == "a file":
        target = tmp_path / "file"
        target.write_text("mine\n")
    elif where == "home":
        target = Path.home()
    else:
        target = Path(where)
    written = [target / name for name in (".gen.lock", "manifest.json", "index.html")]
    before = [p.exists() for p in written] if target.is_dir() else None
    refused(gen("batch", str(dummy_recipe), "--quiet", "--out", str(target)), 2, "output folder")
    with_output = write_recipe(tmp_path, tmp_path / "model.pt", outputs=MIDI_ONLY, output=str(target))
    refused(gen("validate", str(with_output)), 2, "output:")
    refused(gen("batch", str(with_output), "--quiet"), 2, "output:")
    if before is not None:
        assert [p.exists() for p in written] == before  # no lock, manifest or catalogue made there
    elif where == "a file":
        assert target.read_text() == "mine\n"
    else:
        assert not target.exists()


def test_refused_and_allowed_folders(monkeypatch):
    for path in ("/", "/etc", "/etc/x", "/usr/local/lib/x", "/var", "/var/lib/x", "/var/tmp", "/tmp", "/home",
                 "/srv", "/dev/shm/x", "/sys/x", "/run/user/1000/x", "/boot/x", "/lib/x"):
        assert refusal(path) is not None, path
    for path in ("/srv/music", "/tmp/x", "/tmp/x/y", "/var/tmp/lib", "/var/www/html", "/mnt/disk/lib",
                 "/opt/gen/out"):
        assert refusal(path) is None, path
    home = Path.home().resolve()
    if len(home.parts) > 2:
        assert refusal(home) is not None and refusal(home.parent) is not None
        assert refusal(home / "music") is None
    monkeypatch.setenv("HOME", "/var/lib/jenkins")  # a service account's home inside /var
    assert refusal("/var/lib/jenkins/workspace/out") is None
    assert refusal("/var/lib/jenkins") is not None and refusal("/var/lib/other") is not None
    assert refusal("/usr/src/app/output/cafe") is None  # the usual container checkout
    monkeypatch.chdir("/")
    assert refusal("/var/lib/ci/build/job/output") is not None


def test_a_project_checked_out_in_a_system_tree_may_build_inside_itself(monkeypatch, tmp_path):
    import generator.library.folders as folders

    monkeypatch.setattr(folders, "_working_folder", lambda: PurePosixPath("/var/lib/ci/build/job"))
    assert refusal("/var/lib/ci/build/job/output/cafe_jazz") is None
    assert refusal("/var/lib/ci/build/other") is not None
    monkeypatch.setattr(folders, "_working_folder", lambda: PurePosixPath("/etc"))  # too shallow to count
    assert refusal("/etc/x") is not None


def test_a_symlinked_track_folder_is_replaced_not_written_through(tmp_path, outside):
    out = tmp_path / "out"
    staging = out / ".partial-x"
    staging.mkdir(parents=True)
    (staging / "x.mid").write_bytes(b"new")
    (out / "x").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    install_folder(staging, out / "x")
    assert not (out / "x").is_symlink() and (out / "x" / "x.mid").read_bytes() == b"new"
    assert snapshot(outside) == before
    assert sorted(p.name for p in out.iterdir()) == ["x"]  # no .old-* link left behind
    (out / "y").symlink_to(tmp_path / "missing")  # a dangling link in the way
    staging.mkdir()
    install_folder(staging, out / "y")
    assert (out / "y").is_dir() and not (out / "y").is_symlink()


def test_the_atomic_writer_replaces_a_link_instead_of_following_it(tmp_path, outside):
    link = tmp_path / "manifest.json"
    link.symlink_to(outside / "important")
    atomic_write_text(link, "{}")
    assert not link.is_symlink() and link.read_text() == "{}"
    assert (outside / "important").read_text() == "precious\n"


def test_the_catalogue_refuses_system_folders(tmp_path):
    for args in (["/"], ["/etc"], ["/proc/self"], [str(tmp_path), "--out", "/etc"], [str(Path.home())]):
        refused(gen("catalogue", *args), 2, "folder")


# --- 2. bounded reads -----------------------------------------------------------------------------

def test_validate_dev_zero_fails_fast_in_bounded_memory():
    started = time.monotonic()
    refused(gen("validate", "/dev/zero", timeout=60, memory_bytes=4 << 30), 2, "/dev/zero", "not a regular file")
    assert time.monotonic() - started < 60


def test_a_fifo_recipe_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "recipe.yaml"
    os.mkfifo(fifo)
    refused(gen("validate", str(fifo), timeout=60), 2, "named pipe")
    refused(gen("batch", str(fifo), "--quiet", timeout=60), 2, "named pipe")


def test_a_huge_recipe_is_refused(tmp_path):
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:
        handle.truncate(10 << 30)  # sparse: 10 GiB reported, nothing stored
    refused(gen("validate", str(huge), timeout=60, memory_bytes=4 << 30), 2, "larger than 1 MiB")


def _days_long_midi(path: Path) -> Path:
    import mido

    midi = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=16_777_215, time=0))  # 16.8 s per beat
    track.append(mido.Message("note_on", note=60, velocity=80, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=96 * 50_000))  # ~9.7 days later
    midi.save(str(path))
    return path


def test_tokenize_refuses_a_tiny_midi_that_spans_days(tmp_path):
    midi = _days_long_midi(tmp_path / "days.mid")
    assert midi.stat().st_size < 600
    result = gen("tokenize", str(midi), "--json", timeout=60)
    refused(result, 2, "days.mid", "2 h")
    assert result.stdout == ""


@pytest.mark.parametrize("kind", ["fifo", "dev-zero link", "folder"])
def test_tokenize_and_model_info_refuse_files_that_are_not_regular(tmp_path, kind):
    path = tmp_path / "x.mid"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    refused(gen("tokenize", str(path), timeout=60), 2, "not a regular file")
    refused(gen("model", "info", str(path), timeout=60), 2, "not a regular file")


def test_a_fifo_as_model_or_primer_is_refused_without_waiting(tmp_path, tiny_checkpoint):  # noqa: F811
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)
    as_model = write_recipe(tmp_path, fifo, outputs=MIDI_ONLY)
    refused(gen("validate", str(as_model), timeout=60), 2, "model", "named pipe")
    as_primer = write_recipe(tmp_path, tiny_checkpoint, outputs=MIDI_ONLY,
                             sampling={"primer": {"path": str(fifo)}})
    refused(gen("validate", str(as_primer), timeout=60), 2, "primer", "named pipe")
    refused(gen("sample", "--genre", "jazz", "--seconds", "2", "--out", str(tmp_path / "x.mid"), "--checkpoint",
                str(tiny_checkpoint), "--primer", str(fifo), timeout=120), 2, "pipe.mid", "named pipe")
    assert not (tmp_path / "x.mid").exists()


def test_a_checkpoint_larger_than_the_limit_is_refused(tmp_path, monkeypatch):
    from generator.errors import CheckpointError
    from generator.model import checkpoint

    big = tmp_path / "big.pt"
    big.write_bytes(b"\0" * 2048)
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", 1024)
    with pytest.raises(CheckpointError, match="larger than the limit of 1 KiB"):
        checkpoint.read_checkpoint(big)


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_checkpoint) -> Path:  # noqa: F811
    """A finished MIDI-only library of three tracks, built once; tests work on copies."""
    root = tmp_path_factory.mktemp("library")
    recipe = write_recipe(root, tiny_checkpoint, duration_s=2, outputs=MIDI_ONLY)
    result = gen("batch", str(recipe), "--quiet", timeout=300)
    assert result.returncode == 0, result.stderr
    return root


def copy_library(library: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(recipe, output folder) of a fresh copy of the library, its recipe writing into the copy."""
    shutil.copytree(library / "out", tmp_path / "out", symlinks=True)
    text = (library / "recipe.yaml").read_text().replace(str(library / "out"), str(tmp_path / "out"))
    (tmp_path / "recipe.yaml").write_text(text)
    return tmp_path / "recipe.yaml", tmp_path / "out"


def test_the_catalogue_skips_pipes_devices_and_links_named_json(library, tmp_path, outside):
    recipe, out = copy_library(library, tmp_path)
    os.mkfifo(out / "pipe.json")
    (out / "zero.json").symlink_to("/dev/zero")
    real = next(out.glob("*/*.json"))
    shutil.copy(real, outside / "elsewhere.json")
    (out / "linked.json").symlink_to(outside / "elsewhere.json")
    before = snapshot(outside)
    result = gen("catalogue", str(out), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert len(parse(out / "index.html").cards) == 3
    result = gen("batch", str(recipe), "--quiet", timeout=120)  # builds the catalogue under the lock
    assert result.returncode == 0, result.stderr
    assert snapshot(outside) == before


def test_a_manifest_that_is_a_link_or_a_pipe_is_not_followed(library, tmp_path, outside):
    # Refused like a lock that is not gen's own: one line, exit 2, nothing read or written through it.
    recipe, out = copy_library(library, tmp_path)
    (out / "manifest.json").unlink()
    (out / "manifest.json").symlink_to(outside / "important")
    before = snapshot(outside)
    result = gen("batch", str(recipe), "--quiet", timeout=300)
    refused(result, 2, "manifest.json", "not a regular file")
    assert snapshot(outside) == before
    assert (out / "manifest.json").is_symlink()
    (out / "manifest.json").unlink()
    os.mkfifo(out / "manifest.json")
    result = gen("batch", str(recipe), "--quiet", timeout=300)
    refused(result, 2, "manifest.json", "not a regular file")
    (out / "manifest.json").unlink()
    result = gen("batch", str(recipe), "--quiet", timeout=300)  # removed: rebuilt from the sidecars
    assert result.returncode == 0, result.stderr
    assert (out / "manifest.json").is_file()


def test_leftover_temp_files_are_cleaned_when_a_run_takes_the_lock(library, tmp_path, outside):
    recipe, out = copy_library(library, tmp_path)
    finished = snapshot(out)
    leftovers = [".manifest.json.0123abcd.tmp.json", ".index.html.89abcdef.tmp.html"]
    for name in leftovers:
        (out / name).write_text("half a fi")
    keep = [".notes.tmp", "draft.0123abcd.tmp", ".x.json.0123abcd.tmp"]  # not names gen makes
    for name in keep:
        (out / name).write_text("mine")
    (out / ".y.json.fedcba98.tmp.json").symlink_to(outside / "important")  # a link: left alone
    result = gen("batch", str(recipe), "--quiet", timeout=120)
    assert result.returncode == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert not names & set(leftovers)
    assert set(keep) | {".y.json.fedcba98.tmp.json"} <= names
    assert (outside / "important").read_text() == "precious\n"
    now = snapshot(out)
    assert all(now[k] == v for k, v in finished.items() if k.endswith(".mid"))  # nothing finished lost


# --- the bounded reader over file kinds -----------------------------------------------------------

KINDS = ["regular", "empty", "huge", "fifo", "link to regular", "dangling link", "folder", "link to /dev/zero"]


def make(path: Path, kind: str, size: int) -> bytes | None:
    """Create `path` as `kind`; the bytes a reader should return if it reads it at all."""
    data = bytes(i % 251 for i in range(size))
    if kind == "regular":
        path.write_bytes(data)
        return data
    if kind == "empty":
        path.write_bytes(b"")
        return b""
    if kind == "huge":
        with open(path, "wb") as handle:
            handle.truncate(1 << 40)  # sparse: a TiB reported
        return None
    if kind == "fifo":
        os.mkfifo(path)
        return None
    if kind == "link to regular":
        target = path.with_name(path.name + ".target")
        target.write_bytes(data)
        path.symlink_to(target)
        return data
    if kind == "dangling link":
        path.symlink_to(path.with_name("missing"))
        return None
    if kind == "folder":
        path.mkdir()
        return None
    path.symlink_to("/dev/zero")
    return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), size=st.integers(0, 3000), limit=st.integers(0, 2048),
       follow=st.booleans())
def test_the_bounded_reader_reads_only_small_regular_files(tmp_path_factory, kind, size, limit, follow):
    path = tmp_path_factory.mktemp("kinds") / "f.json"
    expected = make(path, kind, size)
    if kind == "link to regular" and not follow:
        expected = None
    fits = expected is not None and len(expected) <= limit
    try:
        got = read_bytes_bounded(path, limit, "sidecar", follow_links=follow)
    except FileRefused as error:
        assert not fits
        assert str(path) in str(error) and ("not a regular file" in error.problem or "larger than" in error.problem)
    except FileNotFoundError:
        assert kind == "dangling link" and follow
    else:
        assert fits and got == expected


def test_temp_names_are_exactly_the_writers_own(tmp_path):
    with files.atomic_path(tmp_path / "index.html") as tmp:
        assert files.is_temp_name(tmp.name)
    with files.atomic_path(tmp_path / "README") as tmp:
        assert files.is_temp_name(tmp.name)
    for name in ("index.html", ".index.html", "x.tmp", ".x.json.0123abcd.tmp", ".x.0123abcg.tmp"):
        assert not files.is_temp_name(name)


def test_a_finished_run_leaves_no_lock_file_and_the_lock_still_excludes(tmp_path):
    from generator.errors import LockedError
    from generator.library.lock import LOCK_NAME, OutputLock

    out = tmp_path / "lib"
    first = OutputLock(out)
    with first:
        stale = os.open(out / LOCK_NAME, os.O_RDONLY)  # a second run that opened the file just before
        with pytest.raises(LockedError):
            OutputLock(out).__enter__()
    assert not (out / LOCK_NAME).exists()  # removed by the run that held it
    try:
        assert not first._names(stale)  # the waiter's file is gone from the path: it must not count
    finally:
        os.close(stale)
    with OutputLock(out):  # a new run makes a new lock file, and it excludes a third
        assert (out / LOCK_NAME).is_file()
        with pytest.raises(LockedError):
            OutputLock(out).__enter__()
    assert not (out / LOCK_NAME).exists()


def test_a_finished_library_holds_no_lock_file(library):
    assert (library / "out" / "manifest.json").is_file()
    assert not (library / "out" / ".gen.lock").exists()
