"""Form and endings of library tracks (issue 12): recurrence against real pieces, A-A against A-B
self-similarity, and how tracks end.

    python bench/bench_form.py --checkpoint models/gen-small.pt --per-genre 4 --seconds 90
    python bench/bench_form.py --checkpoint X.pt --per-genre 4 --baseline   # also the same tracks without form
    python bench/bench_form.py --library out/formed --data data/beat        # measure a built library only
    python bench/bench_form.py --checkpoint X.pt --keep /tmp/formed         # keep the built libraries

It builds a MIDI-only library with `gen batch`'s pipeline (recipe: the genres, `form: auto`,
`harmony: template`, the track length; everything else default), then reads its sidecars and MIDI
files, as a user would:

- **recurrence**: eval.musicality.recurrence (share of the first 60 s top line's 8-note pitch n-grams
  that occur more than once), per genre, against the interquartile range of the same measure on
  the pieces of the beat corpus's test shard (first 60 s at the reference tempo): all of them, and
  the real music alone (the arrangers' chord-chart renderings left out, the Nottingham tunes kept);
- **A-A vs A-B**: each bar becomes a vector (12 pitch classes weighted by sounding time, pitched
  notes; 16 onset positions in the bar, every note, drums included), and two sections' similarity is
  the mean cosine similarity of their bars, bar by bar. A-A: the mean over pairs of A sections;
  A-B: over pairs of an A and a B. Counted too: tracks with A-A > A-B;
- **ending**: the notes struck at the last bar line; the lowest is the keynote of the sidecar's key
  and the chord they make (tokens/chords.py best_chord) is its home chord (tonic triad or seventh
  of the key's mode); and every instrument of the track strikes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.eval.musicality import recurrence  # noqa: E402
from generator.library.keys import parse_key  # noqa: E402
from generator.tokens import chords  # noqa: E402
from generator.tokens.notes import Note  # noqa: E402

GENRES = ("classic", "jazz", "calm", "pop")
ONSET_SLOTS = 16


def build(checkpoint: str, genres: list[str], per_genre: int, seconds: float, out: Path, form: bool,
          seed: int) -> float:
    """A MIDI-only library in `out`; the seconds it took."""
    from generator.library.pipeline import run_batch
    from generator.library.recipe import parse_recipe

    text = json.dumps({"name": "Form bench", "seed": seed, "model": checkpoint, "duration_s": seconds,
                       "genres": {g: per_genre for g in genres},
                       "outputs": {"wav": False, "mp3": False, "stems": False, "cutdowns_s": [], "catalogue": False},
                       **({"form": "auto", "harmony": "template"} if form else {})})
    start = time.monotonic()
    run_batch(parse_recipe(text, "bench_form.yaml"), "bench_form.yaml", out_dir=out)
    return time.monotonic() - start


def tracks(library: Path) -> list[tuple[dict, list[Note]]]:
    """(sidecar track, notes in seconds) of every track of a library."""
    import pretty_midi

    from generator.tokens.vocab import DRUMS_FAMILY

    found = []
    for sidecar in sorted(library.glob("*/*.json")):
        data = json.loads(sidecar.read_text())
        midi = pretty_midi.PrettyMIDI(str(sidecar.parent / data["files"]["midi"]))
        notes = [Note(n.pitch, n.start, n.end, n.velocity, DRUMS_FAMILY if inst.is_drum else inst.program // 8)
                 for inst in midi.instruments for n in inst.notes]
        found.append((data["track"], sorted(notes, key=lambda n: (n.start_s, n.pitch))))
    return found


def bar_vectors(notes: list[Note], starts: np.ndarray, bar_s: float) -> np.ndarray:
    """(bars, 12 + ONSET_SLOTS): pitch-class time and onset positions of each bar, each half unit-normed."""
    out = np.zeros((len(starts), 12 + ONSET_SLOTS))
    for n in notes:
        for i, s in enumerate(starts):
            overlap = min(n.end_s, s + bar_s) - max(n.start_s, s)
            if overlap > 0 and n.instrument != 16:
                out[i, n.pitch % 12] += overlap
            if s <= n.start_s < s + bar_s:
                out[i, 12 + min(ONSET_SLOTS - 1, int((n.start_s - s) / bar_s * ONSET_SLOTS))] += 1
    for part in (slice(0, 12), slice(12, None)):
        norms = np.linalg.norm(out[:, part], axis=1, keepdims=True)
        out[:, part] /= np.where(norms > 0, norms, 1)
    return out


def similarity(track: dict, notes: list[Note]) -> tuple[float, float] | None:
    """(A-A, A-B) mean bar-by-bar cosine similarity; None without two As and a B."""
    sections = track.get("sections") or []
    if not sections:
        return None
    bar_s = (sections[0]["end_s"] - sections[0]["start_s"]) / sections[0]["bars"]
    vectors = {}
    for i, s in enumerate(sections):
        vectors[i] = bar_vectors(notes, s["start_s"] + bar_s * np.arange(s["bars"]), bar_s)

    def sim(i: int, j: int) -> float:
        a, b = vectors[i], vectors[j]
        n = min(len(a), len(b))
        return float(np.mean(np.sum(a[:n] * b[:n], axis=1) / 2))

    a = [i for i, s in enumerate(sections) if s["name"] == "A"]
    b = [i for i, s in enumerate(sections) if s["name"] == "B"]
    if len(a) < 2 or not b:
        return None
    aa = [sim(i, j) for k, i in enumerate(a) for j in a[k + 1:]]
    ab = [sim(i, j) for i in a for j in b]
    return float(np.mean(aa)), float(np.mean(ab))


def ending(track: dict, notes: list[Note]) -> tuple[bool, bool, bool]:
    """(lowest final note on the keynote, home chord struck, every instrument strikes the last bar line)."""
    from generator.tokens import vocab

    key = parse_key(track.get("key") or "")
    meter = (track["extra"].get("planned") or {}).get("meter", "4/4")
    if key is None or not track.get("bpm"):
        return False, False, False
    bar_s = vocab.quarters_per_bar(tuple(int(x) for x in meter.split("/"))) * 60.0 / track["bpm"]
    last = track["extra"]["music_duration_s"] - bar_s
    struck = [n for n in notes if abs(n.start_s - last) < 0.02]
    pitched = [n for n in struck if n.instrument != vocab.DRUMS_FAMILY]
    if not pitched:
        return False, False, False
    weights = chords.span_weights([(n.pitch, n.start_s, n.end_s) for n in pitched], last, last + bar_s)
    chord = chords.best_chord(weights)
    home = chord is not None and chords.root_of(chord) == key.tonic and \
        chords.quality_of(chord) in ((1, 6) if key.minor else (0, 4, 5))
    families = {n.instrument for n in notes}
    return min(n.pitch for n in pitched) % 12 == key.tonic, home, {n.instrument for n in struck} == families


def real_recurrence(data_dir: Path) -> dict[str, dict[str, list[float]]]:
    """Recurrence percentiles (25, 50, 75) per genre on the test shard's pieces: all of them, and the
    real music alone (pieces not made by our arrangers, and the Nottingham tunes, whose melodies are real)."""
    from generator.corpus.shards import load_shard, shard_path
    from generator.tokens import vocab

    shard = load_shard(shard_path(data_dir, "test"))
    with open(Path(data_dir) / "pieces.jsonl", encoding="utf-8") as lines:
        pieces = [json.loads(line) for line in lines]
    values: dict[str, dict[str, list[float]]] = {}
    for i in range(len(shard)):
        value = recurrence(shard.encoding.decode(shard.ids(i)))
        if value is None:
            continue
        piece = pieces[int(shard.piece[i])]
        row = values.setdefault(vocab.GENRES[int(shard.genre[i])], {"all": [], "real": []})
        row["all"].append(value)
        if not piece["synthetic"] or piece["source"].startswith("Nottingham"):
            row["real"].append(value)
    return {genre: {kind: [round(float(np.percentile(v, q)), 2) for q in (25, 50, 75)] if v else None
                    for kind, v in row.items()} for genre, row in values.items()}


def report(library: Path, real: dict) -> dict:
    rows: dict[str, dict] = {}
    for track, notes in tracks(library):
        row = rows.setdefault(track["genre"], {"recurrence": [], "aa": [], "ab": [], "keynote": [], "home": [],
                                               "together": []})
        value = recurrence(notes)
        if value is not None:
            row["recurrence"].append(value)
        pair = similarity(track, notes)
        if pair is not None:
            row["aa"].append(pair[0])
            row["ab"].append(pair[1])
        for name, ok in zip(("keynote", "home", "together"), ending(track, notes)):
            row[name].append(ok)
    out = {}
    for genre, row in sorted(rows.items()):
        n = len(row["keynote"])
        out[genre] = {
            "tracks": n, "recurrence_median": _median(row["recurrence"]), "recurrence": row["recurrence"],
            "real_quartiles": real.get(genre), "aa": _median(row["aa"]), "ab": _median(row["ab"]),
            "aa_above_ab": sum(a > b for a, b in zip(row["aa"], row["ab"])), "pairs": len(row["aa"]),
            "bass_keynote_under_home": sum(k and h for k, h in zip(row["keynote"], row["home"])),
            "all_strike_last_downbeat": sum(row["together"]),
        }
    return out


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="models/gen-small.pt")
    parser.add_argument("--per-genre", type=int, default=4)
    parser.add_argument("--genres", default=",".join(GENRES), help="comma-separated, e.g. classic,calm")
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--data", default="data/beat", help="the beat corpus (its shards/test.npz)")
    parser.add_argument("--library", help="measure this library instead of building one")
    parser.add_argument("--baseline", action="store_true", help="also build and measure the tracks without form")
    parser.add_argument("--keep", help="build the libraries in this folder and keep them")
    args = parser.parse_args()
    real = real_recurrence(Path(args.data))
    if args.library:
        print(json.dumps({"library": {"genres": report(Path(args.library), real)}}, indent=1))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for name, form in [("form", True)] + ([("no form", False)] if args.baseline else []):
            folder = Path(args.keep or tmp) / name.replace(" ", "_")
            wall_s = build(args.checkpoint, args.genres.split(","), args.per_genre, args.seconds, folder, form,
                           args.seed)
            print(json.dumps({name: {"wall_s": round(wall_s, 1), "genres": report(folder, real)}}, indent=1),
                  flush=True)


if __name__ == "__main__":
    main()
