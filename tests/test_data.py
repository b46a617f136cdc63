import json
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from generator.corpus.arrangers.arranger import bars_to_events, lead_line
from generator.corpus.arrangers.chords import Chord, parse_chord
from generator.corpus.arrangers.styles import all_groove_names
from generator.corpus.prepare import PrepareOptions, check_midi, prepare, split_of
from generator.corpus.sources import list_jobs
from generator.tokens import vocab

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"  # the whole licence-checked corpus, beside the project
CORPUS = REPO / "tests" / "fixtures" / "shared" / "corpus"  # a miniature copy, always present
needs_shared = pytest.mark.skipif(not (SHARED / "corpus").is_dir(),
                                  reason="the full corpus (../shared/corpus) is not beside this clone")
SHARD_KEYS = {"tokens", "offsets", "genre", "piece", "encoding"}
ROW_KEYS = {"id", "title", "composer", "genre", "source", "source_version", "licence", "licence_class",
            "synthetic", "split", "n_tokens", "seconds"}
LICENCE_CLASSES = {"pd", "permissive", "copyleft", "none", "synthetic"}


def _tune(path: Path, *, drums_only: bool = False, empty: bool = False) -> None:
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0, is_drum=drums_only)
    if not empty:
        inst.notes = [pretty_midi.Note(90, 36 + i % 3, i * 0.25, i * 0.25 + 0.1) for i in range(200)]
    pm.instruments.append(inst)
    pm.write(str(path))


@pytest.fixture(scope="module")
def tiny_shared(tmp_path_factory) -> Path:
    """A miniature shared/corpus: 2 real tunes + corrupt/empty/drums-only MIDI, 3 charts, 1 song."""
    root = tmp_path_factory.mktemp("shared")
    midi = root / "corpus" / "nottingham" / "MIDI"
    midi.mkdir(parents=True)
    for name in ("hpps59", "reelsm-q53"):
        shutil.copy(CORPUS / "nottingham" / "MIDI" / f"{name}.mid", midi)
    (midi / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    _tune(midi / "drums.mid", drums_only=True)
    _tune(midi / "empty.mid", empty=True)
    charts = json.loads((CORPUS / "jazz_standards" / "JazzStandards.json").read_text())
    picked = [c for c in charts if c["Title"] in ("Blue Bossa", "Autumn Leaves")]
    picked.append({"Title": "Odd", "TimeSignature": "7/4", "Sections": [{"MainSegment": {"Chords": "C|F"}}]})
    chart_dir = root / "corpus" / "jazz_standards"
    chart_dir.mkdir(parents=True)
    (chart_dir / "JazzStandards.json").write_text(json.dumps(picked))
    songs = sorted((CORPUS / "lieder" / "scores").glob("*/*/*/*.mxl"), key=lambda p: p.stat().st_size)
    target = root / "corpus" / "lieder" / "scores" / songs[0].relative_to(CORPUS / "lieder" / "scores")
    target.parent.mkdir(parents=True)
    shutil.copy(songs[0], target)
    return root


@pytest.fixture(scope="module")
def prepared(tiny_shared, tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    music21_ids = [j.id for j in list_jobs("music21", tiny_shared)[:2]]
    options = PrepareOptions(
        out=out, shared=tiny_shared, workers=1, cache=tmp_path_factory.mktemp("cache"),
        sources=("music21", "lieder", "jazz-mma", "pop-nottingham", "pop-mma", "calm-charts", "calm-nottingham"),
        limits={}, only=tuple(music21_ids) + tuple(j.id for s in ("lieder", "jazz-mma", "pop-nottingham", "pop-mma",
                                                                       "calm-charts", "calm-nottingham")
                                                   for j in list_jobs(s, tiny_shared)),
    )
    report = prepare(options)
    return out, report, options


def _load_split(out: Path, split: str) -> dict[str, np.ndarray]:
    with np.load(out / "shards" / f"{split}.npz") as npz:
        return {key: npz[key] for key in npz.files}


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "pieces.jsonl").read_text().splitlines()]


