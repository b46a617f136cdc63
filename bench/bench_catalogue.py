"""Size and first render of the catalogue of a synthetic library, in headless Chromium.

    python bench/bench_catalogue.py                  # 1,000 tracks, 3 page loads each from file:// and http://
    python bench/bench_catalogue.py --tracks 200 --runs 1
    python bench/bench_catalogue.py --screenshots docs/img --page output/cafe_jazz/index.html

Writes realistic sidecars (a 400-point waveform, a ~2,000-note piano roll of three instruments, the
fingerprint, sampling and licence text of a real track; every file the sidecar names exists, empty),
builds the catalogue with `build_catalogue`, then loads the page and prints the initial HTML's
bytes, the data files' bytes, and per load: first contentful paint, the list ready (filters and
sort wired: `window.catalogueReady`), and the first card's data file loaded and drawn, all in ms
from navigation start. The tests use write_library, serve and measure from here. --screenshots
saves catalogue-desktop.png (1280x800) and catalogue-phone.png (390x844) of --page instead.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.library.catalogue import build_catalogue  # noqa: E402
from generator.library.keys import PITCH_NAMES  # noqa: E402

GENRES = ("jazz", "classic", "pop", "calm")
MOODS = ("calm", "bright", "dark", "driving", "warm")
INSTRUMENTS = ({"name": "piano", "program": 0, "is_drum": False}, {"name": "bass", "program": 32, "is_drum": False},
               {"name": "drums", "program": 0, "is_drum": True})
LICENCE = ("Royalty-free: composed by the gen Music Transformer trained on public-domain and permissively "
           "licensed material; rendered with an MIT-licensed SoundFont.")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--autoplay-policy=no-user-gesture-required"]


def _roll(rng: np.random.Generator, duration_s: float, bpm: float) -> list[list[float]]:
    """~2,000 notes: piano chords and melody, a bass line, drums on every beat, as a jazz track has."""
    beat = 60.0 / bpm
    notes = []
    for b in range(int(duration_s / beat)):
        t = b * beat
        notes.append([36 if b % 2 == 0 else 38, t, t + 0.1, 2])
        notes.append([int(rng.integers(33, 52)), t, t + beat * 0.9, 1])
        for _ in range(int(rng.integers(1, 5))):
            start = t + float(rng.choice([0, 0.5])) * beat
            notes.append([int(rng.integers(55, 84)), start, start + beat * float(rng.uniform(0.3, 2)), 0])
    return [[p, round(s, 3), round(min(e, duration_s), 3), i] for p, s, e, i in sorted(notes, key=lambda n: n[1])]


def _sidecar(i: int, base: str, rng: np.random.Generator, library: str) -> dict:
    genre, duration_s = GENRES[i % len(GENRES)], round(float(rng.uniform(60, 150)), 6)
    bpm = round(float(rng.uniform(60, 200)), 1)
    key = f"{PITCH_NAMES[int(rng.integers(12))]} {'minor' if rng.random() < 0.5 else 'major'}"
    env = np.abs(np.sin(np.linspace(0, 9, 400))) * 0.6 + rng.uniform(0, 0.3, 400)
    roles = ("piano", "bass", "drums")
    files = {"midi": f"{base}.mid", "wav": f"{base}.wav", "mp3": f"{base}.mp3", "sidecar": f"{base}.json",
             "stems": {r: f"stems/{base}-{r}.wav" for r in roles},
             "cutdowns": {str(n): {"duration_s": float(n), "wav": f"{base}-{n}s.wav", "mp3": f"{base}-{n}s.mp3"}
                          for n in (60, 30, 15)}}
    track = {"track_id": f"synthetic_{i:04d}", "title": f"{library} {i + 1:04d}", "genre": genre, "index": i,
             "seed": int(rng.integers(2**62)), "bpm": bpm, "key": key, "duration_s": duration_s,
             "model": "gen-small.pt", "recipe": "recipes/synthetic.yaml", "licence_note": LICENCE,
             "tags": [genre, library], "library": library, "mood": MOODS[i % len(MOODS)],
             "sampling": {"temperature": 1.02, "top_p": 0.98, "top_k": 60, "at_least_k": 2, "rp_penalty": 0.05},
             "extra": {"target_duration_s": duration_s, "ending": "ring", "rejections": [],
                       "fingerprint": {"version": 1, "sha256": "0" * 64,
                                       "parts": {k: "0123456789abcdef" for k in "abcdefghijklmnop"}}}}
    return {"schema": "gen.track", "schema_version": 1, "generator": "gen 0.1.0", "track": track,
            "loudness": {"integrated_lufs": -14.0, "true_peak_dbtp": -1.1, "gain_db": 3.0, "reached_target": True,
                         "note": "reached -14 LUFS"},
            "audio": {"duration_s": duration_s, "frames": int(duration_s * 48000), "wav_sample_rate": 48000,
                      "wav_bits": 24, "mp3_sample_rate": 48000, "mp3_kbps": 320},
            "files": files,
            "piano_roll": {"duration_s": duration_s, "instruments": list(INSTRUMENTS),
                           "notes": _roll(rng, duration_s, bpm), "truncated": False},
            "waveform": {"points": 400, "min": [round(-v, 3) for v in env], "max": [round(v, 3) for v in env]},
            "checksums": {}}


def write_library(root: Path, tracks: int, library: str = "Synthetic Library", seed: int = 0) -> Path:
    """`tracks` track folders under `root`, each with a sidecar and the (empty) files it names."""
    rng = np.random.default_rng(seed)
    for i in range(tracks):
        base = f"{i:04d}-synthetic-library-{i:08x}"
        data = _sidecar(i, base, rng, library)
        folder = root / base
        (folder / "stems").mkdir(parents=True, exist_ok=True)
        files = data["files"]
        names = [files["midi"], files["wav"], files["mp3"], *files["stems"].values(),
                 *(c[f] for c in files["cutdowns"].values() for f in ("wav", "mp3"))]
        for name in names:
            (folder / name).touch()
        (folder / files["sidecar"]).write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    return root


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """A static web server on 127.0.0.1 (a free port) over `folder`; yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


