"""Primers: the opening (or closing) seconds of a MIDI file as token ids to continue from."""

from __future__ import annotations

from dataclasses import replace

from generator.errors import InputError
from generator.sampling.generate import MAX_PRIMER_TOKENS
from generator.tokens.encoding import DEFAULT, Encoding


def primer_from_midi(path, seconds: float, from_end: bool = False, *, encoding: Encoding = DEFAULT,
                     max_tokens: int = MAX_PRIMER_TOKENS) -> tuple[int, ...]:
    """Ids of the first (or last) `seconds` of a MIDI file, at most `max_tokens`, to continue from.

    From the start, the cut falls before the first time shift past `seconds`; notes sounding
    there stay open for the model to release. From the end, notes starting in the last `seconds`
    are kept and shifted to start at 0. Too many tokens: the window shrinks until they fit.
    `encoding` is the model's (`model.encoding`): a Sber-format model gets Sber ids.
    """
    from generator.tokens.tokenizer import midi_to_notes, notes_to_ids

    if not seconds > 0:
        raise InputError(f"primer seconds = {seconds!r} is invalid: use a number of seconds > 0")
    notes = midi_to_notes(path)
    if not notes:
        raise InputError(f"{path}: the MIDI file has no notes to use as a primer; fix: pick another file")
    if from_end:
        return _primer_from_end(notes, seconds, encoding, max_tokens)
    ids = _cut_at(notes_to_ids(notes, encoding=encoding), round(seconds * encoding.ticks_per_s), max_tokens,
                  encoding)
    if not ids:
        raise InputError(f"{path}: no notes in the first {seconds} s; fix: use a longer --primer-seconds")
    return tuple(ids)


def _cut_at(ids: list[int], max_ticks: int, max_tokens: int, encoding: Encoding) -> list[int]:
    """The longest prefix within `max_ticks` and `max_tokens` that ends before a time shift
    (so every event of its last tick is in), or all of `ids` if they fit."""
    ticks, cut = 0, 0
    for n, t in enumerate(ids):
        if n > max_tokens or ticks > max_ticks:
            break
        step = encoding.ticks_of(t)
        if step:
            cut = n
            ticks += step
    else:
        if ticks <= max_ticks and len(ids) <= max_tokens:
            cut = len(ids)
    return list(ids[:cut])


def _primer_from_end(notes: list, seconds: float, encoding: Encoding, max_tokens: int) -> tuple[int, ...]:
    from generator.tokens.tokenizer import notes_to_ids

    end = max(n.end_s for n in notes)
    start = max(0.0, end - seconds)
    while True:
        kept = [n for n in notes if n.start_s >= start]
        if not kept:
            raise InputError(f"no primer of at most {max_tokens} tokens fits the last {seconds} s")
        first = min(n.start_s for n in kept)
        ids = notes_to_ids([replace(n, start_s=n.start_s - first, end_s=n.end_s - first) for n in kept],
                           encoding=encoding)
        if len(ids) <= max_tokens:
            return tuple(ids)
        start = first + (end - first) * (1 - max_tokens / len(ids)) + encoding.seconds(1)  # one tick on
