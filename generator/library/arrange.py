"""Composition section by section, at note level, on a take sampled in one pass to the planned form.

The sampler composes the whole form at once with the planned chords (library/form.py); `arrange`
then rebuilds the take (docs/sampling.md, "Form"), as an arranger would given the plan:

- **one bass line**: the bass plays one note at a time, the lowest of those starting together, each
  ending where the next begins (the model's bass held two or three long notes at once in pop);
- **harmony follows the plan** (planned chords only, `form.bar_chords`): at each planned change
  the bass plays the new chord's root (a bass note starting there moves to the root's nearest
  octave; else a bass note sounding into the change, off the root, ends there and a root note at
  the bass's median velocity takes over until the next change, bass note or that note's end); a pitched note
  starting on a strong beat (a bar line or a change) that is neither a chord tone nor in the plan's
  key (natural minor plus its raised 7th) moves to the nearest chord tone within its family's
  range, and so does an avoid note: out of the chord, a semitone from one of its tones, held under
  it for the genre's `form.AVOID_BEATS` or more (shorter ones pass; ninths and sixths stay); and a
  pitched note sounding across a change whose new chord does not hold it ends there, dropped if
  that leaves it under a sixteenth. So no note is held into a chord it clashes with: a
  note held longer than 2 bars ends at the first change after them that it does not fit. With the
  model's own harmony no pitch or length changes;
- **playable chords** (any harmony): of the notes one pitched family but the bass starts together, at
  most MAX_VOICES, and no three within a whole tone (the model struck clusters of up to 23 notes);
- **a groove per section** (drums): in each section of 3 bars or more the drums of every bar but the
  last play the section's most typical bar (the medoid of those bars: the most alike the others by
  Jaccard similarity of their (step in the bar, pitch) onsets; ties to the earliest); the last bar
  keeps the pass's own drums, a fill. Each section has its own groove, the intro's and outro's too.
  Both rules come before the repeats, which so take the first statement's groove and bass;
- **time kept** (jazz and pop, `form.TIMEKEEPERS`): in every bar where the section's drums play but
  its fill and the last, the genre's time-keeping voices play a fixed pattern on every beat, in
  place of the pass's own (`TIMEKEEPING`): jazz a swung ride (every beat, the skip note a triplet
  before beats 3 and 1), the hi-hat pedal on 2 and 4 and a feathered bass drum on every beat; pop
  the closed hi-hat on every eighth, the kick on 1 and 3 and the snare on 2 and 4. The pass's other
  drums (congas, claps, open hats, cymbals) stay. Measured on library tracks, the model's drums
  struck only 62% (jazz) and 72% (pop) of the beats, and its snare fell as often on a sixteenth
  before the beat as on the backbeat;
- **broken chords** (calm, `form.ACCOMPANIMENT`): in every bar but the last the piano's left hand
  plays the chord in force one tone every eighth (root in E2..D#3, fifth, octave, tenth, twelfth,
  and back down), ringing to the bar line or the next change as under a
  pedal; the pass's piano notes under middle C in those bars give way to it. Calm has no drums, and
  its takes held pads under a sparse melody: pulse clarity 0.26 on the library, real calm 0.63;
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
whole bars; the added ones start on a bar line or a planned change, and notes end on one).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import median

from generator.library.form import FormPlan
from generator.tokens import beat_codec, chords, vocab
from generator.tokens.encoding import Encoding
from generator.tokens.notes import Note

BASS = vocab.INSTRUMENT_FAMILIES.index("bass")
PIANO = vocab.INSTRUMENT_FAMILIES.index("piano")
DRUMS = vocab.DRUMS_FAMILY
CRASH, KICK = 49, 36
# A time-keeping pattern: (drum pitch, step in the beat, which beats of the bar (0-based): "all", "odd"
# for the 2nd and 4th, "even" for the 1st and 3rd, velocity as a share of the section's median), and
# the drum pitches it takes over from the pass (closed, pedal or ride cymbals; kick and snare in pop).
TIMEKEEPING: dict[str, tuple[tuple[tuple[int, int, str, float], ...], frozenset[int]]] = {
    "ride": (((51, 0, "all", 1.0), (51, 32, "odd", 0.75), (44, 0, "odd", 0.7), (35, 0, "all", 0.45)),
             frozenset({42, 44, 51, 59})),
    "backbeat": (((42, 0, "all", 0.8), (42, 24, "all", 0.6), (36, 0, "even", 1.0), (38, 0, "odd", 1.0)),
                 frozenset({35, 36, 37, 38, 40, 42, 44})),
}
BASS_RANGE = (28, 55)  # where the final keynote goes: E1..G3
SIXTEENTH = 12  # steps: the shortest note the harmony rules leave after a cut
MAX_VOICES = 6  # notes one pitched family strikes at once: a player's chord (the model struck clusters of 10-23)
# Broken chords (form.ACCOMPANIMENT): the piano's left hand, one chord tone every eighth, each bar
# climbing from the root to the top of its ladder and back, under the calm piano's melody (its 5th
# percentile over 20 library tracks is E4); the pass's own piano notes below middle C give way to it.
BROKEN_CHORD_ROOTS = (40, 51)  # E2..D#3: the ladder's top is then at most D5
LEFT_HAND_TOP = 60
BROKEN_CHORD_VELOCITY = 0.8  # of the piano's median velocity: under the melody
UNHEARD_PIANO_VELOCITY = 64  # the piano's median velocity when the take has no piano note of its own
EIGHTH = vocab.STEPS_PER_BEAT // 2
MAJOR_SCALE, MINOR_SCALE = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10, 11)  # minor: natural + raised 7th


@dataclass(frozen=True)
class _N:
    """A note on the step clock: start and end in steps of 1/48 beat."""

    start: int
    end: int
    family: int
    pitch: int
    velocity: int


def arrange(ids: Sequence[int], form: FormPlan, meter: tuple[int, int], encoding: Encoding) -> list[int]:
    """The take rebuilt to its form: its harmony fitted to the plan, a drum groove per section, repeats
    from their first statement, the final downbeat struck."""
    piece = beat_codec.decode_piece(ids, encoding)
    bar_steps = beat_codec.steps_per_bar(meter)
    notes = [_N(encoding.tick(n.start_s), encoding.tick(n.end_s), n.instrument, n.pitch, n.velocity)
             for n in piece.notes]
    changes = list(piece.chords)
    end = form.n_bars * bar_steps
    notes = [replace(n, velocity=min(n.velocity, form.drum_ceiling)) if n.family == DRUMS else n
             for n in _one_bass_line(notes)]
    if form.bar_chords:
        scale = MINOR_SCALE if form.choice.minor else MAJOR_SCALE
        notes = _follow_harmony(notes, [c for c in changes if c[0] < end - bar_steps], bar_steps,
                                frozenset((form.choice.tonic + d) % 12 for d in scale),
                                round(form.avoid_beats * vocab.STEPS_PER_BEAT))
    notes = _playable_chords(notes, changes)
    notes = _grooves(notes, [(s.start_bar * bar_steps, s.bars) for s in form.sections], bar_steps)
    if form.timekeeper and meter[1] == 4:
        notes = _keep_time(notes, [(s.start_bar * bar_steps, s.bars) for s in form.sections], bar_steps,
                           end - bar_steps, TIMEKEEPING[form.timekeeper])
    if form.accompaniment == "broken_chords":
        notes = _broken_chords(notes, changes, bar_steps, end - bar_steps)
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


def _grooves(notes: list[_N], sections: Sequence[tuple[int, int]], bar_steps: int) -> list[_N]:
    """The drums of each section (start step, bars) but its last bar replaced by its medoid bar's."""
    if not any(n.family == DRUMS for n in notes):
        return notes
    for start, bars in sections:
        if bars < 3:  # one bar, or one groove bar and its fill: nothing to repeat
            continue
        body = range(start, start + (bars - 1) * bar_steps)
        onsets = [frozenset((n.start - b, n.pitch) for n in notes if n.family == DRUMS and b <= n.start < b + bar_steps)
                  for b in range(start, start + (bars - 1) * bar_steps, bar_steps)]
        alike = [sum(_jaccard(a, b) for j, b in enumerate(onsets) if j != i) for i, a in enumerate(onsets)]
        medoid = start + alike.index(max(alike)) * bar_steps
        groove = [n for n in notes if n.family == DRUMS and medoid <= n.start < medoid + bar_steps]
        notes = [n for n in notes if n.family != DRUMS or n.start not in body] + \
            [replace(n, start=n.start + b - medoid, end=n.end + b - medoid) for b in body[::bar_steps] for n in groove]
    return notes