def _check_shards(out: Path, encoding: str = "beat") -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """Check the shards `gen data prepare` wrote (beat), or older ones without an encoding name (default)."""
    rows = _rows(out)
    shards = {s: _load_split(out, s) for s in ("train", "valid", "test")}
    seen: list[int] = []
    for split, shard in shards.items():
        if encoding == "default":
            assert set(shard) == SHARD_KEYS - {"encoding"}
        else:
            assert set(shard) == SHARD_KEYS and str(shard["encoding"]) == encoding
        assert shard["tokens"].dtype == np.uint16 and shard["offsets"].dtype == np.int64
        assert shard["genre"].dtype == np.int8 and shard["piece"].dtype == np.int32
        offsets = shard["offsets"]
        assert offsets[0] == 0 and offsets[-1] == shard["tokens"].size and np.all(np.diff(offsets) > 0)
        assert len(shard["genre"]) == len(shard["piece"]) == len(offsets) - 1
        if shard["tokens"].size:
            if encoding == "beat":
                assert int(shard["tokens"].max()) < vocab.BEAT_VOCAB_SIZE
                assert np.count_nonzero(shard["tokens"] == vocab.BAR) > 0
            else:
                assert int(shard["tokens"].max()) < vocab.VOCAB_SIZE
            assert not np.isin(shard["tokens"], [vocab.END, vocab.PAD, *range(vocab.GENRE, vocab.INSTRUMENT)]).any()
        for k, index in enumerate(shard["piece"]):
            row = rows[index]
            assert row["split"] == split
            assert vocab.GENRES[shard["genre"][k]] == row["genre"]
            assert offsets[k + 1] - offsets[k] == row["n_tokens"]
        seen += [int(i) for i in shard["piece"]]
    assert sorted(seen) == list(range(len(rows))), "every piece in exactly one split"
    for row in rows:
        assert set(row) == ROW_KEYS and row["licence_class"] in LICENCE_CLASSES
    assert len({r["id"] for r in rows}) == len(rows)
    return rows, shards


def test_prepare_writes_shards_in_the_exact_format(prepared):
    out, report, _ = prepared
    rows, _ = _check_shards(out)
    assert {r["genre"] for r in rows} == set(vocab.GENRES)
    sources_md = (out / "SOURCES.md").read_text().splitlines()
    assert sum(line.startswith("| jazz | ") for line in sources_md) == 1
    ids = {r["id"] for r in rows}
    assert "pop-nottingham/hpps59" in ids and "calm-nottingham/hpps59" in ids
    assert any(i.startswith("music21/") for i in ids) and any(i.startswith("lieder/") for i in ids)
    assert all(r["synthetic"] for r in rows if r["genre"] in ("jazz", "pop", "calm"))


def test_bad_inputs_are_skipped_with_a_reason(prepared):
    out, report, _ = prepared
    reasons = dict(report.skipped)
    assert "drums only" in reasons["pop-nottingham/drums"]
    assert "empty" in reasons["pop-nottingham/empty"]
    assert reasons["pop-nottingham/corrupt"]
    assert "meter" in reasons["jazz-mma/odd-2"]
    text = (out / "prepare_report.txt").read_text()
    assert "pop-nottingham/corrupt: " in text and "calm-nottingham/drums: drums only" in text
    assert not {r["id"] for r in _rows(out)} & set(reasons)


def test_rerun_from_cache_gives_identical_shards(prepared, tmp_path):
    out, _, options = prepared
    again = PrepareOptions(**{**options.__dict__, "out": tmp_path})
    prepare(again)
    for split in ("train", "valid", "test"):
        a, b = _load_split(out, split), _load_split(tmp_path, split)
        assert all(np.array_equal(a[k], b[k]) for k in SHARD_KEYS)
    assert (out / "pieces.jsonl").read_text() == (tmp_path / "pieces.jsonl").read_text()


def test_excluded_collections_never_listed():
    ids = [j.id for j in list_jobs("music21", SHARED)]
    assert len(ids) > 500
    for banned in ("essenFolksong", "palestrina", "ryansMammoth", "demos/"):
        assert not any(banned in i for i in ids), banned
    assert not any(j.arg.endswith((".krn", ".rntxt")) for j in list_jobs("music21", SHARED))


def test_split_is_by_work_and_deterministic():
    assert split_of("nottingham/jigs1") == split_of("nottingham/jigs1")
    splits = [split_of(f"work/{i}") for i in range(4000)]
    assert 0.87 < splits.count("train") / 4000 < 0.93
    assert splits.count("valid") > 120 and splits.count("test") > 120


def test_check_midi_rejects_drums_only_and_empty(tmp_path):
    _tune(tmp_path / "d.mid", drums_only=True)
    _tune(tmp_path / "e.mid", empty=True)
    _tune(tmp_path / "ok.mid")
    assert check_midi(pretty_midi.PrettyMIDI(str(tmp_path / "d.mid"))) == "drums only"
    assert "empty" in check_midi(pretty_midi.PrettyMIDI(str(tmp_path / "e.mid")))
    assert check_midi(pretty_midi.PrettyMIDI(str(tmp_path / "ok.mid"))) is None


def test_chart_chords_parse_and_name_for_mma():
    chord = parse_chord("Cm7b5/Gb")
    assert chord == Chord(0, "m7b5", 6) and chord.mma_name() == "Cm7b5/Gb"
    assert parse_chord("Bbmaj7#11").mma_name() == "BbM7#11"
    assert parse_chord("F7(Cm7)") == Chord(5, "7")
    assert parse_chord("Eb07").pitch_classes == (0, 3, 6, 9)
    assert parse_chord("") is None and parse_chord("x") is None


