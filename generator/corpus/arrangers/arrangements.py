"""Whole synthetic pieces: jazz and pop from chord charts, pop from Nottingham tunes.

Each builder takes its input and a seeded random.Random and returns a PrettyMIDI; the chart's
harmony is transposed and varied, grooves and tempi are drawn per piece, and the lead line is
generated (no chart carries a melody).
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import pretty_midi

from generator.corpus.arrangers.arranger import (
    ArrangeError,
    BeatNote,
    ChordEvent,
    add_beat_notes,
    bars_to_events,
    chord_at,
    lead_line,
    mark_beat_grid,
    render_mma,
)
from generator.corpus.arrangers.chords import Chord, chord_from_pitch_classes, parse_chord
from generator.corpus.arrangers.styles import JAZZ_STYLES, POP_STYLES, RHYTHM_TO_STYLE, Groove, Style

TARGET_PIECE_S = 150.0


@dataclass(frozen=True)
class Chart:
    title: str
    composer: str | None
    rhythm: str | None
    beats_per_bar: int
    bars: tuple[tuple[Chord | None, ...], ...]


def _segment_bars(text: str) -> list[tuple[Chord | None, ...]]:
    bars = []
    for bar in text.split("|"):
        chords = tuple(parse_chord(s) if s.strip() else None for s in bar.split(","))
        bars.append(chords)
    return bars


def chart_from_json(entry: dict) -> Chart:
    """A chart of the JazzStandards JSON with its sections and endings played in order."""
    meter = entry.get("TimeSignature") or "4/4"
    beats = {"4/4": 4, "3/4": 3}.get(meter)
    if beats is None:
        raise ArrangeError(f"unsupported meter {meter}")
    bars: list[tuple[Chord | None, ...]] = []
    for section in entry.get("Sections", []):
        main = _segment_bars(section["MainSegment"]["Chords"])
        endings = section.get("Endings") or []
        if not endings:
            bars += main
        for ending in endings:
            bars += main + _segment_bars(ending["Chords"])
    first = next((c for bar in bars for c in bar if c is not None), None)
    if first is None:
        raise ArrangeError("chart has no readable chord")
    if bars and (not bars[0] or bars[0][0] is None):
        bars[0] = (first,) + tuple(bars[0][1:])
    return Chart(entry.get("Title", "?"), entry.get("Composer"), entry.get("Rhythm"), beats, tuple(bars))


_EXTEND = {"7": ("9", "13", "7"), "m7": ("m9", "m7", "m11"), "maj7": ("6", "maj9", "69", "maj7"),
           "": ("6", "add9", ""), "m": ("m6", "m7", "m")}


def vary_chart(chart: Chart, rng: random.Random) -> tuple[list[list[Chord | None]], int]:
    """Transpose (never by 0) and lightly reharmonise: tritone subs, extensions."""
    shift = rng.choice([s for s in range(-5, 7) if s != 0])
    bars: list[list[Chord | None]] = []
    for bar in chart.bars:
        new_bar: list[Chord | None] = []
        for chord in bar:
            if chord is None:
                new_bar.append(None)
                continue
            chord = chord.transposed(shift)
            if chord.quality == "7" and chord.bass is None and rng.random() < 0.12:
                chord = Chord((chord.root + 6) % 12, "7")
            elif chord.quality in _EXTEND and chord.bass is None and rng.random() < 0.3:
                chord = Chord(chord.root, rng.choice(_EXTEND[chord.quality]))
            new_bar.append(chord)
        bars.append(new_bar)
    return bars, shift


def _plan(bars: list[list[Chord | None]], groove: Groove, choruses: int, intro_bars: int, bpb: int):
    """Bars and per-bar grooves: intro over the form's last bars, choruses, a 2-bar ending."""
    last = next(c for bar in reversed(bars) for c in reversed(bar) if c is not None)
    intro = [list(b) for b in bars[-intro_bars:]] if len(bars) >= intro_bars else [[last]] * intro_bars
    plan_bars = intro + [list(b) for _ in range(choruses) for b in bars] + [[last], [last]]
    grooves = [groove.intro] * intro_bars
    for k in range(choruses):
        grooves += [groove.main if k % 2 == 0 else groove.variant] * len(bars)
    grooves += [groove.end] * 2
    return plan_bars, grooves


