"""A track's form and harmony (docs/recipes.md, "Form and harmony"): named templates per genre fitted
to the track's whole number of bars, and a per-genre library of progressions in scale degrees
rendered to chord indices (tokens/chords.py) in the track's key.

Fitting a template to n bars (`fit_sections`): the body sections are 8 bars long when at least three
fit with 4 bars to spare, else 4 bars; the body is the template's pattern for as many sections as fit
(at most MAX_SECTIONS; a longer track lengthens every section by whole groups of 4 bars); the bars
left over (4 to 11 in the usual case) go to the intro (at most 4, half of them) and the outro (the
rest, at least 1). A listed form keeps its body as listed where it fits (dropping sections from
the end where it does not) and its intro and outro absorb the difference in the same way.

Harmony per bar (`FormPlan.bar_chords`): each section letter gets one progression of its genre,
cycled over its bars; the intro is the genre's turnaround, ending on its last bar; the outro plays
the A progression's opening, then the genre's cadence, and its last bar is always the home chord.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generator.audio.edit_plan import Section  # name (intro, A..C, outro), start_bar from 0, bars
from generator.tokens import chords as ch

MAX_SECTIONS = 6
MIN_EDGE_BARS = 4  # intro + outro, when the track has room
EDGES = ("intro", "outro")
HARMONIES = ("template", "model")
# Section patterns by number of body sections (docs/recipes.md lists them).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "aaba": ("A", "AA", "ABA", "AABA", "AABAA", "AABABA"),  # jazz: the 32-bar song form
    "verse_chorus": ("A", "AB", "ABB", "ABAB", "ABABB", "ABABCB"),  # pop: A verse, B chorus, C bridge
    "aba": ("A", "AA", "ABA", "AABA", "ABACA", "AABACA"),  # classic: ternary, then rondo
    "evolving": ("A", "AA", "AAB", "AABB", "AABBA", "AABBAA"),  # calm: slow changes
}
GENRE_TEMPLATES = {"jazz": "aaba", "pop": "verse_chorus", "classic": "aba", "calm": "evolving"}
HOME_BONUS = 0.3  # chords_key: a recipe's first section ending on a key's home chord points to that key
# The share of each repeat's bars (at its end) whose melody is new (library/arrange.py): real
# classical pieces and slow songs repeat less of their top line than jazz heads and pop tunes do.
VARIED_SHARE = {"jazz": 0.25, "pop": 0.25, "classic": 0.5, "calm": 0.5}
# How long (beats) a note out of its planned chord, a semitone from one of its tones (an avoid note),
# may be held before the arrangement moves it onto a chord tone (library/arrange.py). Chosen on the
# beat-check library so that each genre's semitone-clash rate lands inside its real pieces' quartiles
# (QUALITY.md): at one beat everywhere, jazz and pop came out cleaner than their real pieces.
AVOID_BEATS = {"jazz": 1.5, "pop": 2.0, "classic": 1.0, "calm": 1.0}
TIMEKEEPERS = {"jazz": "ride", "pop": "backbeat"}  # the drums' time-keeping pattern (arrange.TIMEKEEPING)
# The loudest drum hit a genre's arrangement keeps (MIDI velocity): the model's jazz kicks struck at
# 114-126 over the brush kit, peaks that no master within 6 dB of limiting could bring to -14 LUFS
# under -1 dBTP (QUALITY.md, library checks); brushes top out at 96.
DRUM_CEILING = {"jazz": 96}
# A pitched accompaniment the arrangement plays from the plan's chords (arrange._broken_chords): calm
# has no drums, and its model takes held pads under a sparse melody with no pulse (0.26 on the
# library, real calm pieces 0.63); a broken chord in eighths in the piano's left hand gives it one.
ACCOMPANIMENT = {"calm": "broken_chords"}
MINOR_SHARE = {"jazz": 0.3, "pop": 0.3, "classic": 0.4, "calm": 0.3}  # of tracks in a drawn key

# Progressions: bars separated by "|", two chords in a bar by a space. Numerals count from the key's
# tonic (b/# lower or raise); the suffix is the quality: "" major, m, dim, aug, 7, maj7, m7, m7b5.
_P = dict[str, tuple[str, ...]]
PROGRESSIONS: dict[tuple[str, bool], _P] = {
    ("jazz", False): {
        "A": ("Imaj7 | VIm7 | IIm7 | V7 | Imaj7 | VIm7 | IIm7 V7 | Imaj7",
              "Imaj7 | I7 | IVmaj7 | IVm7 | IIIm7 | VI7 | IIm7 | V7",
              "IIm7 | V7 | Imaj7 | Imaj7 | IIm7 | V7 | IIIm7 VI7 | IIm7 V7"),
        "B": ("Vm7 | I7 | IVmaj7 | IVmaj7 | IIm7 | V7 | IIIm7 VI7 | IIm7 V7",
              "III7 | III7 | VI7 | VI7 | II7 | II7 | V7 | V7",
              "IVmaj7 | IVm7 | IIIm7 | VI7 | IIm7 | bIImaj7 | IIm7 | V7"),
        "intro": ("Imaj7 VIm7 | IIm7 V7",), "cadence": ("IIm7 V7",)},
    ("jazz", True): {
        "A": ("Im7 | Im7 | IVm7 | IVm7 | IIm7b5 | V7 | Im7 | IIm7b5 V7",
              "Im7 | VIm7b5 | IIm7b5 | V7 | Im7 | IVm7 | bVII7 | bIIImaj7"),
        "B": ("IVm7 | bVII7 | bIIImaj7 | bVImaj7 | IIm7b5 | V7 | Im7 | V7",
              "bVImaj7 | bVImaj7 | IIm7b5 | V7 | bIIImaj7 | bVImaj7 | IIm7b5 | V7"),
        "intro": ("Im7 VIm7b5 | IIm7b5 V7",), "cadence": ("IIm7b5 V7",)},
    ("pop", False): {
        "A": ("I | V | VIm | IV | I | V | IV | I", "I | VIm | IIm | V", "I | IV | VIm | V | I | IV | V | I"),
        "B": ("IV | V | IIIm | VIm", "VIm | IV | I | V", "IV | I | V | V"),
        "intro": ("I | IV | I | V",), "cadence": ("IV V",)},
    ("pop", True): {
        "A": ("Im | bVI | bVII | V", "Im | bVII | bVI | V", "Im | bVI | bIII | bVII | Im | bVI | V | Im"),
        "B": ("bVI | bVII | bIII | Im", "bIII | bVII | IVm | Im", "bVI | bIII | bVII | V"),
        "intro": ("Im | bVII | Im | V",), "cadence": ("bVI V",)},
    ("classic", False): {
        "A": ("I | IV | V | I | VIm | IIm | V7 | I", "I | V | I | IV | IIm | V | V7 | I"),
        "B": ("V | II7 | V | V7 | VIm | IIIm | IV | V7", "VIm | IIIm | IV | I | IIm | VIm | II7 | V"),
        "intro": ("I | IV | I | V",), "cadence": ("IV V7",)},
    ("classic", True): {
        "A": ("Im | IVm | V | Im | bVI | IVm | V7 | Im", "Im | V | Im | IVm | bVI | IIdim | V7 | Im"),
        "B": ("bIII | bVII | bIII | bVI | IVm | Im | V | V7", "bVI | bIII | IVm | V | bVI | IVm | V | V7"),
        "intro": ("Im | IVm | Im | V",), "cadence": ("IVm V7",)},
    # calm: a major seventh colours one chord in each phrase, not every chord (its root and seventh
    # are a semitone apart in pitch class: held in pads for whole bars, they doubled calm's clash)
    ("calm", False): {
        "A": ("I | IVmaj7 | I | V", "I | IIIm | IV | I", "I | VIm7 | IVmaj7 | I"),
        "B": ("VIm7 | IV | VIm7 | V", "IVmaj7 | IV | VIm7 | VIm7", "IIm7 | IVmaj7 | VIm7 | V"),
        "intro": ("I | V",), "cadence": ("IV V",)},
    ("calm", True): {
        "A": ("Im7 | bVImaj7 | IVm7 | V", "Im | IVm | Im | bVII", "Im7 | IVm7 | bVI | V"),
        "B": ("bIII | bVImaj7 | bIII | IVm7", "bVI | bVII | bIIImaj7 | bIII"),
        "intro": ("Im7 | bVI | Im7 | V",), "cadence": ("bVI V",)},
}
_NUMERAL = re.compile(r"^([b#]?)(VII|VI|V|IV|III|II|I)(m7b5|maj7|m7|dim|aug|7|m|)$")
_DEGREES = {"I": 0, "II": 2, "III": 4, "IV": 5, "V": 7, "VI": 9, "VII": 11}
_QUALITY = {"": "maj", "m": "min", "dim": "dim", "aug": "aug", "7": "7", "maj7": "maj7", "m7": "m7", "m7b5": "m7b5"}
_QUALITY_INDEX = {name: i for i, (name, _) in enumerate(ch.QUALITIES)}
_CHORD = re.compile(r"^([A-G])([#b]?)(m7b5|maj7|m7|dim|aug|7|m|)$")
_ITEM = re.compile(r"^\s*([A-Za-z]+)\s+(\d{1,3})\s*$")

Bar = tuple[int | None, ...]  # one or two chords of a bar (the second from its middle)


@dataclass(frozen=True)
class FormChoice:
    """What the recipe and the track's seed chose, before the track's bars are known."""

    template: str | None  # a TEMPLATES name; None: `listed`
    listed: tuple[tuple[str, int], ...] | None  # a recipe's own form: (section, bars)
    harmony: str  # "template", "model" or "recipe"
    picks: tuple[int, ...]  # progression picks per letter A, B, C (an index into the genre's list)
    tonic: int  # pitch class of the home key (the harmony is written in it)
    minor: bool
    given: tuple[tuple[str, tuple[Bar, ...]], ...] = ()  # a recipe's chords per section name, in the key
    moved: int = 0  # semitones the recipe's chords were moved to reach the requested key

    @property
    def key_name(self) -> str:
        from generator.library.keys import Key

        return Key(self.tonic, self.minor).name

    @property
    def home_chord(self) -> int:
        quality = "min" if self.minor else "maj"
        return ch.chord_index(self.tonic, _QUALITY_INDEX[quality])

    def as_dict(self) -> dict[str, Any]:
        return {"template": self.template, "listed": [list(s) for s in self.listed or ()] or None,
                "harmony": self.harmony, "picks": list(self.picks), "key": self.key_name, "moved": self.moved,
                "given": {name: [[ch.chord_name(c) for c in bar] for bar in bars] for name, bars in self.given}}


@dataclass(frozen=True)
class FormPlan:
    """A track's sections and its harmony per bar (empty: the model's own)."""

    choice: FormChoice
    sections: tuple[Section, ...]
    bar_chords: tuple[Bar, ...]
    varied_share: float = 0.25  # of a repeat's bars, at its end, whose melody is new (VARIED_SHARE)
    timekeeper: str | None = None  # the genre's time-keeping drum pattern (TIMEKEEPERS); None: the groove alone
    avoid_beats: float = 1.0  # an avoid note held this long moves onto a chord tone (AVOID_BEATS)
    drum_ceiling: int = 127  # the loudest drum velocity kept (DRUM_CEILING)
    accompaniment: str | None = None  # a pattern the arrangement plays from the chords (ACCOMPANIMENT)

    def varied_bars(self, bars: int) -> int:
        """Bars at the end of a repeat of `bars` bars that keep the one pass's melody (at least 1)."""
        return max(1, round(bars * self.varied_share)) if bars > 1 else 0

    @property
    def n_bars(self) -> int:
        return sum(s.bars for s in self.sections)

    def changes(self, meter: tuple[int, int], grid: Sequence[int]) -> tuple[tuple[float, int | None], ...] | None:
        """GenerationRequest.chords: (beats from the first bar line, chord) where the harmony changes;
        a bar's second chord at its middle, moved back onto every grid division the track uses."""
        if not self.bar_chords:
            return None
        from generator.tokens import vocab

        quarters = vocab.quarters_per_bar(meter)
        unit = math.lcm(*(vocab.STEPS_PER_BEAT // int(g) for g in grid)) / vocab.STEPS_PER_BEAT
        middle = math.floor(quarters / 2 / unit) * unit
        out: list[tuple[float, int | None]] = []
        for i, bar in enumerate(self.bar_chords):
            for beat, chord in zip((i * quarters, i * quarters + middle), bar):
                if not out or out[-1][1] != chord:
                    out.append((beat, chord))
        return tuple(out)

    def sidecar_sections(self, bpm: float, meter: tuple[int, int]) -> list[dict[str, Any]]:
        """track.sections: name, start_bar, bars, start_s, end_s at the played tempo."""
        from generator.tokens import vocab

        bar_s = vocab.quarters_per_bar(meter) * 60.0 / bpm
        return [{"name": s.name, "start_bar": s.start_bar, "bars": s.bars, "start_s": round(s.start_bar * bar_s, 3),
                 "end_s": round((s.start_bar + s.bars) * bar_s, 3)} for s in self.sections]

    def as_dict(self) -> dict[str, Any]:
        """The sidecar's record (track.extra.planned.form)."""
        return {**self.choice.as_dict(), "sections": [f"{s.name} {s.bars}" for s in self.sections],
                "varied_share": self.varied_share,
                "chords": [" ".join(ch.chord_name(c) for c in bar) for bar in self.bar_chords]}


# ---- parsing ---------------------------------------------------------------------------------------

def numeral_chord(symbol: str, tonic: int) -> int:
    """'bVImaj7' in a key with this tonic -> chord index; ValueError for anything else."""
    match = _NUMERAL.match(symbol.strip())
    if match is None:
        raise ValueError(f"{symbol!r} is not a chord numeral")
    accidental, numeral, quality = match.groups()
    root = tonic + _DEGREES[numeral] + {"b": -1, "#": 1, "": 0}[accidental]
    return ch.chord_index(root, _QUALITY_INDEX[_QUALITY[quality]])


def progression(text: str, tonic: int) -> tuple[Bar, ...]:
    """'IIm7 V7 | Imaj7' -> ((Dm7, G7), (Cmaj7,)) as chord indices, in the key of `tonic`."""
    return tuple(tuple(numeral_chord(s, tonic) for s in bar.split()) for bar in text.split("|"))


def chord_named(name: str) -> int | None:
    """'Dm7', 'C#maj7', 'Bbm', 'N.C.' (None) -> chord index; KeyError for anything else."""
    match = _CHORD.match(name)
    if name == "N.C.":
        return None
    if match is None:
        raise KeyError(name)
    letter, accidental, quality = match.groups()
    root = "C D EF G A B".index(letter) + {"#": 1, "b": -1, "": 0}[accidental]
    return ch.chord_index(root, _QUALITY_INDEX[_QUALITY[quality]])


def chord_bar(text: str) -> Bar:
    """'Dm7 G7' -> one bar of one or two chord indices; KeyError for anything else."""
    names = text.split()
    if not 1 <= len(names) <= 2:
        raise KeyError(text)
    return tuple(chord_named(name) for name in names)


def listed_form(items: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """['intro 4', 'A 8', ...] -> (('intro', 4), ('A', 8), ...); ValueError naming the bad item."""
    found = []
    for i, item in enumerate(items):
        match = _ITEM.match(item) if isinstance(item, str) else None
        name = match.group(1) if match else ""
        name = name.lower() if name.lower() in EDGES else name.upper()
        if match is None or not (name in EDGES or len(name) == 1) or not 1 <= int(match.group(2)) <= 64:
            raise ValueError(i)
        found.append((name, int(match.group(2))))
    return tuple(found)


# ---- fitting ---------------------------------------------------------------------------------------

def _edges(left: int, intro_max: int = 4) -> tuple[int, int]:
    intro = min(intro_max, left // 2) if left > 1 else 0
    return intro, left - intro


def _laid_out(names: Sequence[str], sizes: Sequence[int]) -> tuple[Section, ...]:
    out, bar = [], 0
    for name, size in zip(names, sizes):
        if size > 0:
            out.append(Section(name, bar, size))
            bar += size
    return tuple(out)


def fit_sections(choice: FormChoice, n_bars: int) -> tuple[Section, ...]:
    """The sections of a track of n_bars (the rule in the module docstring); they fill it exactly."""
    if choice.listed is not None:
        return _fit_listed(choice.listed, n_bars)
    if n_bars < 2 + MIN_EDGE_BARS:  # too short for a form: one A and a 1- or 2-bar outro
        outro = min(2, n_bars - 1) if n_bars > 1 else n_bars
        return _laid_out(("A", "outro"), (n_bars - outro, outro))
    room = n_bars - MIN_EDGE_BARS
    size = 8 if room >= 24 else 4
    count = max(1, min(MAX_SECTIONS, room // size))
    if count == MAX_SECTIONS and room >= MAX_SECTIONS * (size + 4):
        size = room // MAX_SECTIONS // 4 * 4
    body = TEMPLATES[choice.template or "aaba"][count - 1]
    intro, outro = _edges(n_bars - count * size)
    return _laid_out(("intro", *body, "outro"), (intro, *[size] * count, outro))


def _fit_listed(listed: Sequence[tuple[str, int]], n_bars: int) -> tuple[Section, ...]:
    body = [(n, b) for n, b in listed if n not in EDGES]
    intro_max = sum(b for n, b in listed if n == "intro")
    while len(body) > 1 and sum(b for _, b in body) > n_bars - 1:
        body.pop()
    if body and body[0][1] > n_bars - 1:
        body = [(body[0][0], max(0, n_bars - 1))]
    intro, outro = _edges(n_bars - sum(b for _, b in body), intro_max)
    return _laid_out(("intro", *(n for n, _ in body), "outro"), (intro, *(b for _, b in body), outro))


def plan_form(choice: FormChoice, genre: str, n_bars: int) -> FormPlan:
    """The choice fitted to the track's bars, with its harmony per bar (none for `model`)."""
    sections = fit_sections(choice, n_bars)
    if choice.harmony == "model":
        return FormPlan(choice, sections, (), **_genre_settings(genre))
    library = PROGRESSIONS[(genre, choice.minor)]
    given = dict(choice.given)

    def source(name: str) -> tuple[Bar, ...]:
        if name in given:
            return given[name]
        if name in EDGES:
            return progression(library["intro"][0], choice.tonic)
        letter = "ABC".index(name) if name in "ABC" else 2
        options = library["A" if letter == 0 else "B"]
        pick = choice.picks[letter] % len(options)
        if letter == 2 and len(options) > 1 and pick == choice.picks[1] % len(options):
            pick = (pick + 1) % len(options)  # C contrasts with B
        return progression(options[pick], choice.tonic)

    bars: list[Bar] = []
    for section in sections:
        if section.name == "intro" and "intro" not in given:
            turn = source("intro")
            bars += [turn[(i - section.bars) % len(turn)] for i in range(section.bars)]
        elif section.name == "outro":
            bars += _outro(source("A"), given.get("outro"), library, choice, section.bars)
        else:
            prog = source(section.name)
            bars += [prog[i % len(prog)] for i in range(section.bars)]
    return FormPlan(choice, sections, tuple(bars), **_genre_settings(genre))


def _genre_settings(genre: str) -> dict[str, Any]:
    """FormPlan's fields that follow from the genre."""
    return {"varied_share": VARIED_SHARE[genre], "timekeeper": TIMEKEEPERS.get(genre),
            "avoid_beats": AVOID_BEATS[genre], "drum_ceiling": DRUM_CEILING.get(genre, 127),
            "accompaniment": ACCOMPANIMENT.get(genre)}


def _outro(a: tuple[Bar, ...], given: tuple[Bar, ...] | None, library: _P, choice: FormChoice,
           n: int) -> list[Bar]:
    """The A progression's opening (or the recipe's outro), the cadence, and the home chord last."""
    home: Bar = (choice.home_chord,)
    if given is not None:
        return [given[i % len(given)] for i in range(n - 1)] + [home]
    cadence = progression(library["cadence"][0], choice.tonic)
    head = [a[i % len(a)] for i in range(max(0, n - 1 - len(cadence)))]
    return (head + list(cadence))[-(n - 1):] + [home] if n > 1 else [home]


# ---- choosing ---------------------------------------------------------------------------------------

def chords_key(given: Sequence[tuple[str, Sequence[Bar]]]) -> tuple[int, bool]:
    """(tonic, minor) of a recipe's chords: Krumhansl-Schmuckler on their tones (roots counted
    double, each chord by its share of a bar), plus HOME_BONUS for the key whose home chord ends the
    first section listed (progressions mostly end at home)."""
    import numpy as np

    from generator.eval.features import _KK_MAJOR, _KK_MINOR

    weights = np.zeros(12)
    for _, bars in given:
        for bar in bars:
            for chord in bar:
                if chord is not None:
                    weights[ch.root_of(chord)] += 1.0 / len(bar)
                    weights[list(ch.pitch_classes(chord))] += 1.0 / len(bar)
    last = given[0][1][-1][-1] if given and given[0][1] else None
    best = (-9.0, 0, False)
    for tonic in range(12):
        for profile, minor in ((_KK_MAJOR, False), (_KK_MINOR, True)):
            score = float(np.corrcoef(weights, np.roll(profile, tonic))[0, 1]) if np.ptp(weights) else 0.0
            if last is not None and ch.root_of(last) == tonic and (ch.quality_of(last) in (1, 6)) == minor \
                    and ch.quality_of(last) in (0, 1, 5, 6):
                score += HOME_BONUS
            best = max(best, (score, -tonic, minor))
    return -best[1], best[2]


def choose(genre: str, form: Any, harmony: Any, requested_key: str | None,
           uniforms: Sequence[float]) -> FormChoice:
    """A track's FormChoice from its recipe values and FORM_DRAWS uniforms of its seed.

    `form`: 'auto', a TEMPLATES name or a listed form; `harmony`: 'template', 'model' or a mapping
    section -> bars (already chord indices). The key: the requested one, else drawn (tonic uniform,
    minor with the genre's MINOR_SHARE); a recipe's chords are moved to the requested key."""
    from generator.library.keys import Key, parse_key, semitones_to

    _, u_a, u_b, u_c, u_tonic, u_mode = uniforms  # the first: for a genre with several templates
    listed = tuple(form) if isinstance(form, (list, tuple)) else None
    template = None if listed is not None else (GENRE_TEMPLATES[genre] if form in (None, "auto") else form)
    picks = tuple(int(u * 64) for u in (u_a, u_b, u_c))
    requested = parse_key(requested_key) if requested_key else None
    if isinstance(harmony, dict):
        given = tuple(harmony.items())
        tonic, minor = chords_key(given)
        moved = 0
        if requested is not None:
            moved = semitones_to(Key(tonic, minor), requested)
            tonic, minor = (tonic + moved) % 12, minor
            given = tuple((name, tuple(tuple(c if c is None else ch.transpose_chord(c, moved) for c in bar)
                                       for bar in bars)) for name, bars in given)
        return FormChoice(template, listed, "recipe", picks, tonic, minor, given, moved)
    if requested is not None:
        tonic, minor = requested.tonic, requested.minor
    else:
        tonic, minor = min(11, int(u_tonic * 12)), u_mode < MINOR_SHARE[genre]
    return FormChoice(template, listed, harmony or "template", picks, tonic, minor)


FORM_DRAWS = 6  # uniforms a track's form takes from its stream, whether the recipe sets a form or not