@pytest.mark.slow
def test_every_groove_exists_in_mma(tmp_path):
    lines = ["Tempo 120"]
    for bar, name in enumerate(sorted(all_groove_names()), start=1):
        lines += [f"Groove {name}", f"{bar} C"]
    (tmp_path / "all.mma").write_text("\n".join(lines) + "\n")
    done = subprocess.run(["mma", "-f", str(tmp_path / "all.mid"), str(tmp_path / "all.mma")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_lead_line_stays_in_range_with_chord_tones_on_downbeats():
    bars = [[parse_chord("Dm7")], [parse_chord("G7")], [parse_chord("Cmaj7")], [parse_chord("A7")]] * 4
    events = bars_to_events(bars, 4)
    notes = lead_line(events, 64, beats_per_bar=4, feel="swing", rng=random.Random(3))
    assert notes and all(62 <= n.pitch <= 81 for n in notes)
    for note in notes:
        if note.start_beat % 4 == 0:
            bar = bars[int(note.start_beat // 4)][0]
            assert note.pitch % 12 in bar.pitch_classes


def test_committed_shards_load_with_all_genres_in_every_split():
    rows, shards = _check_shards(REPO / "data", "default")  # the default encoding's build (the previous model)
    for split, shard in shards.items():
        assert set(np.unique(shard["genre"]).tolist()) == set(range(len(vocab.GENRES))), split
    hours = {g: sum(r["seconds"] for r in rows if r["genre"] == g) / 3600 for g in vocab.GENRES}
    assert min(hours.values()) >= 5.0 and sum(hours.values()) >= 50.0, hours
    size = sum((REPO / "data" / "shards" / f"{s}.npz").stat().st_size for s in shards)
    assert size < 15 * 2**20


@needs_shared
def test_each_song_is_either_classic_or_calm():
    calm = {j.split_key for j in list_jobs("calm-lieder", SHARED)}
    classic = {j.split_key for j in list_jobs("lieder", SHARED)}
    assert 50 < len(calm) < len(classic)
    assert not calm & classic


def test_chart_renderings_never_keep_the_original_key():
    from generator.corpus.arrangers.arrangements import chart_from_json, vary_chart

    entry = {"Title": "T", "TimeSignature": "4/4", "Sections": [{"MainSegment": {"Chords": "Dm7|G7|Cmaj7|Cmaj7"}}]}
    chart = chart_from_json(entry)
    for seed in range(40):
        bars, shift = vary_chart(chart, random.Random(seed))
        assert shift != 0 and bars[0][0].root == (2 + shift) % 12


def test_pop_arrangement_has_drums_bass_and_the_real_melody():
    from generator.corpus.arrangers.arrangements import pop_from_tune, tune_from_midi

    tune = tune_from_midi(CORPUS / "nottingham" / "MIDI" / "hpps59.mid")
    pm = pop_from_tune(tune, random.Random(1))
    assert any(i.is_drum and i.notes for i in pm.instruments)
    assert any(32 <= i.program < 40 and not i.is_drum for i in pm.instruments)
    lead = pm.instruments[-1]
    assert len(lead.notes) >= len(tune.melody)
    intervals = [b.pitch - a.pitch for a, b in zip(tune.melody, tune.melody[1:])]
    lead_intervals = [b.pitch - a.pitch for a, b in zip(lead.notes, lead.notes[1:])]
    assert lead_intervals[: len(intervals)] == intervals


def test_unknown_source_is_a_clear_error(tmp_path):
    from generator.errors import InputError

    with pytest.raises(InputError, match="unknown source"):
        prepare(PrepareOptions(out=tmp_path, shared=SHARED, sources=("essen",), workers=1))


def test_a_rendering_is_reproducible_without_the_cache():
    from generator.corpus.sources import load_job
    from generator.tokens.tokenizer import midi_to_ids

    for source in ("jazz-mma", "pop-nottingham", "calm-charts"):
        job = list_jobs(source, CORPUS.parent)[0]
        assert midi_to_ids(load_job(job)) == midi_to_ids(load_job(job)), source


def test_committed_beat_shards_mark_bars_in_every_genre_and_split():
    rows, shards = _check_shards(REPO / "data" / "beat", "beat")
    for split, shard in shards.items():
        assert set(np.unique(shard["genre"]).tolist()) == set(range(len(vocab.GENRES))), split
    hours = {g: sum(r["seconds"] for r in rows if r["genre"] == g) / 3600 for g in vocab.GENRES}
    assert min(hours.values()) >= 5.0 and sum(hours.values()) >= 50.0, hours