def render_changes(
    bars: list[list[Chord | None]], style: Style, rng: random.Random, *, lead: bool = True,
) -> pretty_midi.PrettyMIDI:
    """Changes -> mma accompaniment in one of the style's grooves (+ a generated lead line)."""
    bpb = style.beats_per_bar
    tempo = rng.randint(*style.tempo_bpm)
    chorus_s = len(bars) * bpb * 60.0 / tempo
    choruses = max(1, min(3, round(TARGET_PIECE_S / max(chorus_s, 1.0))))
    groove = rng.choice(style.grooves)
    intro_bars = 4 if len(bars) >= 8 else 2
    plan_bars, grooves = _plan(bars, groove, choruses, intro_bars, bpb)
    pm = render_mma(plan_bars, grooves, beats_per_bar=bpb, tempo_bpm=tempo,
                    seed=rng.randrange(2**31))
    mark_beat_grid(pm, bars_to_events(plan_bars, bpb), beats_per_bar=bpb, seconds_per_beat=60.0 / tempo)
    if lead:
        events = bars_to_events(plan_bars[intro_bars:-2], bpb)
        notes = lead_line(events, len(bars) * choruses * bpb, beats_per_bar=bpb, feel=style.feel, rng=rng)
        add_beat_notes(pm, notes, program=rng.choice(style.leads), tempo_bpm=tempo,
                       offset_beats=intro_bars * bpb, swing=style.feel == "swing")
    return pm


def jazz_from_chart(chart: Chart, rng: random.Random) -> pretty_midi.PrettyMIDI:
    style = JAZZ_STYLES[RHYTHM_TO_STYLE.get(chart.rhythm or "", "swing")]
    if style.beats_per_bar != chart.beats_per_bar:
        style = JAZZ_STYLES["waltz" if chart.beats_per_bar == 3 else "swing"]
    bars, _ = vary_chart(chart, rng)
    return render_changes(bars, style, rng)


def pop_from_chart(chart: Chart, rng: random.Random) -> pretty_midi.PrettyMIDI:
    style = POP_STYLES["waltz" if chart.beats_per_bar == 3 else "straight"]
    bars, _ = vary_chart(chart, rng)
    simple = [[None if c is None else Chord(c.root, "m" if c.is_minor else "", c.bass) for c in bar]
              for bar in bars]
    return render_changes(simple, style, rng)


# --------------------------------------------------------------------------- Nottingham


@dataclass(frozen=True)
class Tune:
    """A melody and its chords on a beat grid (beat 0 = first downbeat with a chord)."""

    melody: tuple[BeatNote, ...]
    chords: tuple[ChordEvent, ...]
    beats_per_bar: int  # source beats: 4, 2, 3 (quarters) or 2, 3, 4 (dotted quarters)
    compound: bool
    total_beats: float


def _meter(pm: pretty_midi.PrettyMIDI) -> tuple[int, int]:
    signatures = {(ts.numerator, ts.denominator) for ts in pm.time_signature_changes}
    if len(signatures) != 1:
        raise ArrangeError(f"meter changes {sorted(signatures)}")
    return signatures.pop()


