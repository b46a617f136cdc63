"""A finished library can be served as it is (every file readable by others, every link answers 200)
and keeps its promises: tagged files, an upload sheet, MP3s under the ceiling, audio that starts with
its MIDI, and nothing left behind (no lock, temp or staging file)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urljoin

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from delivered import ffprobe_tags, leftovers
from paths import CI_ENV
from test_pipeline import ROOT, tiny_checkpoint, write_recipe  # noqa: F401 - tiny_checkpoint is a fixture


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [v for k, v in attrs if k in ("href", "src") and v and not v.startswith(("#", "data:"))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
        return response.status


@pytest.mark.slow
def test_a_delivered_library_is_readable_by_others_and_served_whole(tmp_path, tiny_checkpoint):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_checkpoint, outputs={"mp3": True, "cutdowns_s": [2], "catalogue": True})
    old_umask = os.umask(0o022)  # what a delivery machine typically has; gen inherits it
    try:
        subprocess.run([sys.executable, str(ROOT / "cli.py"), "batch", str(recipe), "--quiet"], cwd=ROOT,
                       env=CI_ENV, check=True, capture_output=True)
    finally:
        os.umask(old_umask)
    out = tmp_path / "out"
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        need = 0o005 if path.is_dir() else 0o004
        assert mode & need == need, f"{path.relative_to(tmp_path)}: mode {mode:o} hides it from other users"

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = f"http://127.0.0.1:{port}/index.html"
        deadline = time.monotonic() + 20
        while True:
            try:
                html = urllib.request.urlopen(page, timeout=5).read().decode("utf-8")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        parser = Links()
        parser.feed(html)
        sidecars = [p for p in out.rglob("*.json") if not p.name.startswith(".")]
        urls = {urljoin(page, link) for link in parser.found}
        urls |= {urljoin(page, p.relative_to(out).as_posix()) for p in sidecars}
        assert any(u.endswith(".mp3") for u in urls) and any(u.endswith("manifest.json") for u in urls)
        assert len(sidecars) == 5  # three tracks, the manifest and the upload sheet
        failed = {}
        for url in sorted(urls):
            try:
                status = get(url)
            except OSError as error:
                status = error
            if status != 200:
                failed[url] = status
        assert not failed
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg and ffprobe")
def test_a_finished_library_keeps_its_promises(tmp_path, tiny_checkpoint):  # noqa: F811
    from generator.library.cover import cover_png

    library = {"artist": "Blue Room", "publisher": "Blue Room Publishing", "year": 2025}
    recipe = write_recipe(tmp_path, tiny_checkpoint, genres={"jazz": 1}, duration_s=5, library=library,
                          outputs={"mp3": True, "cutdowns_s": [2], "catalogue": False})
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "batch", str(recipe), "--quiet"], cwd=ROOT, env=CI_ENV,
                   check=True, capture_output=True)
    out = tmp_path / "out"
    assert leftovers(out) == []
    assert (out / "cover.png").read_bytes() == cover_png("Test Lib", 7)
    with open(out / "library.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    versions = [r["version"] for r in rows]
    assert versions[:5] == ["full", "full", "full", "2", "2"] and all(v.startswith("stem:") for v in versions[5:])
    assert len(rows) > 5 and all((out / r["file"]).is_file() for r in rows)
    (wav,) = [out / r["file"] for r in rows if r["version"] == "full" and r["format"] == "wav"]
    (mp3,) = [out / r["file"] for r in rows if r["version"] == "full" and r["format"] == "mp3"]
    stem = out / rows[-1]["file"]

    # the audio starts where the MIDI's first note does
    midi = pretty_midi.PrettyMIDI(str(wav.with_suffix(".mid")))
    first_note_s = min(n.start for inst in midi.instruments for n in inst.notes)
    audio, rate = sf.read(str(wav))
    onset_s = np.flatnonzero(np.abs(audio).max(axis=1) > 10 ** (-60 / 20))[0] / rate
    assert abs(onset_s - first_note_s) <= 0.005, (onset_s, first_note_s)

    # the decoded MP3 meets the -1 dBTP ceiling, as the sidecar says
    log = subprocess.run(["ffmpeg", "-nostats", "-i", str(mp3), "-af", "ebur128=peak=true", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    assert float(re.findall(r"Peak:\s+(-?[\d.]+) dBFS", log)[-1]) <= -1.0, log[-400:]
    sidecar = json.loads(wav.with_suffix(".json").read_text())
    assert sidecar["loudness"]["mp3_true_peak_dbtp"] <= -1.05

    # every file says what it is, to ffprobe too
    for path, title in ((wav, "Test Lib 01"), (mp3, "Test Lib 01"), (stem, rows[-1]["title"])):
        tags = ffprobe_tags(path)
        assert (tags["title"], tags["artist"], tags["album"], tags["genre"]) == \
            (title, "Blue Room", "Test Lib", "jazz"), path
        assert tags["copyright"] == "© 2025 Blue Room Publishing" and tags["date"].startswith("2025")
