"""Training sources: which pieces exist, their licences, and how each becomes a PrettyMIDI.

A `Job` is one piece to prepare (picklable, so workers can load it). `list_jobs` enumerates a
source deterministically; `load_job` turns a job into a PrettyMIDI (parsing a score, rendering
chord changes through mma, or generating a calm arrangement).
"""

from __future__ import annotations

import functools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pretty_midi

from generator import names
from generator.seeds import stable_seed

MUSIC21_CLASSICAL = (
    "bach", "beach", "beethoven", "chopin", "ciconia", "corelli", "cpebach", "handel", "haydn",
    "johnson_j_r", "joplin", "josquin", "liliuokalani", "luca", "lusitano", "monteverdi", "mozart",
    "schoenberg", "schubert", "schumann_clara", "schumann_robert", "trecento", "verdi", "weber",
    "webern",
)
# Never used, with the reason (also written to SOURCES.md).
MUSIC21_EXCLUDED = {
    "essenFolksong": "Essen folk collection: non-commercial licence",
    "palestrina": "Palestrina kern encodings: the encoder's copyright",
    "*.krn": "Humdrum kern encodings (CCARH): licence unclear for commercial use",
    "*.rntxt": "roman-numeral analyses, not music",
    "ryansMammoth, oneills1850, airdsAirs, miscFolk, nottingham-dataset": "folk, not classical",
    "demos, theoryExercises, leadSheet": "examples and exercises, not repertoire",
}
_SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".abc")


@dataclass(frozen=True)
class SourceInfo:
    name: str
    genre: str
    title: str  # human description for SOURCES.md
    licence: str
    licence_class: str  # pd | permissive | copyleft | none | synthetic
    synthetic: bool


SOURCES: dict[str, SourceInfo] = {s.name: s for s in (
    SourceInfo("music21", "classic", "music21 bundled corpus, classical works",
               "works in the public domain; encodings distributed with music21 (BSD-3-Clause)",
               "permissive", False),
    SourceInfo("lieder", "classic", "OpenScore Lieder (MusicXML)", "CC0-1.0", "pd", False),
    SourceInfo("calm-lieder", "calm", "OpenScore Lieder marked slow (Langsam, Lento, Adagio...), quiet",
               "CC0-1.0", "pd", False),
    SourceInfo("jazz-mma", "jazz", "mma-rendered jazz-standard changes with a generated lead",
               "none (chord charts without a licence; harmony facts only)", "none", True),
    SourceInfo("pop-nottingham", "pop", "Nottingham folk melodies over mma pop grooves",
               "GPL-3.0 (transcription repository); tunes traditional", "copyleft", True),
    SourceInfo("pop-mma", "pop", "jazz-standard changes (simplified) in mma pop grooves with a generated lead",
               "none (chord charts without a licence; harmony facts only)", "none", True),
    SourceInfo("calm-charts", "calm", "slow pad/strings/piano re-voicings of jazz-standard changes",
               "none (chord charts without a licence; harmony facts only)", "none", True),
    SourceInfo("calm-nottingham", "calm", "slow pad/strings/piano re-voicings of Nottingham chord tracks",
               "GPL-3.0 (transcription repository); tunes traditional", "copyleft", True),
)}


@dataclass(frozen=True)
class Job:
    id: str
    source: str
    title: str
    composer: str | None
    arg: str  # a path, or a chart index
    split_key: str  # the underlying work: every rendering of one work lands in one split


# Bumped when a source's loader changes its output (invalidates that source's cache only).
LOADER_VERSIONS = {"calm-nottingham": 3, "jazz-mma": 2, "pop-mma": 2, "pop-nottingham": 2}


def cache_id(job: Job) -> tuple[str, str]:
    """(cache folder, key) of a job; a song shares its cached MIDI between lieder and calm-lieder."""
    if job.source == "calm-lieder":
        return "lieder", job.id.replace("calm-lieder/", "lieder/", 1)
    version = LOADER_VERSIONS.get(job.source)
    return job.source, job.id if version is None else f"{job.id}|v{version}"


def stable_hash(text: str) -> int:
    return stable_seed(text, bits=64, algorithm="sha1")


def slug(text: str) -> str:
    return names.slug(text, trim_cut=False, fallback="untitled")  # trim_cut: job ids are pinned


# --------------------------------------------------------------------------- listing


def _music21_jobs(shared: Path) -> list[Job]:
    from music21 import corpus

    base = Path(corpus.__file__).parent
    jobs, seen = [], set()
    # One work may ship as .mxl and .xml: keep the first by suffix preference.
    ranked = sorted(corpus.getCorePaths(), key=lambda p: (Path(str(p)).with_suffix(""), _SCORE_SUFFIXES.index(
        Path(str(p)).suffix) if Path(str(p)).suffix in _SCORE_SUFFIXES else 99))
    for path in ranked:
        rel = Path(str(path)).relative_to(base)
        if rel.parts[0] not in MUSIC21_CLASSICAL or rel.suffix not in _SCORE_SUFFIXES:
            continue
        stem = rel.with_suffix("").as_posix()
        if stem in seen:
            continue
        seen.add(stem)
        jobs.append(Job(f"music21/{stem}", "music21", rel.stem, rel.parts[0], str(path), f"music21/{stem}"))
    return jobs


