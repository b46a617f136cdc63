"""YAML recipe -> validated, frozen Recipe (library/plan.py turns it into per-track plans).

`load_recipe` turns every problem into one `RecipeError` line, "<file>:<line>: <key>: <problem>
(<fix>)". The `sampling` section follows the sampling spec (generator/sampling/params.py). Every
key is documented in docs/recipes.md.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
import unicodedata
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from generator.errors import RecipeError, SoundFontError
from generator.files import FileRefused, file_kind, read_bytes_bounded
from generator.library import recipe_fields as rf
from generator.library.recipe_fields import safe_name
from generator.library.yamlmarks import YamlProblem, line_of, parse_yaml
from generator.paths import PROJECT_ROOT
from generator.sampling.params import SamplingParams, field_spec, guidance_conflict, spec_fields
from generator.tokens import vocab

DEFAULT_MODEL = "models/gen-small.pt"
DEFAULT_SOUNDFONT = "fluidr3_gm"
MAX_RECIPE_BYTES = 1 << 20


def _v(check: Any) -> PlainValidator:
    return PlainValidator(check)


FloatRange = tuple[float, float]
IntRange = tuple[int, int]
# Beat time and key (docs/recipes.md "Tempo, meter, key and feel"): None means not set here.
Bpm = Annotated[FloatRange | None, _v(rf.bpm)]
Meters = Annotated[tuple[tuple[int, int], ...] | None, _v(rf.meters)]
Keys = Annotated[tuple[str, ...] | None, _v(rf.keys)]  # () is `any`
Grid = Annotated[tuple[int, ...] | None, _v(rf.grid)]
Form = Annotated[str | tuple[tuple[str, int], ...] | None, _v(rf.form)]
Harmony = Annotated[str | dict[str, Any] | None, _v(rf.harmony)]
BEAT_KEYS = ("bpm", "meter", "grid", "form", "harmony")  # what only a beat-time model can honour
STYLE_KEYS = (*BEAT_KEYS, "key", "humanize")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Primer(_Section):
    path: str
    seconds: Annotated[float, _v(rf.number_field(
        integer=False, lo=0, hi=rf.MAX_DURATION_S, lo_open=True, example="15"))] = 15.0
    from_end: bool = False

    @field_validator("path")
    @classmethod
    def _exists(cls, value: str, info: ValidationInfo) -> str:
        return str(_input_file(value, info, "primer MIDI file",
                               "give the path of a .mid file, relative to the working directory"))


def _pitch_range(value: Any) -> IntRange:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        rf.fail(f"expected [lowest, highest], got {rf.show(value)}", "write e.g. [21, 96]")
    lo, hi = (rf.number(v, integer=True, lo=0, hi=127, example="60", subpath=(i,))
              for i, v in enumerate(value))
    if lo > hi:
        rf.fail(f"[{lo}, {hi}] has lowest above highest", f"write [{hi}, {lo}]")
    return lo, hi


def _sampling_section() -> type[BaseModel]:
    """The `sampling` section, built from the sampling spec (generator/sampling/params.py): every
    drawn parameter is a number or a [lo, hi] range with the spec's bounds and default."""
    defaults = SamplingParams()
    fields: dict[str, Any] = {}
    for f in spec_fields():
        spec = field_spec(f)
        if spec.drawn:
            check = rf.range_field(integer=spec.integer, lo=spec.lo, hi=spec.hi, lo_open=spec.lo_open,
                                   example=spec.example, example_range=spec.example_range)
            default = getattr(defaults, f.name)
            fields[f.name] = (Annotated[IntRange if spec.integer else FloatRange, _v(check)],
                              (default, default))
    fields["pitch_range"] = (Annotated[IntRange, _v(_pitch_range)], defaults.pitch_range)
    fields["sber_compatible"] = (bool, Field(defaults.sber_compatible, validation_alias=AliasChoices(
        "sber_compatible", *field_spec("sber_compatible").aliases)))
    fields["primer"] = (Primer | None, None)
    assert set(fields) == {f.name for f in spec_fields()} | {"primer"}, "a spec field lacks a recipe key"
    return create_model("Sampling", __base__=_Section, __module__=__name__,
                        __validators__={"_old_names": model_validator(mode="before")(_old_names),
                                        "_guidance": model_validator(mode="after")(_guidance_rule)},
                        **fields)