def _keep_time(notes: list[_N], sections: Sequence[tuple[int, int]], bar_steps: int, last: int,
               timekeeping: tuple[tuple[tuple[int, int, str, float], ...], frozenset[int]]) -> list[_N]:
    """In each section (start step, bars) whose drums play, every bar but its fill (the last bar of a
    section of 3 bars or more) and the track's last bar: the pattern in place of the pass's own
    time-keeping voices, at the section's median drum velocity."""
    pattern, replaced = timekeeping
    beats = bar_steps // vocab.STEPS_PER_BEAT
    hits = [(beat * vocab.STEPS_PER_BEAT + step, pitch, share) for pitch, step, which, share in pattern
            for beat in range(beats) if which == "all" or (beat % 2 == 1) == (which == "odd")]  # in one bar
    for start, bars in sections:
        drums = [n for n in notes if n.family == DRUMS and start <= n.start < start + bars * bar_steps]
        if not drums:
            continue
        velocity = median(n.velocity for n in drums)
        kept_bars = [b for b in range(start, start + (bars - 1 if bars >= 3 else bars) * bar_steps, bar_steps)
                     if b < last]
        if not kept_bars:
            continue
        inside = range(kept_bars[0], kept_bars[-1] + bar_steps)
        notes = [n for n in notes if not (n.family == DRUMS and n.pitch in replaced and n.start in inside)]
        struck = {(n.start, n.pitch) for n in notes if n.family == DRUMS}
        notes += [_N(bar + at, bar + at + SIXTEENTH, DRUMS, pitch, max(1, min(127, round(velocity * share))))
                  for bar in kept_bars for at, pitch, share in hits if (bar + at, pitch) not in struck]
    return notes


