"""An EvalReport as JSON-ready data, as a Markdown section (for QUALITY.md), and written atomically."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from generator.eval.evaluate import EvalReport
from generator.eval.musicality import MEASURE_S
from generator.files import atomic_write_text
from generator.library.sidecar import finite_or_none
from generator.tokens import vocab

GOAL_GENRE_ACCURACY = 0.8
CHANCE = 1 / len(vocab.GENRES)


def report_to_dict(report: EvalReport) -> dict:
    data = asdict(report)
    data["genre_generated"]["accuracy"] = report.genre_generated.accuracy
    data["genre_real_heldout"]["accuracy"] = report.genre_real_heldout.accuracy
    data["summary"] = summary(report)
    return finite_or_none(data)


def _share(count: int, total: int) -> float:
    return count / total if total else float("nan")


def summary(report: EvalReport) -> dict[str, float | int]:
    """The headline numbers, each a share in [0, 1], a count or a percentage."""
    n = len(report.tracks)
    return {
        "tracks": n,
        "kept": report.kept,
        "genre_accuracy_generated": report.genre_generated.accuracy,
        "genre_accuracy_real_heldout": report.genre_real_heldout.accuracy,
        "attempts_rejected_share": _share(report.rejected_attempts, report.attempts),
        "first_try_rejected_share": _share(report.first_try_rejected, n),
        "given_up": report.given_up,
        "looping_share": _share(report.looping_tracks, report.kept),
        "copies_flagged": report.copies_flagged,
        "duration_mae_pct": report.duration_mae_pct,
        "clean_endings_share": _share(report.clean_endings, report.kept),
        "features_outside_real_iqr": sum(1 for f in report.features if f.outside_iqr),
        "mean_feature_overlap": (sum(f.overlap for f in report.features) / len(report.features)
                                 if report.features else float("nan")),
        "musicality_outside_real_iqr": sum(1 for m in report.musicality if m.outside_iqr),
        "musicality_compared": sum(1 for m in report.musicality if m.generated_n and m.real_n),
    }


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.0f}%"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def made(report: EvalReport) -> str:
    """What the measured tracks are: 'library' (gen eval --library) or 'generated'."""
    return "library" if report.meta.get("library") is not None else "generated"


def headline_rows(report: EvalReport) -> list[tuple[str, str, str]]:
    """(measure, value, goal) rows shared by the Markdown and the terminal table."""
    s, st, tracks = summary(report), report.settings, made(report)
    return [
        ("tracks kept / asked", f"{s['kept']} / {s['tracks']}", "all"),
        (f"genre accuracy, {tracks}", _pct(s["genre_accuracy_generated"]), f">= {_pct(GOAL_GENRE_ACCURACY)}"),
        ("genre accuracy, held-out real", _pct(s["genre_accuracy_real_heldout"]), f"> {_pct(CHANCE)} (chance)"),
        ("attempts rejected by loop detector", _pct(s["attempts_rejected_share"]), "low"),
        ("tracks rejected on first try", _pct(s["first_try_rejected_share"]), "low"),
        (f"kept tracks with a {st.phrase_notes}-note phrase > {st.max_phrase_repeats}x",
         _pct(s["looping_share"]), "0%"),
        (f"copies of >= {st.copy_notes} notes", str(s["copies_flagged"]), "0"),
        ("duration error (mean abs)", f"{_num(s['duration_mae_pct'])}%", "< 1%"),
        ("clean endings", _pct(s["clean_endings_share"]), "100%"),
        (f"features: {tracks} median outside real IQR",
         f"{s['features_outside_real_iqr']} / {len(report.features)}", "0"),
        ("features: mean overlap with real", _num(s["mean_feature_overlap"], 2), "-> 1"),
        (f"musicality: {tracks} median outside held-out real IQR",
         f"{s['musicality_outside_real_iqr']} / {s['musicality_compared']}", "0"),
    ]


def feature_rows(report: EvalReport) -> list[tuple[str, ...]]:
    """(feature, real median [IQR], generated median, overlap, real-vs-real overlap, flag)."""
    rows = []
    for f in report.features:
        rows.append((f.name, f"{_num(f.real_median)} [{_num(f.real_q25)}, {_num(f.real_q75)}]",
                     _num(f.generated_median), _num(f.overlap, 2), _num(report.real_overlap.get(f.name), 2),
                     "OUTSIDE IQR" if f.outside_iqr else ""))
    for name, overlap in report.histogram_overlap.items():
        rows.append((name + " (mean)", "", "", _num(overlap, 2), "", ""))
    return rows


def musicality_rows(report: EvalReport) -> list[tuple[str, ...]]:
    """(measure, genre, generated median, held-out real median [IQR], tracks / real pieces, flag)."""
    return [(m.name, m.genre, _num(m.generated_median), f"{_num(m.real_median)} [{_num(m.real_q25)}, "
             f"{_num(m.real_q75)}]", f"{m.generated_n} / {m.real_n}", "OUTSIDE IQR" if m.outside_iqr else "")
            for m in report.musicality]


def nll_rows(report: EvalReport) -> list[tuple[str, str, str]]:
    genres = [g for g in vocab.GENRES if g in report.nll or g in report.unigram_nll]
    return [(g, _num(report.nll.get(g), 4), _num(report.unigram_nll.get(g), 4)) for g in genres]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    esc = [tuple(str(c).replace("|", "\\|") for c in row) for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(row) + " |" for row in esc)]


def _what(report: EvalReport) -> str:
    """The report's first line: what was measured (a checkpoint's samples or a library's tracks)."""
    st, meta = report.settings, report.meta
    if meta.get("library") is not None:
        counts = ", ".join(f"{g} {n}" for g, n in meta.get("tracks_per_genre", {}).items())
        made_by = ", ".join(f"`{m}`" for m in meta.get("made_by", ())) or "unknown"
        return (f"{len(report.tracks)} tracks ({counts}) of library `{meta['library']}`, made by `gen batch` "
                f"with model {made_by}; each measured over its first {st.seconds:g} s (duration, ending and "
                f"copies over the whole track), seed {st.seed}. No model sampled them here: no held-out NLL.")
    what = (f"{st.per_genre} tracks x {len(st.genres)} genres of {st.seconds:g} s, seed {st.seed}; "
            f"checkpoint `{meta.get('checkpoint', '?')}`; instruments: "
            + ("each genre's default instrumentation" if st.instrumentation else "any family"))
    sampling = ", ".join(f"{k}={v}" for k, v in (meta.get("sampling") or {}).items())
    return what + (f"; sampling {sampling}" if sampling else "") + "."


