"""SoundFonts by name or path, with the licence that decides whether the audio may be sold.

Known fonts live in soundfonts/registry.yaml (name -> install paths, licence, install command).
A user may also pass a path to a .sf2/.sf3 file, or drop one in soundfonts/ and use its stem as
the name. Fonts the registry does not know count as licence unknown (commercial_ok False).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from generator.errors import SoundFontError
from generator.files import FileRefused, open_regular
from generator.paths import SOUNDFONT_DIR

log = logging.getLogger(__name__)

REGISTRY_PATH = SOUNDFONT_DIR / "registry.yaml"
SUFFIXES = (".sf2", ".sf3")
UNKNOWN_LICENCE = "unknown"


@dataclass(frozen=True)
class SoundFont:
    name: str
    path: Path
    licence: str
    commercial_ok: bool


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    paths: tuple[Path, ...]
    licence: str
    commercial_ok: bool
    install: str
    note: str = ""

    def installed_path(self) -> Path | None:
        """The first listed path that exists, or None."""
        return next((p for p in self.paths if p.is_file()), None)


def load_registry(path: Path = REGISTRY_PATH) -> tuple[str, dict[str, RegistryEntry]]:
    """Read the registry: (default name, name -> entry)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SoundFontError(f"{path}: cannot read the SoundFont registry ({exc}); restore it from git") from exc
    fonts = data.get("fonts") if isinstance(data, dict) else None
    if not isinstance(fonts, dict) or not fonts:
        raise SoundFontError(f"{path}: key 'fonts' must map names to entries; restore the file from git")
    entries = {}
    for name, raw in fonts.items():
        try:
            paths = tuple(_absolute(Path(p), path.parent) for p in raw["paths"])
            entries[name] = RegistryEntry(
                name=name, paths=paths, licence=str(raw["licence"]), commercial_ok=bool(raw["commercial_ok"]),
                install=str(raw.get("install", "")), note=str(raw.get("note", "")))
        except (KeyError, TypeError) as exc:
            raise SoundFontError(
                f"{path}: fonts.{name} needs 'paths', 'licence' and 'commercial_ok' (missing {exc})") from exc
    default = data.get("default", "fluidr3_gm")
    if default not in entries:
        raise SoundFontError(f"{path}: key 'default' is {default!r}, which is not one of fonts: {', '.join(entries)}")
    return default, entries


def resolve_soundfont(name_or_path: str | None, *, registry_path: Path = REGISTRY_PATH) -> SoundFont:
    """A registry name (None = the default), a path to a .sf2/.sf3, or the stem of a file in soundfonts/."""
    default, entries = load_registry(registry_path)
    spec = default if name_or_path is None or not str(name_or_path).strip() else str(name_or_path).strip()
    font_dir = registry_path.parent
    if spec in entries:
        return _from_entry(entries[spec], font_dir)
    if _looks_like_path(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise SoundFontError(
                f"SoundFont file {path} not found: check the path, or drop the font in {font_dir}/ "
                f"and pass its name")
        return _from_file(path, entries)
    for suffix in SUFFIXES:
        dropped = font_dir / f"{spec}{suffix}"
        if dropped.is_file():
            return _from_file(dropped, entries)
    raise SoundFontError(
        f"unknown SoundFont {spec!r}: use one of {', '.join(sorted(entries))}, a path to a .sf2/.sf3 "
        f"file, or drop {spec}.sf2 in {font_dir}/")


def _from_entry(entry: RegistryEntry, font_dir: Path) -> SoundFont:
    path = entry.installed_path()
    if path is None:
        looked = ", ".join(str(p) for p in entry.paths)
        fix = f"run `{entry.install}`" if entry.install else "install it"
        raise SoundFontError(
            f"SoundFont {entry.name!r} is not installed (looked for {looked}): {fix}, "
            f"or drop a .sf2/.sf3 in {font_dir}/ and pass its name")
    _check_header(path)
    return SoundFont(name=entry.name, path=path, licence=entry.licence, commercial_ok=entry.commercial_ok)


def _from_file(path: Path, entries: dict[str, RegistryEntry]) -> SoundFont:
    path = path.resolve()
    _check_header(path)
    for entry in entries.values():  # a known font reached by its path keeps its licence
        if any(p.is_file() and p.resolve() == path for p in entry.paths):
            return SoundFont(name=entry.name, path=path, licence=entry.licence, commercial_ok=entry.commercial_ok)
    log.warning("SoundFont %s is not in the registry: licence unknown, not cleared for commercial use", path)
    return SoundFont(name=path.stem, path=path, licence=UNKNOWN_LICENCE, commercial_ok=False)


def _check_header(path: Path) -> None:
    """A SoundFont is a RIFF file of form 'sfbk' (SF2, and SF3 which only compresses the samples)."""
    try:
        with os.fdopen(open_regular(path, "SoundFont file"), "rb") as f:  # a FIFO or device is refused
            head = f.read(12)
    except FileRefused as refused:
        raise SoundFontError(f"SoundFont file {path} {refused.problem}: pass a .sf2 or .sf3 file") from None
    except OSError as exc:
        raise SoundFontError(f"SoundFont file {path} cannot be read ({exc.strerror}): fix its permissions") from exc
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise SoundFontError(
            f"SoundFont file {path} is not a SoundFont (no RIFF/sfbk header): pass a .sf2 or .sf3 file")


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.lower().endswith(SUFFIXES) or spec.startswith("~")


def _absolute(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path