_SLOW_MARK = re.compile(
    r"(?<!nicht )(?<!nicht zu )\b(langsam|lento|largo|larghetto|adagio|lent|lentement|slowly|slow|grave)\b", re.I)
_FORTE = re.compile(r"<(?:f|ff|fff|sf|sfz|fz)/>")


@functools.cache
def is_calm_song(path: str) -> bool:
    """A song whose opening tempo is slow (marking or <= 60 bpm) and that is almost never loud."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith((".xml", ".musicxml")) and "META" not in n)
            xml = archive.read(name).decode("utf-8", "ignore")
    except (OSError, StopIteration, zipfile.BadZipFile):
        return False
    tempo = re.search(r'<sound[^>]*tempo="([\d.]+)"', xml)
    first_words = re.search(r"<words[^>]*>([^<]*)</words>", xml)
    slow = bool(first_words and _SLOW_MARK.search(first_words.group(1))) or bool(
        tempo and float(tempo.group(1)) <= 60)
    return slow and len(_FORTE.findall(xml)) <= 2


def _lieder_jobs(shared: Path, source: str) -> list[Job]:
    """Songs for `lieder` (classic) or `calm-lieder` (calm); each song belongs to one of them."""
    root = shared / "corpus" / "lieder" / "scores"
    jobs = []
    for path in sorted(root.glob("*/*/*/*.mxl")):
        if is_calm_song(str(path)) != (source == "calm-lieder"):
            continue
        composer, _set, song = path.relative_to(root).parts[:3]
        rel = path.relative_to(root).with_suffix("").as_posix()
        jobs.append(Job(f"{source}/{rel}", source, song.replace("_", " "), composer.replace("_", " "),
                        str(path), f"lieder/{rel}"))
    return jobs


@functools.lru_cache(maxsize=2)
def _charts(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _chart_jobs(shared: Path, source: str) -> list[Job]:
    path = shared / "corpus" / "jazz_standards" / "JazzStandards.json"
    jobs = []
    for index, entry in enumerate(_charts(str(path))):
        key = f"chart/{slug(entry.get('Title', str(index)))}-{index}"
        jobs.append(Job(f"{source}/{slug(entry.get('Title', ''))}-{index}", source,
                        entry.get("Title", "?"), entry.get("Composer"), f"{path}#{index}", key))
    return jobs


def _nottingham_jobs(shared: Path, source: str) -> list[Job]:
    jobs = []
    for path in sorted((shared / "corpus" / "nottingham" / "MIDI").glob("*.mid")):
        jobs.append(Job(f"{source}/{path.stem}", source, path.stem, None, str(path), f"nottingham/{path.stem}"))
    return jobs


def list_jobs(source: str, shared: Path) -> list[Job]:
    """Every candidate piece of a source, in a stable pseudo-random order (for fair subsets)."""
    if source == "music21":
        jobs = _music21_jobs(shared)
    elif source in ("lieder", "calm-lieder"):
        jobs = _lieder_jobs(shared, source)
    elif source in ("jazz-mma", "pop-mma", "calm-charts"):
        jobs = _chart_jobs(shared, source)
    elif source in ("pop-nottingham", "calm-nottingham"):
        jobs = _nottingham_jobs(shared, source)
    else:
        raise KeyError(source)
    if source in ("music21", "lieder", "calm-lieder"):
        # Scores parse in time roughly proportional to their size: small ones first, so a
        # time-bounded run gets many pieces (a longer run adds the big ones from where it stopped).
        return sorted(jobs, key=lambda job: (Path(job.arg).stat().st_size, job.id))
    return sorted(jobs, key=lambda job: stable_hash(job.id))


# --------------------------------------------------------------------------- loading


def _chart_entry(arg: str) -> dict:
    path, index = arg.rsplit("#", 1)
    return _charts(path)[int(index)]


def load_job(job: Job) -> pretty_midi.PrettyMIDI:
    """Build the PrettyMIDI of one job. Raises on bad input (the caller records the reason)."""
    from generator.corpus.arrangers import ambient, arrangements
    from generator.corpus.arrangers.arranger import bars_to_events

    rng = random.Random(stable_hash(job.id))
    if job.source in ("music21", "lieder", "calm-lieder"):
        from generator.corpus.arrangers.notation import parse_to_midi

        return parse_to_midi(job.arg)
    if job.source in ("jazz-mma", "pop-mma", "calm-charts"):
        chart = arrangements.chart_from_json(_chart_entry(job.arg))
        if job.source == "jazz-mma":
            return arrangements.jazz_from_chart(chart, rng)
        if job.source == "pop-mma":
            return arrangements.pop_from_chart(chart, rng)
        bars, shift = arrangements.vary_chart(chart, rng)
        return ambient.ambient_piece(bars_to_events(bars, chart.beats_per_bar), rng,
                                     beats_per_bar=chart.beats_per_bar)
    if job.source in ("pop-nottingham", "calm-nottingham"):
        tune = arrangements.tune_from_midi(job.arg)
        if job.source == "pop-nottingham":
            return arrangements.pop_from_tune(tune, rng)
        return ambient.ambient_piece(arrangements.bar_chords(tune), rng, transpose=rng.randint(-5, 6),
                                     beats_per_bar=tune.beats_per_bar)
    raise KeyError(job.source)