def _broken_chords(notes: list[_N], changes: Sequence[tuple[int, int | None]], bar_steps: int,
                   last: int) -> list[_N]:
    """Every bar before the last: the piano's left hand plays the chord in force as a broken chord,
    one note every eighth (root, fifth, octave, tenth, twelfth; then back down), each ringing as under a
    pedal changed at the bar line and at each change of chord. The pass's piano notes under
    LEFT_HAND_TOP that start in those bars go: the left hand is this pattern. It is played by the
    piano family whatever program the recipe gives it (an instrumentation merges over the defaults,
    so calm's palette always has it), also in a take whose model wrote no piano note."""
    piano = [n.velocity for n in notes if n.family == PIANO]
    steps = [step for step, _ in changes]
    velocity = max(1, round((median(piano) if piano else UNHEARD_PIANO_VELOCITY) * BROKEN_CHORD_VELOCITY))
    eighths = bar_steps // EIGHTH
    played: list[_N] = []
    for bar in range(0, last, bar_steps):
        for k in range(eighths):
            at = bar + k * EIGHTH
            chord = _chord_at(changes, steps, at)
            if chord is None:
                continue
            ladder = _ladder(chord)
            after = bisect_right(steps, at)  # the next change, if any, lifts the pedal before the bar line
            pedal = min(bar + bar_steps, steps[after]) if after < len(steps) else bar + bar_steps
            played.append(_N(at, pedal, PIANO, ladder[min(k, eighths - k, len(ladder) - 1)],
                             velocity + (8 if k == 0 else 0)))
    notes = [n for n in notes if not (n.family == PIANO and n.pitch < LEFT_HAND_TOP and n.start < last)]
    # a pitch struck again ends where it is struck again
    played.sort(key=lambda n: (n.pitch, n.start))
    for i, (a, b) in enumerate(zip(played, played[1:])):
        if a.pitch == b.pitch and b.start < a.end:
            played[i] = replace(a, end=b.start)
    return notes + played


