"""A note as the encodings see it: pitch, times in seconds, velocity and instrument family."""

from __future__ import annotations

from dataclasses import dataclass

from generator.tokens import vocab


@dataclass(frozen=True)
class Note:
    """One note; `instrument` is a family index into vocab.INSTRUMENT_FAMILIES (16 = drums)."""

    pitch: int
    start_s: float
    end_s: float
    velocity: int
    instrument: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"Note pitch {self.pitch} is outside 0..127")
        if not 0 <= self.velocity <= 127:
            raise ValueError(f"Note velocity {self.velocity} is outside 0..127")
        if not 0 <= self.instrument < vocab.N_INSTRUMENTS:
            raise ValueError(f"Note instrument family {self.instrument} is outside 0..{vocab.N_INSTRUMENTS - 1}")
