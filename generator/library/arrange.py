"""Composition section by section, at note level, on a take sampled in one pass to the planned form.

The sampler composes the whole form at once with the planned chords (library/form.py); `arrange`
then rebuilds the take (docs/sampling.md, "Form"):

- **repeats**: every later section with the letter of an earlier one (A A B A: the second A and the
  reprise) takes the first one's notes, moved by whole bars: bass and drums throughout, the other
  families (the melody and its accompaniment) but in the section's last bars (form.VARIED_SHARE of
  them by genre: 2 of 8 in jazz and pop, 4 of 8 in classic and calm; at least 1),
  which keep what the one pass sampled there (a new ending each time, on the same chords). With the
  model's own harmony the bass and the chord changes of those bars are the pass's too, so they
  agree with the notes above them;
- **the final downbeat**: nothing sounds across the last bar line but what starts there; every
  family that plays in the track strikes it, and all ring to the end: the bass the keynote, each
  other pitched family the home chord from the keynote up near its own register, the drums a crash
  and a kick.

The result is re-encoded (beat_codec.encode) with the take's bars and chords, so BAR, METER and
CHORD tokens stay where the sampler put them and every onset stays on the grid (notes move by
whole bars; the added ones start on a bar line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import median

from generator.library.form import FormPlan
from generator.tokens import beat_codec, chords, vocab
from generator.tokens.encoding import Encoding
from generator.tokens.notes import Note

BASS = vocab.INSTRUMENT_FAMILIES.index("bass")
DRUMS = vocab.DRUMS_FAMILY
CRASH, KICK = 49, 36
BASS_RANGE = (28, 55)  # where the final keynote goes: E1..G3


@dataclass(frozen=True)
class _N:
    """A note on the step clock: start and end in steps of 1/48 beat."""

    start: int
    end: int
    family: int
    pitch: int
    velocity: int


def arrange(ids: Sequence[int], form: FormPlan, meter: tuple[int, int], encoding: Encoding) -> list[int]:
    """The take rebuilt to its form: repeats from their first statement, the final downbeat struck."""
    piece = beat_codec.decode_piece(ids, encoding)
    bar_steps = beat_codec.steps_per_bar(meter)
    notes = [_N(encoding.tick(n.start_s), encoding.tick(n.end_s), n.instrument, n.pitch, n.velocity)
             for n in piece.notes]
    changes = list(piece.chords)
    keep = {DRUMS} if not form.bar_chords else {BASS, DRUMS}
    first: dict[str, tuple[int, int]] = {}
    for section in form.sections:
        if section.name in ("intro", "outro"):
            continue
        span = (section.start_bar * bar_steps, section.bars * bar_steps)
        if section.name not in first:
            first[section.name] = span
        elif first[section.name][1] == span[1]:
            notes, changes = _repeat(notes, changes, first[section.name][0], span, form.varied_bars(section.bars)
                                     * bar_steps, keep)
    end = form.n_bars * bar_steps
    home = form.bar_chords[-1][-1] if form.bar_chords else _home_of(notes)
    notes = _final_downbeat(notes, end - bar_steps, end, home)
    if home is not None:
        changes = [c for c in changes if c[0] < end - bar_steps] + [(end - bar_steps, home)]
    out = beat_codec.encode(beat_codec.BeatPiece(
        tuple(Note(n.pitch, encoding.seconds(n.start), encoding.seconds(n.end), n.velocity, n.family)
              for n in sorted(notes, key=lambda n: (n.start, n.family, n.pitch))),
        piece.bars, tuple(changes)), encoding)
    clock = int(encoding.shift_ticks(out).sum())
    return out + encoding.shift_tokens(end - clock) + [vocab.END] if clock < end else out + [vocab.END]


def _repeat(notes: list[_N], changes: list[tuple[int, int | None]], source: int, span: tuple[int, int],
            varied: int, keep: set[int]) -> tuple[list[_N], list[tuple[int, int | None]]]:
    """Notes and chord changes with the section at span = (start, length) rebuilt from the one at
    `source`: `keep` families throughout, the others but in its last `varied` steps."""
    start, length = span
    fresh_from = start + length - varied
    shift = start - source

    def copied(n: _N) -> bool:  # a note of the first statement that the repeat takes
        return source <= n.start < source + length and (n.family in keep or n.start + shift < fresh_from)

    def kept(n: _N) -> bool:  # a note of the one pass that stays
        return not start <= n.start < start + length or (n.family not in keep and n.start >= fresh_from)

    out = [n for n in notes if kept(n)] + [replace(n, start=n.start + shift, end=n.end + shift)
                                             for n in notes if copied(n)]
    if BASS in keep:  # planned harmony: the repeat's chords are the first statement's already
        return out, changes

    def in_force(at: int) -> list[tuple[int, int | None]]:
        found = [c for s, c in changes if s <= at]
        return found[-1:]

    moved = [(start, c) for c in in_force(source)] + [(s + shift, c) for s, c in changes
                                                       if source < s < source + length - varied]
    back = [(fresh_from, c) for c in in_force(fresh_from)]
    rest = [c for c in changes if not start <= c[0] <= fresh_from]
    return out, sorted(rest + moved + back, key=lambda c: c[0])


def _home_of(notes: Sequence[_N]) -> int | None:
    """The home chord of the notes' key (the model's own harmony): the tonic triad."""
    from generator.eval.features import estimate_key
    from generator.library.keys import parse_key

    key = parse_key(estimate_key([Note(n.pitch, n.start, n.end, n.velocity, n.family) for n in notes]) or "")
    return None if key is None else chords.chord_index(key.tonic, 1 if key.minor else 0)


def _final_downbeat(notes: list[_N], last: int, end: int, home: int | None) -> list[_N]:
    """Everything before the last bar line stops there; every family strikes it and rings to `end`."""
    if home is None:
        return notes
    before = [replace(n, end=min(n.end, last)) for n in notes if n.start < last]
    before = [n for n in before if n.end > n.start]
    added = []
    for family in sorted({n.family for n in notes}):
        own = [n for n in notes if n.family == family] or notes
        recent = [n for n in own if n.start >= last - 8 * (end - last)] or own
        velocity = int(median(n.velocity for n in recent))
        if family == DRUMS:
            added += [_N(last, last + 12, DRUMS, p, velocity) for p in (KICK, CRASH)]
            continue
        centre = int(median(n.pitch for n in recent))
        root = chords.root_of(home)
        if family == BASS:
            low, high = BASS_RANGE
            pitches = [min(range(low, high + 1), key=lambda p: (p % 12 != root, abs(p - centre)))]
        else:
            bottom = centre - 5 - (centre - 5 - root) % 12  # the keynote at or just below the register
            pitches = sorted(bottom + (pc - root) % 12 for pc in chords.pitch_classes(home))
        added += [_N(last, end, family, p, velocity) for p in pitches if 0 <= p < 128]
    return before + added