def report_to_markdown(report: EvalReport, title: str = "Evaluation") -> str:
    st, tracks = report.settings, made(report)
    lines = [f"## {title}", "", _what(report), ""]
    lines += _table(("measure", "value", "goal"), headline_rows(report)) + [""]
    lines += [f"### Features ({tracks} vs real train excerpts)", ""]
    lines += _table(("feature", "real median [IQR]", "generated median", "overlap",
                     "held-out real overlap", "flag"), feature_rows(report)) + [""]
    if report.musicality:
        lines += [f"### Musicality per genre ({tracks} vs held-out real, first "
                  f"{min(st.seconds, MEASURE_S):g} s; definitions in docs/evaluation.md)", ""]
        lines += _table(("measure", "genre", "generated median", "held-out real median [IQR]",
                         "tracks / real pieces", "flag"), musicality_rows(report)) + [""]
    m = report.genre_generated.matrix
    lines += [f"### Genre classifier on {tracks} tracks (rows: asked, columns: predicted)", ""]
    lines += _table(("", *vocab.GENRES), [(g, *map(str, row)) for g, row in zip(vocab.GENRES, m)]) + [""]
    if report.nll or report.unigram_nll:
        lines += ["### Held-out NLL (nats/token)", ""]
        lines += _table(("genre", "model", "unigram baseline"), nll_rows(report)) + [""]
    if report.rejection_reasons:
        reasons = ", ".join(f"{k} {v}" for k, v in report.rejection_reasons.items())
        lines += [f"Loop-detector rejections by reason: {reasons}.", ""]
    return "\n".join(lines)


def write_json(report: EvalReport, path: str | Path) -> None:
    atomic_write_text(path, json.dumps(report_to_dict(report), indent=2) + "\n")