def _guidance_rule(section: Any) -> Any:
    """Every track's draw must make valid SamplingParams: guidance rules out beams and Sber's order."""
    guidance, beams = section.genre_guidance[1], section.beam_width[1]
    if guidance_conflict(guidance, beams, section.sber_compatible):
        clash = f"beam_width up to {beams}" if beams > 1 else "sber_compatible true"
        rf.fail(f"genre guidance (up to {guidance:g}) cannot go with {clash}",
                "use beam_width 1 and sber_compatible false, or genre_guidance 0", "genre_guidance")
    return section


def _old_names(data: Any) -> Any:
    """An old key name (seed_compatible) is accepted, but not next to its new name."""
    if isinstance(data, dict):
        for f in spec_fields():
            for old in field_spec(f).aliases:
                if old in data and f.name in data:
                    rf.fail(f"is the old name of `{f.name}`, which is given too", f"remove `{old}`", old)
    return data


Sampling = _sampling_section()


class Loops(_Section):
    max_attempts: Annotated[int, _v(rf.number_field(
        integer=True, lo=1, hi=100, example="4"))] = 4
    thresholds: Annotated[dict[str, float | int], _v(rf.thresholds)] = {}


class Mastering(_Section):
    target_lufs: Annotated[float, _v(rf.number_field(
        integer=False, lo=-40, hi=-5, example="-14"))] = -14.0
    ceiling_dbtp: Annotated[float, _v(rf.number_field(
        integer=False, lo=-20, hi=0, example="-1"))] = -1.0
    ending: Annotated[str, _v(rf.choice_field(("ring", "fade"), "ring"))] = "ring"
    fade_s: Annotated[float, _v(rf.number_field(
        integer=False, lo=0, hi=30, lo_open=True, example="3"))] = 3.0


class Outputs(_Section):
    wav: bool = True
    wav_sample_rate: Annotated[int, _v(rf.choice_field((44100, 48000), 48000))] = 48000
    wav_bits: Annotated[int, _v(rf.choice_field((16, 24), 24))] = 24
    mp3: bool = True
    mp3_kbps: Annotated[int, _v(rf.choice_field((128, 160, 192, 224, 256, 320), 320))] = 320
    stems: bool = True
    cutdowns_s: Annotated[tuple[float, ...], _v(rf.cutdowns)] = (60.0, 30.0, 15.0)
    loop: bool = True  # a loop file per track with bars (a beat-time model's); docs/delivery.md
    loop_bars: Annotated[int | None, _v(lambda v: None if v is None else rf.choice_field(
        (1, 2, 4, 8, 16), "8")(v))] = None
    catalogue: bool = True


class Library(_Section):
    """Who releases the library, as tags and the upload sheet say it (docs/recipes.md `library`)."""

    artist: Annotated[str, _v(rf.text_field(120, "Blue Room Music"))] = "gen"
    album: Annotated[str | None, _v(rf.optional_text_field(120, "Cafe Jazz Vol. 1"))] = None
    composer: Annotated[str | None, _v(rf.optional_text_field(120, "Jane Doe"))] = None
    publisher: Annotated[str | None, _v(rf.optional_text_field(120, "Blue Room Publishing"))] = None
    copyright: Annotated[str | None, _v(rf.optional_text_field(200, "'2025 Blue Room Music'"))] = None
    year: Annotated[int | None, _v(lambda v: None if v is None else rf.number(
        v, integer=True, lo=rf.YEARS[0], hi=rf.YEARS[1], example="2025"))] = None
    licence: Annotated[str, _v(rf.text_field(1000, "'Royalty-free for video and podcasts'"))] = rf.LICENCE
    licence_url: Annotated[str | None, _v(rf.url)] = None
    keywords: Annotated[tuple[str, ...], _v(rf.words)] = ()
    moods: Annotated[dict[str, tuple[str, ...]], _v(rf.moods)] = rf.moods(None)

    def facts(self, name: str) -> dict[str, Any]:
        """The library's fields with their defaults filled in: album the recipe name, composer the
        artist, copyright '© <year> <publisher or artist>'."""
        owner = self.publisher or self.artist
        notice = self.copyright or " ".join(str(p) for p in ("©", self.year, owner) if p)
        return {"name": name, "artist": self.artist, "album": self.album or name,
                "composer": self.composer or self.artist, "publisher": self.publisher, "copyright": notice,
                "year": self.year, "licence_url": self.licence_url}