def _ladder(chord: int) -> list[int]:
    """A chord spread for a broken-chord left hand: root (in BROKEN_CHORD_ROOTS), fifth, octave, tenth,
    twelfth: the chord's own third and fifth (minor, diminished, augmented); its seventh stays with
    the pads, since over the root an octave below a major seventh reads as a semitone clash."""
    root_pc, pcs = chords.root_of(chord), chords.pitch_classes(chord)
    root = BROKEN_CHORD_ROOTS[0] + (root_pc - BROKEN_CHORD_ROOTS[0]) % 12
    above = {(pc - root_pc) % 12 for pc in pcs}
    third = 3 if 3 in above and 4 not in above else 4
    fifth = next((i for i in (7, 6, 8) if i in above), 7)
    return [root, root + fifth, root + 12, root + 12 + third, root + 12 + fifth]


def _jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _follow_harmony(notes: list[_N], changes: Sequence[tuple[int, int | None]], bar_steps: int,
                    scale: frozenset[int], avoid_steps: int) -> list[_N]:
    """The pitched notes fitted to the planned changes (step, chord): the bass on the roots, strong-beat
    notes out of chord and key and avoid notes held `avoid_steps` moved onto a chord tone, notes held
    into a chord they clash with cut."""
    steps = [s for s, _ in changes]
    notes = _bass_on_roots(notes, changes)
    ranges = {f: (min(n.pitch for n in notes if n.family == f), max(n.pitch for n in notes if n.family == f))
              for f in {n.family for n in notes}}
    strong = set(steps)
    out = []
    for n in notes:
        chord = _chord_at(changes, steps, n.start)
        tones = chords.pitch_classes(chord) if chord is not None and n.family != DRUMS else None
        if tones and n.pitch % 12 not in tones:
            pc = n.pitch % 12
            after = bisect_right(steps, n.start)
            held = min(n.end, steps[after] if after < len(steps) else n.end) - n.start  # under this chord
            out_of_key = pc not in scale and (n.start % bar_steps == 0 or n.start in strong)
            avoid = held >= avoid_steps and bool({(pc + 1) % 12, (pc - 1) % 12} & tones)
            if out_of_key or avoid:
                low, high = ranges[n.family]
                near = [p for p in range(n.pitch - 6, n.pitch + 7) if p % 12 in tones and low <= p <= high]
                if near:
                    n = replace(n, pitch=min(near, key=lambda p: (abs(p - n.pitch), p)))
        out.append(n)
    return _cut_at_changes(out, changes)


def _playable_chords(notes: list[_N], changes: Sequence[tuple[int, int | None]]) -> list[_N]:
    """Of the notes one pitched family (not the bass) starts together, at most MAX_VOICES and no cluster:
    the highest and the lowest first, then the chord's tones, then the rest, each from the top, a note
    left out when one already kept has its pitch or when it would make three within a whole tone (a
    single semitone, as in many jazz voicings, stays)."""
    steps = [s for s, _ in changes]
    groups: dict[tuple[int, int], list[_N]] = {}
    for n in notes:
        if n.family not in (BASS, DRUMS):
            groups.setdefault((n.family, n.start), []).append(n)
    dropped: set[int] = set()
    for (_, start), group in groups.items():
        if len(group) < 3:
            continue
        chord = _chord_at(changes, steps, start)
        tones = chords.pitch_classes(chord) if chord is not None else frozenset()
        down = sorted(group, key=lambda n: -n.pitch)
        kept: list[_N] = []
        for n in [down[0], down[-1]] + sorted(down[1:-1], key=lambda n: n.pitch % 12 not in tones):
            if len(kept) < MAX_VOICES and not _clustered(n.pitch, [k.pitch for k in kept]):
                kept.append(n)
        dropped |= {id(n) for n in group} - {id(n) for n in kept}
    return [n for n in notes if id(n) not in dropped]


