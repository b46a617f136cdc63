"""MIDI <-> token ids (the event vocabulary of generator.tokens.vocab). No torch.

Two encodings share the vocabulary (docs/vocabulary.md has the full table and rules):

- default (ours): all 128 pitches, integer 10 ms ticks (times rounded to the grid), VELOCITY only
  when the velocity bin changes, INSTRUMENT(family) whenever the family of the next note event
  differs from the last one, leading silence kept, same-pitch overlaps within a family resolved.
- sber: bit-exact with Sber's `encode(midi, use_piano_range=True)` and `decode`, quirks
  included (piano range only, float truncation of some shifts, no leading silence); its codec is
  in sber.py.

The functions here take the encoding as an `Encoding` (encoding.py), DEFAULT unless told.

Sequences produced here never hold GENRE, END or PAD; decoders skip those and any unknown id.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pretty_midi

from generator.errors import InputError
from generator.files import read_bytes_bounded
from generator.tokens import beat_codec, chords, default_codec, vocab
from generator.tokens.default_codec import DEFAULT_VELOCITY  # noqa: F401  (callers read it here)
from generator.tokens.encoding import DEFAULT, Encoding
from generator.tokens.notes import Note

log = logging.getLogger(__name__)

MIDI_RESOLUTION = 600  # ticks per beat at 120 bpm: one 10 ms step is exactly 12 MIDI ticks
MIDI_TEMPO_BPM = 120.0
BEAT_MIDI_RESOLUTION = 480  # beat encoding: ticks per beat, 10 per step
CHORD_LYRIC = "chord:"  # a lyric event naming the chord from there on (corpus/arrangers, beat MIDI files)

# Limits of a MIDI file read from disk (`gen tokenize`, primers): real pieces are far below them.
MAX_MIDI_BYTES = 4 << 20  # 4 MiB: about a million notes
MAX_MIDI_SECONDS = 2 * 3600.0  # notes past 2 hours: a broken or hostile tempo map, not music to encode
MAX_MIDI_TOKENS = 2_000_000



# --------------------------------------------------------------------------- MIDI files


def load_midi(midi: str | Path | pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    """A MIDI file read within the limits above (a PrettyMIDI is passed through); a missing,
    unreadable or oversized file raises InputError naming it."""
    if isinstance(midi, pretty_midi.PrettyMIDI):
        return midi
    path = Path(midi)
    if not path.exists():
        raise InputError(f"{path}: MIDI file not found; fix: check the path")
    try:
        data = read_bytes_bounded(path, MAX_MIDI_BYTES, "MIDI file")
    except OSError as error:
        raise InputError(f"{path}: MIDI file cannot be read ({error.strerror}); fix: check its permissions") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about meta events on odd tracks
            pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as error:  # mido/pretty_midi raise many types for broken files
        detail = " ".join(str(error).split())
        reason = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        raise InputError(
            f"{path}: not a readable MIDI file ({reason}); fix: supply a standard MIDI file (.mid)"
        ) from error
    _check_size(path, pm)
    return pm


def _check_size(path: Path, pm: pretty_midi.PrettyMIDI) -> None:
    """A MIDI file read from disk has at most MAX_MIDI_SECONDS of notes and MAX_MIDI_TOKENS / 2 notes."""
    notes = [n for inst in pm.instruments for n in inst.notes]
    end_s = max((max(n.start, n.end) for n in notes), default=0.0)
    if not end_s <= MAX_MIDI_SECONDS:
        raise InputError(f"{path}: its notes run to {end_s / 3600:.1f} h, past the limit of "
                         f"{MAX_MIDI_SECONDS / 3600:g} h for a MIDI input; fix: cut the file shorter")
    if 2 * len(notes) > MAX_MIDI_TOKENS:  # every note is a NOTE_ON and a NOTE_OFF
        raise InputError(f"{path}: {len(notes)} notes would be more than {MAX_MIDI_TOKENS} tokens, the limit "
                         "for a MIDI input; fix: cut the file shorter")


def midi_to_notes(midi: str | Path | pretty_midi.PrettyMIDI) -> list[Note]:
    """All notes of a MIDI file in file order (instrument by instrument), times in seconds.

    A corrupt or unreadable file raises InputError naming the file.
    """
    pm = load_midi(midi)
    notes = []
    for inst in pm.instruments:
        family = int(vocab.instrument_family(int(inst.program), bool(inst.is_drum)))
        for n in inst.notes:
            start, end = float(n.start), float(n.end)
            notes.append(Note(int(n.pitch), start, max(start, end), int(n.velocity), family))
    log.debug("%d notes in %d instruments", len(notes), len(pm.instruments))
    return notes


def _meter_named(numerator: int, denominator: int) -> tuple[int, int] | None:
    """The vocabulary's meter for a time signature (2/2 is 4/4's bar), or None."""
    meter = (int(numerator), int(denominator))
    if meter in vocab.METERS:
        return meter
    return (4, 4) if meter == (2, 2) else None


def midi_to_piece(midi: str | Path | pretty_midi.PrettyMIDI, *, encoding: Encoding) -> beat_codec.BeatPiece:
    """A MIDI file on its own beat grid (ticks per beat and tempo map): notes at the reference tempo,
    a bar at every downbeat of its time signatures (4/4 without any), and its chords: the
    'chord:<index>' lyric events an arrangement wrote (corpus/arrangers), else the template
    analysis of tokens/chords.py."""
    pm = load_midi(midi)
    per_beat = vocab.STEPS_PER_BEAT / pm.resolution

    def step(seconds: float) -> int:
        return round(pm.time_to_tick(seconds) * per_beat)

    notes = []
    for inst in pm.instruments:
        family = int(vocab.instrument_family(int(inst.program), bool(inst.is_drum)))
        for n in inst.notes:
            start = beat_codec.on_grid(step(float(n.start)))
            end = max(beat_codec.on_grid(step(float(n.end))), beat_codec.next_on_grid(start))
            notes.append(Note(int(n.pitch), encoding.seconds(start), encoding.seconds(end), int(n.velocity), family))
    end_step = max((encoding.tick(n.end_s) for n in notes), default=0)
    signatures = sorted(pm.time_signature_changes, key=lambda ts: ts.time)
    downbeats = [step(float(t)) for t in pm.get_downbeats()]
    bars = []
    for at in sorted(set(downbeats)):
        if at >= max(end_step, 1):
            break
        inforce = [ts for ts in signatures if step(ts.time) <= at]
        meter = _meter_named(inforce[-1].numerator, inforce[-1].denominator) if inforce else (4, 4)
        bars.append(beat_codec.Bar(at, meter))
    marks = []
    for lyric in pm.lyrics:
        if lyric.text.startswith(CHORD_LYRIC):
            try:
                marks.append((step(lyric.time), chords.chord_named(lyric.text.removeprefix(CHORD_LYRIC))))
            except KeyError:
                continue  # a lyric that only looks like a chord mark
    if marks:
        changes = tuple((at, chord) for at, chord in sorted(marks, key=lambda m: m[0]) if at < max(end_step, 1))
    else:
        changes = beat_codec.analysed_chords(notes, bars, encoding, end_step)
    return beat_codec.BeatPiece(tuple(notes), tuple(bars), changes)


def midi_to_ids(midi: str | Path | pretty_midi.PrettyMIDI, *, encoding: Encoding = DEFAULT) -> list[int]:
    """Token ids of a MIDI file (a path or a PrettyMIDI); a file past MAX_MIDI_TOKENS raises InputError."""
    if encoding.has_bars:
        ids = beat_codec.encode(midi_to_piece(midi, encoding=encoding), encoding)
    else:
        ids = notes_to_ids(midi_to_notes(midi), encoding=encoding)
    if len(ids) > MAX_MIDI_TOKENS and not isinstance(midi, pretty_midi.PrettyMIDI):
        raise InputError(f"{midi}: {len(ids)} tokens, more than the limit of {MAX_MIDI_TOKENS} for a MIDI input; "
                         "fix: cut the file shorter")
    return ids


def ids_to_midi(
    ids: Sequence[int],
    *,
    programs: Mapping[int, int] | None = None,
    encoding: Encoding = DEFAULT,
    bpm: float | None = None,
) -> pretty_midi.PrettyMIDI:
    """A PrettyMIDI with one instrument per family present (named after the family).

    `programs` maps family -> General MIDI program (default family * 8; drums use the drum kit).
    Never raises for garbage ids: whatever cannot be decoded is skipped. Every note lasts at
    least 10 ms in the file (a zero-length one would be written as a note that never stops).

    A beat encoding writes a file a DAW reads as music: 480 ticks per beat, one tempo event at
    `bpm` (the reference tempo when None), a time signature at the first bar and at every change
    of meter, and every note on its grid step (10 ticks per step).
    """
    programs = dict(programs or {})
    for family, program in programs.items():
        if not 0 <= int(program) <= 127:
            raise ValueError(f"programs[{family}] = {program} is outside 0..127")
    if encoding.has_bars:
        tempo = float(bpm or vocab.REFERENCE_BPM)
        piece = beat_codec.decode_piece(ids, encoding)
        scale = vocab.REFERENCE_BPM / tempo  # reference seconds -> seconds at the track's tempo
        decoded = at_tempo(piece.notes, tempo)
        pm = pretty_midi.PrettyMIDI(resolution=BEAT_MIDI_RESOLUTION, initial_tempo=tempo)
        last = None
        for bar in piece.bars:
            if bar.meter is not None and bar.meter != last:
                seconds = encoding.seconds(bar.step) * scale
                pm.time_signature_changes.append(pretty_midi.TimeSignature(*bar.meter, seconds))
                last = bar.meter
        for at, chord in piece.chords:
            pm.lyrics.append(pretty_midi.Lyric(CHORD_LYRIC + chords.chord_name(chord), encoding.seconds(at) * scale))
    else:
        pm = pretty_midi.PrettyMIDI(resolution=MIDI_RESOLUTION, initial_tempo=MIDI_TEMPO_BPM)
        decoded = ids_to_notes(ids, encoding=encoding)
    by_family: dict[int, list[Note]] = {}
    for note in decoded:
        by_family.setdefault(note.instrument, []).append(note)
    for family in sorted(by_family):
        default_program = 0 if family == vocab.DRUMS_FAMILY else family * 8
        inst = pretty_midi.Instrument(
            program=int(programs.get(family, default_program)),
            is_drum=family == vocab.DRUMS_FAMILY,
            name=vocab.INSTRUMENT_FAMILIES[family],
        )
        # A zero-length note (the Sber decoder makes them) would be written OFF-then-ON: a stuck note.
        step_s = 1 / encoding.ticks_per_s
        inst.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start_s, max(n.end_s, n.start_s + step_s))
                      for n in by_family[family]]
        pm.instruments.append(inst)
    return pm


# --------------------------------------------------------------------------- public codec


def notes_to_ids(notes: Sequence[Note], *, encoding: Encoding = DEFAULT) -> list[int]:
    """Token ids for notes (no GENRE prefix, no END)."""
    return encoding.encode(notes)


def ids_to_notes(ids: Sequence[int], *, encoding: Encoding = DEFAULT, bpm: float | None = None) -> list[Note]:
    """Notes for token ids; never raises: GENRE/END/PAD/unknown ids and orphan NOTE_OFFs are skipped.

    Default encoding: notes come sorted by (start, family, pitch) and last at least one tick.
    Sber: exactly the notes (and order) of the Sber decoder.
    Beat encodings: seconds at `bpm` (the reference tempo when None; ignored by the others).
    """
    notes = encoding.decode(ids)
    return at_tempo(notes, bpm) if encoding.has_bars and bpm else notes


def seconds_of(ids: Sequence[int], *, encoding: Encoding = DEFAULT, bpm: float | None = None) -> float:
    """Music time the ids cover: the sum of their time shifts, in seconds (at `bpm`, as ids_to_notes)."""
    seconds = encoding.seconds_of(ids)
    return seconds * vocab.REFERENCE_BPM / bpm if encoding.has_bars and bpm else seconds


def at_tempo(notes: Sequence[Note], bpm: float) -> list[Note]:
    """Beat-time notes held in reference seconds (vocab.REFERENCE_BPM), moved to `bpm`."""
    scale = vocab.REFERENCE_BPM / float(bpm)
    return [Note(n.pitch, n.start_s * scale, n.end_s * scale, n.velocity, n.instrument) for n in notes]


def names(ids: Sequence[int], *, encoding: Encoding = DEFAULT) -> list[str]:
    """Readable token names, e.g. NOTE_ON(60), TIME_SHIFT(120ms)."""
    return [encoding.token_name(t) for t in ids]


def augment_ids(ids: Sequence[int], *, transpose: int = 0, stretch: float = 1.0) -> list[int]:
    """Transpose pitched notes by `transpose` semitones and scale time by `stretch` (training).

    Works on the event stream, not on decoded notes, so a window cut from the middle of a piece
    stays that window (open notes, orphan NOTE_OFFs and all): drums are never transposed; notes
    pushed out of 0..127 are dropped (their NOTE_ON and NOTE_OFF alike); absolute times are scaled
    and rounded to the tick grid without drift, and event times that were apart stay at least one
    tick apart. GENRE/END/PAD pass through in place; ids outside the vocabulary are dropped. The
    result is in the canonical default encoding (no redundant VELOCITY or INSTRUMENT tokens).
    Input is expected in the default encoding (notes_to_ids output or a window of it); for other
    streams the result is still valid, but the events of one tick are put in canonical order.
    """
    if not stretch > 0 or not math.isfinite(stretch):
        raise ValueError(f"stretch must be a positive finite number, got {stretch}")
    return default_codec.augment(ids, int(transpose), float(stretch), DEFAULT)