FIRST_RENDER = """() => ({
  fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
  ready: window.catalogueReady,
  load: performance.getEntriesByType('navigation')[0].loadEventEnd,
})"""


def measure(browser, url: str, viewport: tuple[int, int] = (1280, 800)) -> dict[str, float]:
    """One cold page load: first contentful paint, list ready, first card drawn (ms from navigation start)."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page.goto(url, wait_until="load")
        page.wait_for_function("() => document.querySelector('article.card details dl').children.length > 0",
                               timeout=30000)
        figures = page.evaluate(FIRST_RENDER)
        figures["first_card_drawn"] = page.evaluate("() => performance.now()")  # an upper bound: polled
        return figures
    finally:
        page.close()


def screenshots(browser, url: str, folder: Path) -> None:
    """The top of the page at desktop and phone width, once the first cards are drawn."""
    for name, viewport in (("desktop", (1280, 800)), ("phone", (390, 844))):
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.goto(url, wait_until="load")
        page.wait_for_function("() => document.querySelector('article.card details dl').children.length > 0")
        page.wait_for_timeout(500)  # the players' metadata
        page.screenshot(path=str(folder / f"catalogue-{name}.png"))
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the library here (kept) instead of a temp folder")
    parser.add_argument("--screenshots", type=Path, help="save screenshots of --page into this folder, and stop")
    parser.add_argument("--page", type=Path, help="the catalogue to take screenshots of")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    if args.screenshots:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
            screenshots(browser, args.page.resolve().as_uri(), args.screenshots)
            browser.close()
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "library"
        start = time.monotonic()
        write_library(root, args.tracks)
        made = time.monotonic() - start
        start = time.monotonic()
        index = build_catalogue([root], root)
        built = time.monotonic() - start
        data = [p.stat().st_size for p in (root / "index-data").iterdir()]
        print(f"{args.tracks} tracks: sidecars written in {made:.1f} s, catalogue built in {built:.1f} s")
        print(f"initial HTML: {index.stat().st_size:,} bytes ({index.stat().st_size / args.tracks:,.0f} a track); "
              f"data files: {len(data)}, {sum(data):,} bytes, median {statistics.median(data):,.0f} a track")
        with sync_playwright() as p, serve(root) as base:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
            for label, url in (("file://", index.as_uri()), ("http://", base + "index.html")):
                runs = [measure(browser, url) for _ in range(args.runs)]
                line = ", ".join(f"{k} {statistics.median(r[k] for r in runs):.0f} ms"
                                 f" (max {max(r[k] for r in runs):.0f})" for k in runs[0])
                print(f"{label:8} median of {args.runs}: {line}")
            browser.close()


if __name__ == "__main__":
    main()
