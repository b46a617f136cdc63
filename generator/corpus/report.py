"""Tables about a prepared corpus: per genre, per source, skipped inputs; SOURCES.md text."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from generator.corpus.sources import MUSIC21_EXCLUDED, SOURCES
from generator.tokens import vocab


@dataclass(frozen=True)
class GenreRow:
    genre: str
    pieces: int
    hours: float
    tokens: int
    synthetic_share: float  # by hours
    licence_classes: str
    split_pieces: str  # train/valid/test


def genre_rows(rows: list[dict]) -> list[GenreRow]:
    out = []
    for genre in vocab.GENRES:
        mine = [r for r in rows if r["genre"] == genre]
        hours = sum(r["seconds"] for r in mine) / 3600
        synthetic = sum(r["seconds"] for r in mine if r["synthetic"]) / 3600
        classes = Counter(r["licence_class"] for r in mine)
        splits = Counter(r["split"] for r in mine)
        out.append(GenreRow(
            genre, len(mine), hours, sum(r["n_tokens"] for r in mine),
            synthetic / hours if hours else 0.0,
            ", ".join(f"{k} {v}" for k, v in sorted(classes.items())),
            f"{splits['train']}/{splits['valid']}/{splits['test']}",
        ))
    return out


def genre_table(rows: list[dict]) -> str:
    """Markdown table: pieces, hours, tokens, synthetic share, licence classes per genre."""
    lines = ["| genre | pieces | hours | tokens | synthetic (by hours) | licence classes (pieces) | train/valid/test |",
             "|---|---:|---:|---:|---:|---|---|"]
    total_pieces = total_hours = total_tokens = 0
    for g in genre_rows(rows):
        lines.append(f"| {g.genre} | {g.pieces} | {g.hours:.1f} | {g.tokens:,} | {100 * g.synthetic_share:.0f}% "
                     f"| {g.licence_classes} | {g.split_pieces} |")
        total_pieces, total_hours, total_tokens = (
            total_pieces + g.pieces, total_hours + g.hours, total_tokens + g.tokens)
    lines.append(f"| **all** | {total_pieces} | {total_hours:.1f} | {total_tokens:,} | | | |")
    return "\n".join(lines)


def source_table(rows: list[dict], skipped: dict[str, int], not_started: dict[str, int]) -> str:
    """Markdown table per source: package/version, licence, genre, pieces, hours, tokens."""
    by_source: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_source[r["source"]].append(r)
    lines = ["| source | version | licence (class) | genre | synthetic | pieces | hours | tokens | skipped "
             "| not reached |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for name, info in SOURCES.items():
        mine = by_source.get(info.title, [])
        version = mine[0]["source_version"] if mine else ""
        lines.append(
            f"| {info.title} (`{name}`) | {version} | {info.licence} ({info.licence_class}) | {info.genre} "
            f"| {'yes' if info.synthetic else 'no'} | {len(mine)} | {sum(r['seconds'] for r in mine) / 3600:.1f} "
            f"| {sum(r['n_tokens'] for r in mine):,} | {skipped.get(name, 0)} | {not_started.get(name, 0)} |")
    return "\n".join(lines)


def exclusions_list() -> str:
    lines = [f"- music21 `{name}`: {why}" for name, why in MUSIC21_EXCLUDED.items()]
    lines += [
        "- Mutopia (LilyPond sources, per-piece licences): not converted; lilypond is not installed here and",
        "  takes ~6 s a piece; the classic genre already has the most hours.",
        "- Debian game music (simutrans-data: Artistic; openttd-openmsx: GPL-2): packages not installed here; "
        "not used.",
        "- Nottingham tunes and charts with meter changes or meters other than 2/4, 3/4, 4/4, 6/8, 9/8, 12/8",
        "  (charts: 3/4 and 4/4 only), and Nottingham files without a chord track, are skipped.",
        "- Any input that fails to parse or render, is empty, drums only, shorter than 8 s, or runs past",
        "  the per-piece time limit is skipped; each one is listed with its reason in `prepare_report.txt`.",
    ]
    return "\n".join(lines)


def skipped_lines(skips: list[tuple[str, str]]) -> str:
    return "\n".join(f"{piece_id}: {reason}" for piece_id, reason in sorted(skips))


_INTRO = """# Training data: sources, licences, sizes

