"""Groove tables for the synthetic arrangements: mma groove names, tempi, feels, lead programs.

Every groove name here exists in Debian's mma 21.09 standard library (checked by tests).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Groove:
    main: str
    variant: str  # second chorus / second pass
    intro: str
    end: str


@dataclass(frozen=True)
class Style:
    name: str
    grooves: tuple[Groove, ...]
    tempo_bpm: tuple[int, int]
    feel: str  # swing | straight | ballad (lead-line rhythm cells)
    beats_per_bar: int
    leads: tuple[int, ...]  # General MIDI programs for the lead line


def _g(main: str, variant: str, intro: str, end: str) -> Groove:
    return Groove(main, variant, intro, end)


_SWING = (
    _g("Swing1Walk", "Swing1WalkSus", "SwingIntro", "Swing1End"),
    _g("SwingWalk", "SwingWalkPlus", "SwingIntro", "SwingEnd"),
    _g("JazzCombo", "JazzCombo1", "JazzComboIntro", "JazzComboEnd"),
    _g("JazzGuitarWalk", "JazzGuitar1Walk", "JazzGuitarIntro", "JazzGuitarEnd"),
    _g("ModernJazz", "ModernJazz1", "ModernJazzIntro", "ModernJazzEnd"),
    _g("Swing2", "Swing2Plus", "SwingIntro2", "Swing2End"),
)
_FAST = (
    _g("FastSwingWalk", "FastSwingWalkSus", "FastSwingIntro", "FastSwingEnd"),
    _g("Bebop", "BebopPlus", "BebopIntro", "BebopEnd"),
    _g("ModernJazz2", "ModernJazz2Sus", "ModernJazzIntro", "ModernJazzEnd"),
)
_BALLAD = (
    _g("SlowJazz", "SlowJazzSus", "SlowJazzIntro", "SlowJazzEnd"),
    _g("SlowJazz1", "SlowJazz1Sus", "SlowJazz1Intro", "SlowJazzEnd"),
    _g("Ballad", "BalladSus", "BalladIntro", "BalladEnd"),
    _g("Evansish", "EvansishSus", "EvansishIntro", "EvansishEnd"),
    _g("NiteJazz", "NiteJazzSus", "NiteJazzIntro", "NiteJazzEnd"),
    _g("MellowJazz", "MellowJazzSus", "MellowJazzIntro", "MellowJazzEnd"),
)
_SLOW_SWING = (
    _g("SlowJazzWalk", "SlowJazzWalkSus", "SlowJazzIntro", "SlowJazzEnd"),
    _g("Swing2", "Swing2Sus", "SwingIntro2", "Swing2End"),
    _g("MellowJazz", "MellowJazzPlus", "MellowJazzIntro", "MellowJazzEnd"),
)
_JAZZ_WALTZ = (
    _g("JazzWaltz", "JazzWaltzSus", "JazzWaltzIntro", "JazzWaltzEnd"),
    _g("JazzWaltz1", "JazzWaltz1Sus", "JazzWaltzIntro", "JazzWaltz1End"),
    _g("ModernJazzWaltz", "ModernJazzWaltzSus", "ModernJazzWaltzIntro", "ModernJazzWaltzEnd"),
)
_BOSSA = (
    _g("BossaNova", "BossaNovaSus", "BossaNovaIntro", "BossaNovaEnd"),
    _g("BossaNova1Sus", "BossaNova2Sus", "BossaNovaIntro1", "BossaNova1End"),
)
_LATIN = (
    _g("JazzRhumba", "JazzRhumbaSus", "JazzRhumbaIntro", "JazzRhumbaEnd"),
    _g("Mambo", "Mambo1", "MamboIntro", "MamboEnd"),
    _g("ChaCha", "ChaCha1", "ChaChaIntro", "ChaChaEnd"),
    _g("Samba", "SambaSus", "SambaIntro", "SambaEnd"),
)
_EVEN = (
    _g("JazzRock", "JazzRockSus", "JazzRockIntro", "JazzRockEnd"),
    _g("LFusion", "LFusion1", "LFusionIntro", "LFusionEnd"),
    _g("BVFunk", "BVFunkHorns", "BVFunkIntro", "BVFunkEnd"),
)

_SAX_BRASS = (66, 65, 56, 11, 26, 0)
_SOFT = (66, 65, 59, 73, 11, 0)
_BRIGHT = (73, 65, 24, 11, 66)

JAZZ_STYLES: dict[str, Style] = {
    "swing": Style("swing", _SWING, (112, 165), "swing", 4, _SAX_BRASS),
    "fast": Style("fast", _FAST, (176, 228), "swing", 4, _SAX_BRASS),
    "medium_up": Style("medium_up", _FAST + _SWING[:2], (150, 188), "swing", 4, _SAX_BRASS),
    "ballad": Style("ballad", _BALLAD, (56, 78), "ballad", 4, _SOFT),
    "slow_swing": Style("slow_swing", _SLOW_SWING, (80, 108), "swing", 4, _SOFT),
    "waltz": Style("waltz", _JAZZ_WALTZ, (120, 176), "swing", 3, _SAX_BRASS),
    "bossa": Style("bossa", _BOSSA, (118, 144), "straight", 4, _BRIGHT),
    "latin": Style("latin", _LATIN, (112, 150), "straight", 4, (56, 73, 65, 11)),
    "even": Style("even", _EVEN, (96, 126), "straight", 4, (4, 65, 26, 61, 11)),
}

# Chart "Rhythm" field -> style.
RHYTHM_TO_STYLE = {
    "Medium Swing": "swing", "Up Tempo Swing": "fast", "Medium Up Swing": "medium_up",
    "Ballad": "ballad", "Medium Slow": "slow_swing", "Slow Swing": "slow_swing", "Waltz": "waltz",
    "Bossa Nova": "bossa", "Latin": "latin", "Samba": "latin", "Afro": "latin",
    "Calypso": "latin", "Latin-Swing": "latin", "Even 8ths": "even", "Even 16ths": "even",
    "Funk": "even", "Rock Pop": "even", "Slow Rock": "even",
}

_POP_LEADS = (73, 65, 81, 80, 0, 25, 11, 4, 22, 56, 71, 54)
POP_STYLES: dict[str, Style] = {
    "straight": Style("straight", (
        _g("PopBallad", "PopBalladSus", "PopBalladIntro", "PopBalladEnd"),
        _g("PopBallad2", "PopBallad2Sus", "PopBalladIntro", "PopBalladEnd"),
        _g("SoftRock", "SoftRockSus", "SoftRockIntro", "SoftRockEnd"),
        _g("SoftRock1", "SoftRock1Sus", "SoftRockIntro", "SoftRockEnd"),
        _g("8Beat", "8BeatSus", "8BeatIntro", "8BeatEnd"),
        _g("8Beat1", "8Beat1Sus", "8BeatIntro", "8BeatEnd"),
        _g("FolkRock", "FolkRockSus", "FolkRockIntro", "FolkRockEnd"),
        _g("RockBallad", "RockBallad1", "RockBalladIntro", "RockBalladEnd"),
        _g("GuitarBallad", "GuitarBalladSus", "GuitarBalladIntro", "GuitarBalladEnd"),
        _g("PianoBallad", "PianoBalladSus", "PianoBalladIntro", "PianoBalladEnd"),
        _g("BasicRock", "BasicRockSus", "BasicRockIntro", "BasicRockEnd"),
        _g("50sRock", "50sRockSus", "50sRockIntro", "50sRockEnd"),
    ), (84, 120), "straight", 4, _POP_LEADS),
    "compound": Style("compound", (
        _g("Rock128", "Rock128Sus", "Rock128Intro", "Rock128End"),
        _g("Ballad128", "Ballad128Sus", "Ballad128Intro", "Ballad128End"),
    ), (56, 78), "straight", 4, _POP_LEADS),
    "waltz": Style("waltz", (
        _g("RockWaltz", "RockWaltzSus", "RockWaltzIntro", "RockWaltzEnd"),
        _g("CountryWaltz", "CountryWaltzSus", "CountryWaltzIntro", "CountryWaltzEnd"),
        _g("Waltz1", "Waltz1Sus", "Waltz1Intro", "WaltzEnd"),
    ), (92, 132), "straight", 3, _POP_LEADS),
}


def all_groove_names() -> set[str]:
    names: set[str] = set()
    for table in (JAZZ_STYLES, POP_STYLES):
        for style in table.values():
            for groove in style.grooves:
                names.update((groove.main, groove.variant, groove.intro, groove.end))
    return names
