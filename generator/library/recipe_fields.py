"""Validators for recipe values: numbers and [lo, hi] ranges, choices, text, genres, instruments.

Each raises `fail(problem, fix, *subpath)`, a pydantic error whose context carries the part of
the key path below the field (e.g. the genre name), so the loader can point at the right line.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import string
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

from pydantic_core import PydanticCustomError

from generator.library.folders import FOLDER_FIX, folder_problem
from generator.library.keys import parse_key
from generator.names import slug
from generator.tokens import vocab

ERROR_TYPE = "recipe"
MAX_TRACKS = 10_000
MAX_DURATION_S = 600.0
TITLE_FIELDS = ("n", "name", "genre")
# Beat time (sampling/generate.py keeps the same values; torch-free copies, a test keeps them equal).
METERS = vocab.METERS
GRID_DIVISIONS = vocab.GRID_DIVISIONS
BPM_LIMITS = (20, 300)  # what GenerationRequest accepts

# GS/GM2 drum kits: the program number selects the kit on the drum channel.
DRUM_KITS = {"standard": 0, "room": 8, "power": 16, "electronic": 24, "tr808": 25, "jazz": 32,
             "brush": 40, "orchestra": 48, "sfx": 56}

# What each genre plays when the recipe says nothing: family -> GM program (drums: kit).
DEFAULT_INSTRUMENTATION: dict[str, dict[str, int]] = {
    "classic": {"piano": 0, "strings": 48},  # grand piano, string ensemble
    "jazz": {"piano": 0, "bass": 32, "drums": 40},  # grand piano, acoustic bass, brush kit
    "calm": {"piano": 0, "strings": 49, "synth_pad": 89},  # soft piano, slow strings, warm pad
    "pop": {"piano": 4, "bass": 33, "drums": 0},  # electric piano, finger bass, standard kit
}

# The words a genre's tracks are described and tagged with when the recipe's `library.moods` says nothing.
DEFAULT_MOODS: dict[str, tuple[str, ...]] = {
    "classic": ("elegant", "reflective"),
    "jazz": ("relaxed", "warm"),
    "calm": ("calm", "peaceful"),
    "pop": ("upbeat", "bright"),
}
LICENCE = ("Royalty-free: composed by the gen Music Transformer trained on public-domain and "
           "permissively licensed material; rendered with an MIT-licensed SoundFont.")
YEARS = (1900, 2999)


def fail(problem: str, fix: str, *subpath: str | int) -> NoReturn:
    raise PydanticCustomError(ERROR_TYPE, "{problem} ({fix})",
                              {"problem": problem, "fix": fix, "subpath": list(subpath)})


def show(value: Any) -> str:
    """A short, one-line rendering of a user's value for messages."""
    if value is None:
        text = "nothing (null)"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, dict):
        text = "a mapping"
    elif isinstance(value, (list, tuple)):
        text = f"a list of {len(value)}"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def _interval(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    return f"{'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else str(x)


def number(value: Any, *, integer: bool, lo: float, hi: float, lo_open: bool = False,
           hi_open: bool = False, example: str, subpath: tuple = ()) -> int | float:
    """One finite number inside the interval (ints only where `integer`)."""
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"expected {kind}, got {show(value)}", f"write e.g. {example}", *subpath)
    if integer and not isinstance(value, int):
        fail(f"expected a whole number, got {show(value)}", f"write e.g. {example}", *subpath)
    if isinstance(value, float) and not math.isfinite(value):
        fail(f"{show(value)} is not a finite number", f"write e.g. {example}", *subpath)
    too_low = value < lo or (lo_open and value == lo)
    too_high = value > hi or (hi_open and value == hi)
    if too_low or too_high:
        where = _interval(lo, hi, lo_open, hi_open)
        fail(f"{show(value)} is outside {where}", f"use a value in {where}, e.g. {example}",
             *subpath)
    return int(value) if integer else float(value)


def number_field(**bounds: Any) -> Callable[[Any], int | float]:
    return lambda value: number(value, **bounds)


