"""The one atomic writer: whole file or old file, the umask's mode, no temp file left behind."""

import os
import stat
from contextlib import contextmanager

import pytest

from generator import files
from generator.files import atomic_path, atomic_write_bytes, atomic_write_text, install_folder


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_get_the_umask_mode(tmp_path, mask, expected):
    with umask(mask):
        atomic_write_text(tmp_path / "a.json", "{}")
        atomic_write_bytes(tmp_path / "b.bin", b"\0")
        with atomic_path(tmp_path / "c.wav") as tmp:
            tmp.unlink()  # a writer that recreates the file with a mode of its own
            tmp.touch(mode=0o600)
    assert [mode(tmp_path / n) for n in ("a.json", "b.bin", "c.wav")] == [expected] * 3


def test_success_leaves_only_the_target(tmp_path):
    atomic_write_text(tmp_path / "x.txt", "old")
    atomic_write_text(tmp_path / "x.txt", "new")
    with atomic_path(tmp_path / "sub" / "y.npz") as tmp:
        assert tmp.parent == tmp_path / "sub" and tmp.suffix == ".npz" and tmp.name.startswith(".")
        tmp.write_bytes(b"data")
    assert (tmp_path / "x.txt").read_text() == "new" and (tmp_path / "sub" / "y.npz").read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sub", "x.txt", "y.npz"]


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "manifest.json"
    atomic_write_text(target, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a fi")
            raise KeyboardInterrupt  # any BaseException, not only Exception
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_failing_fsync_removes_the_temp(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(tmp_path / "new.txt", "text")
    assert list(tmp_path.iterdir()) == []


def test_install_folder_replaces_an_old_folder_whole(tmp_path):
    final, staging = tmp_path / "track", tmp_path / ".partial-track"
    final.mkdir()
    (final / "old.wav").write_bytes(b"old")
    staging.mkdir()
    (staging / "new.wav").write_bytes(b"new")
    install_folder(staging, final)
    assert [p.name for p in tmp_path.iterdir()] == ["track"]
    assert [p.name for p in final.iterdir()] == ["new.wav"]


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_an_exported_track_follows_the_umask(tmp_path, mask):
    from generator.library.export import ExportSettings
    from track_fixtures import export_small, make_info

    with umask(mask):
        files_ = export_small(tmp_path, make_info(duration_s=1.0), ExportSettings(cutdowns_s=()))
    paths = [files_.folder, *files_.folder.rglob("*")]
    assert {p.name: mode(p) for p in paths if p.is_dir()} == {n: 0o777 & ~mask for n in (files_.folder.name, "stems")}
    assert {mode(p) for p in paths if p.is_file()} == {0o666 & ~mask}