class GenreSettings(_Section):
    """One genre's `genre_settings` entry: each key set here replaces the top-level one for it."""

    bpm: Bpm = None
    meter: Meters = None
    key: Keys = None
    grid: Grid = None
    humanize: bool | None = None
    form: Form = None
    harmony: Harmony = None


def _genre_name(value: Any) -> str:
    """A `genre_settings` key: a genre or an alias, any case -> the canonical genre."""
    genre = None
    if isinstance(value, str):
        try:
            genre = vocab.canonical_genre(value)
        except KeyError:
            pass
    if genre is None:
        rf.fail(f"unknown genre {rf.show(value)}", f"use one of {', '.join(vocab.GENRES)} "
                f"(aliases: {', '.join(vocab.GENRE_ALIASES)})")
    return genre


class Recipe(_Section):
    """A validated recipe. Ranges are (lo, hi) tuples; a single number is (x, x)."""

    name: Annotated[str, _v(rf.text_field(120, "Cafe Jazz"))]
    seed: Annotated[int, _v(rf.number_field(
        integer=True, lo=0, hi=2**63 - 1, example="20240611"))] = 0
    model: str = Field(DEFAULT_MODEL, validate_default=True)
    soundfont: str = Field(DEFAULT_SOUNDFONT, validate_default=True)
    output: str = "output/library"
    title_template: str = "{name} {n:02d}"
    genres: Annotated[dict[str, int | float], _v(rf.genres)]
    count: Annotated[int | None, _v(rf.optional_count)] = None
    duration_s: Annotated[FloatRange, _v(rf.range_field(
        integer=False, lo=0, hi=rf.MAX_DURATION_S, lo_open=True, example="90",
        example_range="[75, 105]"))] = (90.0, 90.0)
    sampling: Sampling = Sampling()
    loops: Loops = Loops()
    instrumentation: Annotated[dict[str, dict[str, int]], _v(rf.instrumentation)] = \
        rf.instrumentation(None)
    mastering: Mastering = Mastering()
    outputs: Outputs = Outputs()
    time_budget_s: Annotated[float | None, _v(lambda v: None if v is None else rf.number(
        v, integer=False, lo=0, hi=86_400, lo_open=True, example="120"))] = None
    device: str = "cpu"
    bpm: Bpm = None
    meter: Meters = None
    key: Keys = None
    grid: Grid = None
    humanize: bool = False
    form: Form = None
    harmony: Harmony = None
    genre_settings: dict[Annotated[str, _v(_genre_name)], GenreSettings] = {}
    library: Library = Library()

    @model_validator(mode="before")
    @classmethod
    def _fill_in(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for section in ("sampling", "loops", "mastering", "outputs", "genre_settings", "library"):
            if section in data and data[section] is None:  # `sampling:` with nothing under it
                data[section] = {}
        if "output" not in data and isinstance(data.get("name"), str) and data["name"].strip():
            data["output"] = f"output/{safe_name(data['name'])}"
        return data

    @field_validator("genre_settings", mode="before")
    @classmethod
    def _one_entry_per_genre(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        seen: dict[str, Any] = {}
        for key in value:
            try:
                genre = vocab.canonical_genre(key) if isinstance(key, str) else None
            except KeyError:
                genre = None
            if genre in seen:
                rf.fail(f"genre {genre} given twice (as {rf.show(seen[genre])} and {rf.show(key)})",
                        "merge them into one entry", key)
            if genre is not None:
                seen[genre] = key
        return {key: {} if settings is None else settings for key, settings in value.items()}

    @field_validator("model")
    @classmethod
    def _model(cls, value: str, info: ValidationInfo) -> str:
        # Our checkpoints and Sber's state_dicts are told apart by their content.
        return str(_input_file(value, info, "checkpoint",
                               "train one first, or point `model:` at a .pt checkpoint"))

    @field_validator("soundfont")
    @classmethod
    def _soundfont(cls, value: str, info: ValidationInfo) -> str:
        return _soundfont_rule(value, info)

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        return rf.output_rule(value)

    @field_validator("title_template")
    @classmethod
    def _title(cls, value: str) -> str:
        return rf.title_rule(value)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"cpu|mps|cuda(:\d{1,2})?", value):
            rf.fail(f"unknown device {rf.show(value)}", "use cpu, cuda, cuda:0 or mps")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        total = sum(self.genres.values())
        if self.genres_are_counts and self.count is not None and self.count != total:
            rf.fail(f"count {self.count} differs from the genre counts, which add up to {total}",
                    "remove `count:`, make them agree, or give genres as weights like 0.5",
                    "count")
        if not self.genres_are_counts and self.count is None:
            rf.fail("genres are weights, so the number of tracks is missing",
                    "add `count: N`, or give whole-number counts per genre", "genres")
        if self.genres_are_counts and total > rf.MAX_TRACKS:
            rf.fail(f"the genre counts add up to {total} tracks, more than {rf.MAX_TRACKS}",
                    "split the library into several recipes", "genres")
        self._check_titles()
        for index, seconds in enumerate(self.outputs.cutdowns_s):
            if seconds >= self.duration_s[0]:
                rf.fail(f"a {seconds:g} s cut-down needs tracks longer than that, but duration_s "
                        f"can be {self.duration_s[0]:g} s",
                        "remove it or raise duration_s", "outputs", "cutdowns_s", index)
        return self

    def _check_titles(self) -> None:
        """Every planned title is printable: a format such as {n:c} makes control characters."""
        for n in range(1, self.track_count + 1):
            for genre in self.genre_counts:
                title = self.title_template.format(n=n, name=self.name, genre=genre)
                bad = next((c for c in title if unicodedata.category(c)[0] == "C"
                            or unicodedata.category(c) in ("Zl", "Zp")), None)
                if bad is not None:
                    rf.fail(f"track {n}'s title {title!r} holds the control character {bad!r}",
                            "use formats that print numbers, like {n:02d}", "title_template")

    @property
    def genres_are_counts(self) -> bool:
        """Whole numbers are counts; any decimal makes the mapping weights."""
        return all(isinstance(v, int) for v in self.genres.values())

    @property
    def genre_counts(self) -> dict[str, int]:
        """Tracks per genre (vocabulary order, genres with no track left out)."""
        if self.genres_are_counts:
            counts = dict(self.genres)
        else:
            assert self.count is not None
            counts = rf.largest_remainder(self.genres, self.count)
        return {g: int(c) for g, c in counts.items() if c > 0}

    @property
    def track_count(self) -> int:
        return sum(self.genre_counts.values())

    @property
    def model_path(self) -> Path:
        return Path(self.model)

    def output_dir(self, cwd: Path | None = None) -> Path:
        """Where the library goes: relative outputs are under `cwd` (default: working dir)."""
        path = Path(self.output)
        return path if path.is_absolute() else (cwd or Path.cwd()) / path

    def programs(self, genre: str) -> dict[str, int]:
        """Family -> GM program (drums: kit) for a genre's tracks."""
        return dict(self.instrumentation[vocab.canonical_genre(genre)])

    def style(self, genre: str, name: str) -> Any:
        """A STYLE_KEYS value for a genre's tracks: its `genre_settings` entry, else the top level."""
        assert name in STYLE_KEYS, name
        settings = self.genre_settings.get(vocab.canonical_genre(genre))
        value = None if settings is None else getattr(settings, name)
        return getattr(self, name) if value is None else value

    def beat_keys_set(self) -> list[str]:
        """The bpm/meter/grid keys the recipe sets for a genre it makes (they need a beat-time model)."""
        found = [name for name in BEAT_KEYS if getattr(self, name) is not None]
        for genre, settings in self.genre_settings.items():
            if genre in self.genre_counts:
                found += [f"genre_settings.{genre}.{name}" for name in BEAT_KEYS if getattr(settings, name) is not None]
        return found


def _soundfont_rule(value: str, info: ValidationInfo) -> str:
    """A registry name stays a name (the renderer keeps its licence); a path becomes absolute."""
    from generator.audio import soundfonts

    spec = value.strip()
    if not spec:
        rf.fail("is empty", f"use a name like {DEFAULT_SOUNDFONT} or a path to a .sf2/.sf3 file")
    if "/" in spec or "\\" in spec or spec.startswith("~") or \
            spec.lower().endswith(soundfonts.SUFFIXES):
        return str(_input_file(spec, info, "SoundFont",
                               "give the path of a .sf2/.sf3 file, or a name like fluidr3_gm"))
    try:
        _, entries = soundfonts.load_registry()
    except SoundFontError as error:
        rf.fail(f"cannot check it: {error}", "restore soundfonts/registry.yaml from git")
    if spec in entries:
        entry = entries[spec]
        if (info.context or {}).get("check_files", True) and entry.installed_path() is None:
            rf.fail(f"SoundFont {spec} is not installed (looked for "
                    f"{', '.join(str(p) for p in entry.paths)})",
                    f"run `{entry.install}`, or choose another SoundFont")
        return spec
    if any((soundfonts.SOUNDFONT_DIR / f"{spec}{s}").is_file() for s in soundfonts.SUFFIXES):
        return spec
    rf.fail(f"unknown SoundFont {rf.show(spec)}",
            f"use one of {', '.join(sorted(entries))}, a path to a .sf2/.sf3 file, "
            f"or drop {spec}.sf2 in soundfonts/")


def _input_file(raw: str, info: ValidationInfo, what: str, fix: str) -> Path:
    """Relative input paths: the working directory first, then the project root."""
    if not raw.strip() or "\0" in raw:
        rf.fail(f"no {what} path given", fix)
    path = Path(os.path.expanduser(raw.strip()))
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, PROJECT_ROOT / path]
    candidates = list(dict.fromkeys(candidates))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        if candidate.exists():  # a folder, FIFO or device: never handed to torch, pretty_midi or FluidSynth
            rf.fail(f"{what} {rf.show(raw)} is {file_kind(candidate.stat().st_mode)}, not a regular file", fix)
    if (info.context or {}).get("check_files", True):
        where = " or ".join(str(c) for c in candidates)
        rf.fail(f"{what} {rf.show(raw)} not found (looked for {where})", fix)
    return candidates[-1]