def _chord_at(changes: Sequence[tuple[int, int | None]], steps: Sequence[int], step: int) -> int | None:
    """The chord in force at `step` (`steps`: the changes' steps); None before the first change."""
    i = bisect_right(steps, step) - 1
    return changes[i][1] if i >= 0 else None


def _clustered(pitch: int, kept: Sequence[int]) -> bool:
    """`pitch` is in `kept`, or it and two of them lie within a whole tone."""
    near = sorted([k for k in kept if abs(k - pitch) <= 2] + [pitch])
    return pitch in kept or any(near[i + 2] - near[i] <= 2 for i in range(len(near) - 2))


def _one_bass_line(notes: list[_N]) -> list[_N]:
    """The bass notes as one line: of those starting together the lowest, each cut where the next starts."""
    line: list[_N] = []
    for n in sorted((n for n in notes if n.family == BASS), key=lambda n: (n.start, n.pitch)):
        if line and line[-1].start == n.start:
            continue
        if line and line[-1].end > n.start:
            line[-1] = replace(line[-1], end=n.start)
        line.append(n)
    return [n for n in notes if n.family != BASS] + line


def _bass_on_roots(notes: list[_N], changes: Sequence[tuple[int, int | None]]) -> list[_N]:
    """At each change the lowest bass note starting there moves to the root's nearest octave; with none,
    the bass sounding into the change ends there and the root takes over until the next change (or
    the next bass note, or that note's end)."""
    bass = [n for n in notes if n.family == BASS]
    if not bass:
        return notes
    velocity = int(median(n.velocity for n in bass))
    out = [n for n in notes if n.family != BASS]
    for i, (step, chord) in enumerate(changes):
        if chord is None:
            continue
        root = chords.root_of(chord)
        until = changes[i + 1][0] if i + 1 < len(changes) else None
        starting = [n for n in bass if n.start == step]
        if starting:
            low = min(starting, key=lambda n: n.pitch)
            bass[bass.index(low)] = replace(low, pitch=_nearest_pc(low.pitch, root))
            continue
        into = [n for n in bass if n.start < step < n.end and n.pitch % 12 != root]
        if into:
            low = min(into, key=lambda n: n.pitch)
            stop = min([low.end] + [until] * (until is not None) + [n.start for n in bass if n.start > step])
            bass = [n for n in bass if n not in into] + [replace(n, end=step) for n in into
                                                          if step - n.start >= SIXTEENTH]
            bass.append(_N(step, stop, BASS, _nearest_pc(low.pitch, root), velocity))
    return out + bass


def _nearest_pc(pitch: int, pc: int) -> int:
    """The pitch of class `pc` nearest `pitch` (the lower of two a tritone away)."""
    up = (pc - pitch) % 12
    return pitch + up if up < 6 else pitch + up - 12


def _cut_at_changes(notes: list[_N], changes: Sequence[tuple[int, int | None]]) -> list[_N]:
    """Pitched notes sounding across a change whose chord does not hold them end there (dropped when
    that leaves them under a sixteenth)."""
    out = []
    for n in notes:
        clash = [s for s, c in changes if n.start < s < n.end and c is not None
                 and n.pitch % 12 not in chords.pitch_classes(c)] if n.family != DRUMS else []
        if not clash:
            out.append(n)
        elif clash[0] - n.start >= SIXTEENTH:
            out.append(replace(n, end=clash[0]))
    return out


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