def range_field(*, integer: bool, **bounds: Any) -> Callable[[Any], tuple]:
    """A number or a [lo, hi] list -> (lo, hi); a single number gives (x, x)."""

    def validate(value: Any) -> tuple:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                fail(f"a range needs exactly two values [min, max], got {show(value)}",
                     f"write one number, or [min, max] like {bounds['example_range']}")
            first, second = (number(v, integer=integer, subpath=(i,), **_bounds(bounds))
                             for i, v in enumerate(value))
            if first > second:
                fail(f"range [{_fmt(first)}, {_fmt(second)}] has min above max",
                     f"write [{_fmt(second)}, {_fmt(first)}]")
            return first, second
        single = number(value, integer=integer, **_bounds(bounds))
        return single, single

    return validate


def _bounds(bounds: dict) -> dict:
    return {k: v for k, v in bounds.items() if k != "example_range"}


def choice_field(options: Iterable[Any], example: Any) -> Callable[[Any], Any]:
    allowed = tuple(options)

    def validate(value: Any) -> Any:
        # bool is an int in Python; `true` is never one of our choices.
        if isinstance(value, bool) or value not in allowed:
            listed = ", ".join(str(o) for o in allowed)
            fail(f"{show(value)} is not one of {listed}", f"write e.g. {example}")
        return value

    return validate


def text(value: Any, *, max_len: int, example: str, subpath: tuple = ()) -> str:
    """Non-empty one-line text without control characters, stripped."""
    if not isinstance(value, str):
        fail(f"expected text, got {show(value)}", f"write e.g. {example} (quote it if needed)",
             *subpath)
    stripped = value.strip()
    if not stripped:
        fail("is empty", f"write e.g. {example}", *subpath)
    if any(ord(c) < 32 or ord(c) == 127 for c in stripped):
        fail("contains a line break or control character", "keep it on one line", *subpath)
    if len(stripped) > max_len:
        fail(f"is {len(stripped)} characters long (at most {max_len})", "shorten it", *subpath)
    return stripped


def text_field(max_len: int, example: str) -> Callable[[Any], str]:
    return lambda value: text(value, max_len=max_len, example=example)


def optional_text_field(max_len: int, example: str) -> Callable[[Any], str | None]:
    """text_field, or None (null or left out) for 'use the default'."""
    return lambda value: None if value is None else text(value, max_len=max_len, example=example)


def url(value: Any) -> str | None:
    """An http(s) address without spaces, or None."""
    if value is None:
        return None
    address = text(value, max_len=500, example="https://example.com/licence")
    if not re.fullmatch(r"https?://[^\s/]+\S*", address):
        fail(f"{show(address)} is not an http(s) address", "write e.g. https://example.com/licence")
    return address


def words(value: Any, *, subpath: tuple = ()) -> tuple[str, ...]:
    """A list of short one-line words or phrases (keywords, moods), each once, in order."""
    if not isinstance(value, (list, tuple)):
        fail(f"expected a list of words, got {show(value)}", "write e.g. [cafe, brunch, acoustic]", *subpath)
    found: list[str] = []
    for i, item in enumerate(value):
        word = text(item, max_len=40, example="acoustic", subpath=(*subpath, i))
        if word.lower() in (w.lower() for w in found):
            fail(f"{show(word)} is listed twice", "list each word once", *subpath, i)
        found.append(word)
    return tuple(found)


def moods(value: Any) -> dict[str, tuple[str, ...]]:
    """Per-genre mood words {genre: [words]} over DEFAULT_MOODS."""
    merged = dict(DEFAULT_MOODS)
    if value is None:
        return merged
    for key, listed in _mapping(value, "{jazz: [relaxed, warm]}").items():
        merged[_genre_key(key)] = words(listed, subpath=(key,))
    return merged


def _genre_key(key: Any, known: str = ", ".join(vocab.GENRES)) -> str:
    """A mapping key that names a genre or an alias -> the canonical genre."""
    try:
        genre = vocab.canonical_genre(key) if isinstance(key, str) else None
    except KeyError:
        genre = None
    if genre is None:
        fail(f"unknown genre {show(key)}", f"use one of {known}", key)
    return genre


def _mapping(value: Any, example: str) -> dict:
    if not isinstance(value, dict):
        fail(f"expected a mapping, got {show(value)}",
             f"write `key: value` lines indented under it, e.g. {example}")
    return value