# --- loading ------------------------------------------------------------------------------------

def load_recipe(path: str | Path, *, check_files: bool = True) -> Recipe:
    """Read and validate a recipe; any problem raises RecipeError with one line naming the file,
    line and key. `check_files=False` skips the existence checks of model/primer/SoundFont."""
    label = str(path)
    try:
        file = Path(path)
        if file.is_dir():
            _raise(label, 1, "(file)", "is a folder, not a recipe", "give the path of a .yaml file")
        text = read_bytes_bounded(file, MAX_RECIPE_BYTES, "recipe").decode("utf-8")
    except FileRefused as refused:
        fix = "a recipe is a short YAML file" if "larger" in refused.problem else "give the path of a .yaml file"
        _raise(label, 1, "(file)", refused.problem, fix)
    except FileNotFoundError:
        _raise(label, 1, "(file)", "not found", "check the path, e.g. recipes/cafe_jazz.yaml")
    except UnicodeDecodeError:
        _raise(label, 1, "(file)", "is not UTF-8 text", "save the recipe as UTF-8")
    except OSError as error:
        _raise(label, 1, "(file)", f"cannot be read ({error.strerror})", "check its permissions")
    return parse_recipe(text, label, check_files=check_files)


def parse_recipe(text: str, label: str = "<recipe>", *, check_files: bool = True) -> Recipe:
    """Validate recipe YAML text; `label` names the file in error messages."""
    try:
        document = parse_yaml(text)
    except YamlProblem as problem:
        _raise(label, problem.line, _dotted(problem.path) or "(yaml)", problem.problem,
               problem.fix)
    data, root = document.data, document.root
    if data is None:
        _raise(label, 1, "(file)", "the recipe is empty",
               "write at least `name: ...` and `genres: {jazz: 8}`; see docs/recipes.md")
    if not isinstance(data, dict):
        _raise(label, line_of(root, ()), "(file)",
               f"the top level is {rf.show(data)}, not a mapping",
               "write `key: value` lines like `name: Cafe Jazz`; see docs/recipes.md")
    try:
        return Recipe.model_validate(data, context={"check_files": check_files})
    except ValidationError as error:
        _raise_first(label, root, error)
    except RecursionError:
        _raise(label, 1, "(file)", "the recipe refers to itself through YAML aliases",
               "remove the alias loop")