Written by `gen data prepare` ({command}); the tables below are regenerated on every run.
Every piece is listed in `pieces.jsonl` with its id, source, version, licence, licence class,
whether it is synthetic, its split, tokens and seconds. Splits are by work (a stable hash of the
underlying score, chart or tune: ~90% train, 5% valid, 5% test per genre), so every rendering of
one chart or tune stays in one split. Tokens are our default encoding (NOTE_ON/OFF, VELOCITY,
TIME_SHIFT 10..1000 ms, INSTRUMENT family tokens); augmentation happens in training.

## What is real and what is synthetic

- **classic** is real: scores of public-domain works (music21's bundled corpus, OpenScore Lieder
  CC0), parsed with music21 and written note by note (tempo marks, dynamics, part instruments).
- **jazz** is synthetic: the chord changes of jazz standards (harmony facts; the charts carry no
  melody and no licence) are transposed by a random non-zero interval, lightly re-harmonised
  (tritone substitutions, extensions), rendered through Debian's `mma` in a groove that matches
  the chart's style (swing, ballad, bossa, waltz, latin, even 8ths) at a random tempo, with an
  intro, 1-3 choruses alternating groove variants and an ending; a rule-based lead line (chord
  tones on strong beats, scale steps between, two-bar rhythm cells) is added. No chart is
  reproduced bar for bar in its original key and form.
- **pop** is synthetic (the arrangement is generated; the melody is real): traditional melodies \
(Nottingham folk tunes) re-arranged over `mma`
  pop grooves (pop ballad, soft rock, 8-beat, folk rock, 12/8 for jigs, rock/country waltz for
  3/4) at pop tempi and a random transposition; plus jazz-standard changes simplified to triads in
  pop grooves with a generated lead. No free corpus of real pop music exists.
- **calm** is mostly synthetic: slow (50-66 bpm) re-voicings of real harmony (jazz-standard
  changes; Nottingham chord tracks at one chord per bar) as voice-led pads, a held bass, a
  sustained string line and sparse soft piano/bell notes. No free ambient corpus exists. The real
  part (`calm-lieder`, synthetic = false) is the OpenScore songs whose opening is marked slow
  (Langsam, Lento, Adagio, Larghetto... or <= 60 bpm) and that carry at most two loud marks; a
  song is either in `classic` or in `calm`, never both.

Licence classes: `pd` (public domain / CC0), `permissive` (BSD-style), `copyleft` (the
Nottingham transcriptions repository is GPL-3.0, although the tunes themselves are traditional),
`none` (the chord charts carry no licence; only their harmony, which is generally not protected,
is used). A model for a strictly clean release can be trained without the `copyleft` and `none`
classes by filtering `pieces.jsonl`.
"""


def sources_markdown(rows: list[dict], skipped: dict[str, int], not_started: dict[str, int],
                     command: str) -> str:
    targets = [g for g in genre_rows(rows) if g.hours < 5.0]
    total = sum(r["seconds"] for r in rows) / 3600
    status = ("Targets (>= 5 h per genre, >= 50 h in all) are met." if not targets and total >= 50
              else "Targets NOT met: " + ", ".join(f"{g.genre} {g.hours:.1f} h" for g in targets)
              + f"; {total:.1f} h in all. Run `gen data prepare` with higher limits or more time to add more.")
    return "\n\n".join([
        _INTRO.format(command=command).rstrip(),
        "## Per genre\n\n" + genre_table(rows) + "\n\n" + status,
        "## Per source\n\n" + source_table(rows, skipped, not_started)
        + "\n\n`skipped`: inputs rejected with a reason (see `prepare_report.txt`); `not reached`: candidates "
          "left out by the per-source limit or the time limit of this run.",
        "## Excluded\n\n" + exclusions_list(),
    ]) + "\n"
