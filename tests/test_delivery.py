"""A finished library can be served as it is: every file readable by others, every link answers 200."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest

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
        assert len(sidecars) == 4  # three tracks and the manifest
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