def _raise(label: str, line: int, key: str, problem: str, fix: str) -> typing.NoReturn:
    raise RecipeError(f"{label}:{line}: {key}: {problem} ({fix})")


def _raise_first(label: str, root: Any, error: ValidationError) -> typing.NoReturn:
    """Report the problem nearest the top of the file (one line, always the same one)."""
    found = []
    for item in error.errors(include_url=False):
        ctx = item.get("ctx") or {}
        # "[key]": pydantic's mark of a mapping key that failed; the key itself is named already.
        loc = tuple(p for p in (*item["loc"], *(ctx.get("subpath") or ())) if p != "[key]")
        found.append((line_of(root, loc), len(found), loc, item))
    line, _, loc, item = min(found, key=lambda f: f[:2])
    if item["type"] == rf.ERROR_TYPE:
        raise RecipeError(f"{label}:{line}: {_dotted(loc) or '(file)'}: {item['msg']}")
    problem, fix = _describe(loc, item)
    _raise(label, line, _dotted(loc) or "(file)", problem, fix)


def _describe(loc: tuple, item: dict) -> tuple[str, str]:
    kind, value = item["type"], item.get("input")
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean `{close[0]}`?" if close else "known keys: " + ", ".join(known)
        return "unknown key", hint
    if kind == "missing":
        return "required key is missing", f"add `{loc[-1]}: ...`; see docs/recipes.md"
    if kind == "bool_type":
        return f"expected true or false, got {rf.show(value)}", "write true or false"
    if kind == "string_type":
        return f"expected text, got {rf.show(value)}", "put the value in quotes"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {rf.show(value)}", "indent `key: value` lines under it"
    if kind == "recursion_loop":
        return "refers to itself through YAML aliases", "remove the alias loop"
    return " ".join(str(item["msg"]).split()), "see docs/recipes.md"


def _known_keys(loc: tuple) -> list[str]:
    model: Any = Recipe
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        info = model.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            return []
        kind = info.annotation
        if typing.get_origin(kind) is dict and parts:  # genre_settings.<genre>: the entry's keys
            kind = typing.get_args(kind)[1]
            parts.pop(0)
        options = [kind, *typing.get_args(kind)]
        models = [t for t in options if isinstance(t, type) and issubclass(t, BaseModel)]
        if not models:
            return []
        model = models[0]
    return list(model.model_fields)


def _dotted(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