def tune_from_midi(path: str | Path) -> Tune:
    """A Nottingham MIDI (melody track + chord track, 120 bpm) -> Tune."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = pretty_midi.PrettyMIDI(str(path))
    if not any(i.notes for i in pm.instruments):
        raise ArrangeError("empty MIDI (no notes)")
    if all(i.is_drum for i in pm.instruments if i.notes):
        raise ArrangeError("drums only")
    numerator, denominator = _meter(pm)
    compound = denominator == 8 and numerator % 3 == 0
    tempo = float(pm.get_tempo_changes()[1][0]) if len(pm.get_tempo_changes()[1]) else 120.0
    quarter_s = 60.0 / tempo
    unit_s = quarter_s * 1.5 if compound else quarter_s * 4 / denominator if denominator == 4 else quarter_s
    if compound:
        bpb = numerator // 3
    elif denominator == 2:
        bpb, unit_s = numerator * 2, quarter_s
    else:
        bpb = numerator
    if bpb not in (2, 3, 4):
        raise ArrangeError(f"unsupported meter {numerator}/{denominator}")
    tracks = [i for i in pm.instruments if i.notes and not i.is_drum]
    if len(tracks) < 2:
        raise ArrangeError("no chord track")

    def polyphony(inst) -> float:
        starts = [round(n.start, 2) for n in inst.notes]
        return len(starts) / max(1, len(set(starts)))

    chord_track = max(tracks, key=polyphony)
    melody_track = min(tracks, key=polyphony)
    groups: dict[float, list[int]] = {}
    for note in chord_track.notes:
        groups.setdefault(round(note.start, 2), []).append(note.pitch)
    t0 = min(groups)
    events: list[ChordEvent] = []
    for start in sorted(groups):
        pitches = groups[start]
        chord = chord_from_pitch_classes({p % 12 for p in pitches}, min(pitches) % 12)
        beat = (start - t0) / unit_s
        if chord is None or (events and events[-1].chord == chord):
            continue
        events.append(ChordEvent(beat, 0.0, chord))
    end_s = max(n.end for n in chord_track.notes + melody_track.notes)
    total = (end_s - t0) / unit_s
    events = [ChordEvent(e.start_beat, (events[i + 1].start_beat if i + 1 < len(events) else total)
                         - e.start_beat, e.chord) for i, e in enumerate(events)]
    melody = tuple(BeatNote((n.start - t0) / unit_s, (n.end - n.start) / unit_s, n.pitch, n.velocity)
                   for n in melody_track.notes)
    return Tune(melody, tuple(events), bpb, compound, total)


def pop_from_tune(tune: Tune, rng: random.Random) -> pretty_midi.PrettyMIDI:
    """The tune's melody over an mma pop groove (12/8 for jigs, waltz for 3/4), transposed."""
    if tune.beats_per_bar == 3:
        style = POP_STYLES["waltz"]
    else:
        style = POP_STYLES["compound" if tune.compound else "straight"]
    bpb = style.beats_per_bar
    slot = bpb if bpb == 3 else 2
    n_bars = max(1, math.ceil(tune.total_beats / bpb - 1e-6))
    shift = rng.randint(-4, 5)
    bars = [[chord_at(list(tune.chords), b * bpb + s).transposed(shift) for s in range(0, bpb, slot)]
            for b in range(n_bars)]
    tempo = rng.randint(*style.tempo_bpm)
    passes = 2 if n_bars * bpb * 60.0 / tempo < 60.0 else 1
    groove = rng.choice(style.grooves)
    intro_bars = 2
    plan_bars, grooves = _plan(bars, groove, passes, intro_bars, bpb)
    plan_bars[:intro_bars] = [[bars[0][0]]] * intro_bars
    pm = render_mma(plan_bars, grooves, beats_per_bar=bpb, tempo_bpm=tempo,
                    seed=rng.randrange(2**31))
    mark_beat_grid(pm, bars_to_events(plan_bars, bpb), beats_per_bar=bpb, seconds_per_beat=60.0 / tempo)
    pitches = sorted(n.pitch for n in tune.melody)
    octave = 12 * round((70 - pitches[len(pitches) // 2] - shift) / 12) if pitches else 0
    programs = rng.sample(style.leads, 2)
    for k in range(passes):
        offset = intro_bars * bpb + k * n_bars * bpb
        notes = [BeatNote(n.start_beat, n.beats * 0.95, n.pitch + shift + octave,
                          max(40, min(115, n.velocity - 10 + rng.randint(-12, 12))))
                 for n in tune.melody if n.start_beat + offset >= 0]
        add_beat_notes(pm, notes, program=programs[k % 2], tempo_bpm=tempo, offset_beats=offset)
    return pm


def bar_chords(tune: Tune) -> list[ChordEvent]:
    """The tune's harmony at one chord per bar (the one sounding longest in it): a calm pace."""
    span = tune.beats_per_bar
    events: list[ChordEvent] = []
    start = 0.0
    while start < tune.total_beats - 1e-6:
        end = min(start + span, tune.total_beats)
        weight: dict[Chord, float] = {}
        for event in tune.chords:
            overlap = min(end, event.start_beat + event.beats) - max(start, event.start_beat)
            if overlap > 1e-6:
                weight[event.chord] = weight.get(event.chord, 0.0) + overlap
        chord = max(weight, key=weight.get) if weight else chord_at(list(tune.chords), start)
        if events and events[-1].chord == chord:
            last = events[-1]
            events[-1] = ChordEvent(last.start_beat, last.beats + (end - start), chord)
        else:
            events.append(ChordEvent(start, end - start, chord))
        start += span
    return events