def genres(value: Any) -> dict[str, int | float]:
    """{genre or alias: count or weight} -> {canonical genre: value} in vocabulary order."""
    known = ", ".join(vocab.GENRES) + " (aliases: " + ", ".join(
        f"{a} = {c}" for a, c in vocab.GENRE_ALIASES.items()) + ")"
    mapping = _mapping(value, "{jazz: 6, pop: 2}")
    if not mapping:
        fail("no genres given", "write e.g. {jazz: 8} (counts) or {jazz: 0.7, calm: 0.3}")
    canonical: dict[str, int | float] = {}
    written: dict[str, Any] = {}
    for key, amount in mapping.items():
        genre = _genre_key(key, known)
        if genre in canonical:
            fail(f"genre {genre} given twice (as {show(written[genre])} and {show(key)})",
                 "merge them into one entry", key)
        integer = isinstance(amount, int) and not isinstance(amount, bool)
        canonical[genre] = number(amount, integer=integer, lo=0, hi=MAX_TRACKS,
                                  example="6 (tracks) or 0.7 (weight)", subpath=(key,))
        written[genre] = key
    if sum(canonical.values()) <= 0:
        fail("all genres are zero", "give at least one genre a positive count or weight")
    return {g: canonical[g] for g in vocab.GENRES if g in canonical}


def optional_count(value: Any) -> int | None:
    if value is None:
        return None
    return int(number(value, integer=True, lo=1, hi=MAX_TRACKS, example="8"))


def cutdowns(value: Any) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)):
        fail(f"expected a list of seconds, got {show(value)}", "write e.g. [60, 30, 15] or []")
    lengths = tuple(number(v, integer=False, lo=0, hi=MAX_DURATION_S, lo_open=True,
                           example="30", subpath=(i,)) for i, v in enumerate(value))
    for i, seconds in enumerate(lengths):
        if seconds in lengths[:i]:
            fail(f"{_fmt(seconds)} s is listed twice", "list each cut-down length once", i)
    return lengths


def _items(value: Any, what: str, example: str) -> list[tuple[Any, tuple]]:
    """One value or a non-empty list -> [(item, subpath)], each item once."""
    if not isinstance(value, (list, tuple)):
        return [(value, ())]
    if not value:
        fail(f"no {what} given", f"write e.g. {example}")
    for i, item in enumerate(value):
        if item in value[:i] and not isinstance(item, bool):
            fail(f"{show(item)} is listed twice", f"list each {what} once", i)
    return [(item, (i,)) for i, item in enumerate(value)]


def bpm(value: Any) -> tuple[float, float] | None:
    """Tempo in beats per minute: a number or a [lo, hi] range, drawn per track."""
    if value is None:
        return None
    lo, hi = BPM_LIMITS
    return range_field(integer=False, lo=lo, hi=hi, example="96", example_range="[84, 100]")(value)


def meters(value: Any) -> tuple[tuple[int, int], ...] | None:
    """'3/4' or a list of meters to draw from -> ((3, 4), ...)."""
    if value is None:
        return None
    listed = ", ".join(f"{n}/{d}" for n, d in METERS)
    found = []
    for item, subpath in _items(value, "meter", "4/4 or [3/4, 4/4]"):
        match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{1,2})\s*", item) if isinstance(item, str) else None
        if match is None:
            fail(f"expected a meter like 3/4, got {show(item)}", f"write one of {listed}", *subpath)
        meter = (int(match.group(1)), int(match.group(2)))
        if meter not in METERS:
            fail(f"{meter[0]}/{meter[1]} is not a meter gen can write", f"use one of {listed}", *subpath)
        found.append(meter)
    return tuple(found)


def keys(value: Any) -> tuple[str, ...] | None:
    """'any', a key or a list of keys to draw from -> canonical names ('F# minor'); 'any' -> ()."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "any":
        return ()
    example = "C, Am, F# minor or Eb major"
    found = []
    for item, subpath in _items(value, "key", "[C, Am] or any"):
        key = parse_key(item) if isinstance(item, str) else None
        if key is None and str(item).strip().lower() == "any":
            fail("`any` inside a list of keys", "write `key: any` alone, or list keys like [C, Am]", *subpath)
        if key is None:
            fail(f"{show(item)} is not a key", f"write e.g. {example}, or any", *subpath)
        if key.name in found:
            fail(f"{show(item)} is {key.name} again", "list each key once", *subpath)
        found.append(key.name)
    return tuple(found)


def grid(value: Any) -> tuple[int, ...] | None:
    """Parts of a beat an onset may fall on: one number or a list (4: sixteenths, 3: eighth triplets)."""
    if value is None:
        return None
    listed = ", ".join(map(str, GRID_DIVISIONS))
    found = []
    for item, subpath in _items(value, "division", "[4, 3]"):
        if isinstance(item, bool) or not isinstance(item, int) or item not in GRID_DIVISIONS:
            fail(f"{show(item)} is not a division of the beat gen knows",
                 f"use whole numbers among {listed}, e.g. [4, 3] for sixteenths and eighth triplets", *subpath)
        found.append(item)
    return tuple(found)


def form(value: Any) -> str | tuple[tuple[str, int], ...] | None:
    """`auto`, a template name, or a listed form ['intro 4', 'A 8', ...] -> (('intro', 4), ('A', 8), ...)."""
    from generator.library.form import TEMPLATES, listed_form

    names = ", ".join(("auto", *TEMPLATES))
    if value is None or (isinstance(value, str) and value in ("auto", *TEMPLATES)):
        return value
    if not isinstance(value, list) or not value:
        fail(f"{show(value)} is not a form", f"use one of {names}, or a list like [intro 4, A 8, B 8, A 8, outro 4]")
    try:
        listed = listed_form(value)
    except ValueError as error:
        i = error.args[0]
        fail(f"{show(value[i])} is not a section", "write a letter A-Z (or intro, outro) and its bars 1..64, "
             "e.g. 'A 8'", i)
    if not any(name not in ("intro", "outro") for name, _ in listed):
        fail("the form has no section but intro and outro", "add a body section such as 'A 8'")
    return listed


def harmony(value: Any) -> str | dict[str, tuple[tuple[int | None, ...], ...]] | None:
    """`template`, `model`, or section -> list of bars ('Dm7' or 'Dm7 G7') -> chord indices per bar."""
    from generator.library.form import HARMONIES, chord_bar

    if value is None or (isinstance(value, str) and value in HARMONIES):
        return value
    if not isinstance(value, dict) or not value:
        fail(f"{show(value)} is not a harmony", "use template, model, or a mapping like {A: [Dm7, G7, Cmaj7, Cmaj7]}")
    found = {}
    for name, bars in value.items():
        key = name.lower() if isinstance(name, str) and name.lower() in ("intro", "outro") else str(name).upper()
        if not (key in ("intro", "outro") or (len(key) == 1 and key.isalpha())):
            fail(f"{show(name)} is not a section", "use a letter such as A or B, or intro, outro", name)
        if not isinstance(bars, list) or not bars or len(bars) > 64:
            fail(f"{show(bars)} is not a list of bars", "write 1..64 bars, e.g. [Dm7, G7, 'Cmaj7 A7']", name)
        try:
            found[key] = tuple(chord_bar(bar) for bar in bars if isinstance(bar, str)) or None
        except KeyError:
            found[key] = None
        if found[key] is None or len(found[key]) != len(bars):
            fail(f"{show(bars)} holds something that is not one or two chord names",
                 "write names like Dm7, G7, Cmaj7, F#m7b5, Bb, N.C. (qualities: m, dim, aug, 7, maj7, m7, m7b5)", name)
    return found


def thresholds(value: Any) -> dict[str, float | int]:
    """Loop-detector overrides {LoopLimits field: number}, checked against its fields."""
    from generator.sampling.loops import LoopLimits

    if value is None:
        return {}
    mapping = _mapping(value, "{max_phrase_share: 0.6}")
    kinds = {f.name: f.type for f in dataclasses.fields(LoopLimits)}
    result: dict[str, float | int] = {}
    for key, amount in mapping.items():
        if key not in kinds:
            fail(f"unknown detector setting {show(key)}", f"use one of {', '.join(kinds)}", key)
        integer = kinds[key] in (int, "int")
        result[key] = number(amount, integer=integer, lo=0, hi=1e6,
                             example="16" if integer else "0.6", subpath=(key,))
    return result


def instrumentation(value: Any) -> dict[str, dict[str, int]]:
    """Per-genre {family: program} overrides merged over DEFAULT_INSTRUMENTATION."""
    merged = {genre: dict(programs) for genre, programs in DEFAULT_INSTRUMENTATION.items()}
    if value is None:
        return merged
    for genre_key, families in _mapping(value, "{jazz: {piano: 0}}").items():
        genre = _genre_key(genre_key)
        if not isinstance(families, dict):
            fail(f"expected a mapping of instrument families, got {show(families)}",
                 "write e.g. {piano: 0, bass: 32}", genre_key)
        for family, program in families.items():
            if family not in vocab.INSTRUMENT_FAMILIES:
                fail(f"unknown instrument family {show(family)}",
                     f"use one of {', '.join(vocab.INSTRUMENT_FAMILIES)}", genre_key, family)
            merged[genre][family] = gm_program(program, family, (genre_key, family))
    return merged


def gm_program(value: Any, family: str, subpath: tuple) -> int:
    """A GM program number 0..127 or a GM instrument name (a drum-kit name for drums)."""
    if isinstance(value, str):
        if family == "drums":
            key = re.sub(r"[^a-z0-9]", "", value.lower()).removesuffix("kit")
            if key in DRUM_KITS:
                return DRUM_KITS[key]
            fail(f"unknown drum kit {show(value)}",
                 f"use a kit program 0..127 or one of {', '.join(DRUM_KITS)}", *subpath)
        import pretty_midi  # only when a name is given: it is slow to import

        try:
            return int(pretty_midi.instrument_name_to_program(value))
        except ValueError:
            fail(f"unknown General MIDI instrument {show(value)}",
                 "use a program number 0..127 or a GM name like 'Acoustic Bass'", *subpath)
    return int(number(value, integer=True, lo=0, hi=127, example="32", subpath=subpath))


def safe_name(name: str) -> str:
    """'Café Jazz <1>' -> 'caf_jazz_1': lower-case ASCII letters, digits and single '_'."""
    return slug(name, sep="_", fallback="library")


def output_rule(value: str) -> str:
    """Relative paths stay inside the working directory; absolute ones must be written so."""
    raw = value.strip()
    if not raw or "\0" in raw:
        fail("is empty", "write a folder like output/cafe_jazz")
    if raw.startswith("~"):
        raw = os.path.expanduser(raw)
    path = Path(raw)
    if path.is_absolute():
        _check_folder(value, path)
        return str(Path(os.path.normpath(path)))
    normal = os.path.normpath(raw)
    if normal == "." or normal == ".." or normal.startswith(".." + os.sep):
        fail(f"{show(value)} is not a folder inside the working directory",
             "use a sub-folder like output/cafe_jazz, or an absolute path like /srv/music")
    _check_folder(value, Path(normal))
    return Path(normal).as_posix()


def _check_folder(value: str, path: Path) -> None:
    """No library in a system folder, the root, the home folder or a file (library/folders.py)."""
    _, problem = folder_problem(path)
    if problem is not None:
        fail(f"{show(value)} {problem}", FOLDER_FIX)


def title_rule(value: str) -> str:
    template = text(value, max_len=120, example="'Cafe Jazz {n:02d}'")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        fail(f"bad template: {error}", "write {{ and }} for literal braces")
    names = [field_name for _, field_name, _, _ in parts if field_name is not None]
    for field_name in names:
        if field_name not in TITLE_FIELDS:
            fail(f"unknown placeholder {{{field_name}}}", "use only {n}, {name} and {genre}")
    if "n" not in names:
        fail("titles would all be the same", "include {n} (the track number), e.g. {n:02d}")
    for _, _, spec, _ in parts:
        if spec and (re.search(r"[{}]", spec) or any(int(d) > 64 for d in re.findall(r"\d+", spec))):
            fail(f"format {spec!r} is not allowed", "use simple formats like {n:02d}")
    try:
        title = template.format(n=1, name="Name", genre="jazz")
    except (ValueError, TypeError, KeyError, IndexError) as error:
        fail(f"bad template: {error}", "use a format like {n:02d} for numbers")
    if not title.strip():
        fail("gives empty titles", "add text, e.g. 'Cafe Jazz {n:02d}'")
    return template


def largest_remainder(weights: dict[str, int | float], count: int) -> dict[str, int]:
    """Split `count` in proportion to `weights`: floors, then the largest remainders get +1.
    Exact fractions and vocabulary order as the tie-break keep it deterministic."""
    exact = {g: Fraction(w) for g, w in weights.items()}
    total = sum(exact.values())
    quotas = {g: w * count / total for g, w in exact.items()}
    counts = {g: int(q) for g, q in quotas.items()}  # floor: quotas are >= 0
    order = sorted(quotas, key=lambda g: (-(quotas[g] - counts[g]), vocab.GENRES.index(g)))
    for genre in order[: count - sum(counts.values())]:
        counts[genre] += 1
    return counts
