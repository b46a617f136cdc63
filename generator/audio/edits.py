"""A track's loop and cut-downs, each mastered on its own to the loudness target under the ceiling.

A beat-time track's loop and cut-downs are rendered again from its MIDI by whole bars (which bars:
audio/edit_plan.py), not cut from its mix: a span cut from the mix carries the tails of the notes
before it and lacks its own. Rendered alone, a span's own release and reverb ring past its end;
folded into its start, that tail is what a repeat plays there, so the loop repeats without a
click, gap or bump, and needs no fades. A cut-down's parts are laid end to end in one MIDI and
rendered in one pass, so one part's reverb rings into the next as in a performance (no crossfade
at the splices), and its last bar, the track's cadence, rings out after the final bar line.
A track without bars (the default encoding) gets no loop, and cut-downs that are the mix faded
out (dsp.cutdown), mastered on their own too. The rules: docs/delivery.md "Loops and cut-downs".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pretty_midi

from generator.audio.dsp import cutdown, fit_length, to_stereo
from generator.audio.edit_plan import Form, Segment, cutdown_segments, loop_candidates
from generator.audio.joins import beat_marks, join_measures, track_p99

# (midi, sample_rate) -> its mix (N, 2), sample 0 at MIDI time 0, rendered past the last note-off
# until its release and reverb have died away (render.render_midi's mix, through humanize if asked).
Render = Callable[[pretty_midi.PrettyMIDI, int], np.ndarray]
RING_OUT_S = 2.0  # a cut-down keeps at most this much of the ring after its last bar line
END_FADE_S = 0.01  # a ring-out cut at RING_OUT_S ends with this fade, so without a click
MIN_HALF_LOOP_BARS = 2  # a loop is halved (make_loop) only into halves of at least this many bars
ONSET_TOLERANCE_S = 1e-3  # a note this close to a bar line counts as on it (the bars are float seconds)


@dataclass(frozen=True)
class EditSettings:
    target_lufs: float = -14.0
    ceiling_dbtp: float = -1.0
    ending_fade_s: float = 0.0  # the track ends in a fade (mastering.ending: fade), so its cut-downs do
    ring_out_s: float = RING_OUT_S


@dataclass(frozen=True)
class Edit:
    audio: np.ndarray  # (N, 2) float32, mastered
    sample_rate: int
    integrated_lufs: float  # of this audio, measured after mastering
    true_peak_dbtp: float
    reached_target: bool
    facts: dict[str, Any]  # its length and where it comes from, as the sidecar states them


def bars_midi(midi: pretty_midi.PrettyMIDI, form: Form, segments: Sequence[Segment], *,
              loop: bool = False) -> pretty_midi.PrettyMIDI:
    """The notes of `segments` (first bar, bars) laid end to end from time 0, at the track's tempo and
    meter: a note that starts in a segment moves with it and is released at the segment's end at the
    latest; a note sounding across a segment's first bar line starts again on it. Notes only (our
    MIDI files hold no controllers or bends).

    `loop` (one segment, played end to start): a note held across the segment's last bar line whose
    pitch the same instrument also holds across its first one is held on past the end for as long as
    that other note sounds in the segment, and the other note is left out. Folded into the start
    (fold_tail), it sustains there as it does in the track, instead of being released at the end
    (a burst of release transients at the join) and struck again at the start."""
    bar_s, tol = form.bar_s, ONSET_TOLERANCE_S
    pm = pretty_midi.PrettyMIDI(resolution=midi.resolution, initial_tempo=form.bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*form.meter, 0.0))
    parts = [pretty_midi.Instrument(program=i.program, is_drum=i.is_drum, name=i.name) for i in midi.instruments]
    at_bar = 0
    for first, bars in segments:
        lo, hi, shift = first * bar_s, (first + bars) * bar_s, (at_bar - first) * bar_s
        for source, part in zip(midi.instruments, parts):
            inside = [n for n in source.notes if n.start < hi - tol and n.end > lo + tol]
            spans = {id(n): (max(n.start, lo), min(n.end, hi)) for n in inside}
            if loop:
                into = {n.pitch: n for n in inside if n.start < lo - tol and n.end < hi - tol}
                for n in inside:
                    twin = into.get(n.pitch) if n.start > lo + tol and n.end > hi + tol else None
                    if twin is not None:
                        spans[id(n)] = (n.start, hi + twin.end - lo)
                        spans.pop(id(twin), None)
            part.notes += [pretty_midi.Note(n.velocity, n.pitch, spans[id(n)][0] + shift, spans[id(n)][1] + shift)
                           for n in inside if id(n) in spans]
        at_bar += bars
    pm.instruments = [part for part in parts if part.notes]
    return pm


def fold_tail(audio: np.ndarray, frames: int) -> np.ndarray:
    """(N, 2) -> (frames, 2): whatever rings past `frames` added onto the start (wrapping again while
    the tail is longer than the loop), so the loop played end to start goes on as it would."""
    loop = fit_length(audio, frames).astype(np.float32, copy=True)
    for start in range(frames, audio.shape[0], frames):
        chunk = audio[start:start + frames]
        loop[:len(chunk)] += chunk
    return loop


def with_ring_out(audio: np.ndarray, music_frames: int, sample_rate: int, ring_out_s: float) -> np.ndarray:
    """The music's frames (padded with silence if the render ended early) and at most `ring_out_s`
    of what rings after them; a ring cut short ends with an END_FADE_S fade."""
    total = max(music_frames, min(audio.shape[0], music_frames + round(ring_out_s * sample_rate)))
    out = fit_length(audio, total).astype(np.float32, copy=True)
    if audio.shape[0] > total and total > music_frames:
        n = min(total - music_frames, max(1, round(END_FADE_S * sample_rate)))
        out[total - n:] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n)))[:, None].astype(np.float32)
    return out


def master_edit(audio: np.ndarray, sample_rate: int, settings: EditSettings, *, fade_s: float = 0.0,
                circular: bool = False) -> tuple[np.ndarray, float, float, bool]:
    """(mastered (N, 2), integrated LUFS, true peak dBTP, reached the target) of one edit, mastered
    like a track (audio/master.py). `circular`: a loop is mastered as three copies end to end and the
    middle one kept, so the limiter's gain at its end leads into its start as in a repeat."""
    from generator.audio.master import LOUDNESS_TOLERANCE_LU, MasterSettings, integrated_lufs, master, true_peak_dbtp
    from generator.audio.render import Rendered

    ms = MasterSettings(target_lufs=settings.target_lufs, ceiling_dbtp=settings.ceiling_dbtp, fade_out_s=fade_s)
    if not circular:
        done = master(Rendered(audio, {}, sample_rate), ms)
        return done.mix, done.integrated_lufs, done.true_peak_dbtp, done.reached_target
    n = audio.shape[0]
    out = master(Rendered(np.concatenate([audio] * 3), {}, sample_rate), ms).mix[n:2 * n]
    lufs = integrated_lufs(out, sample_rate)
    peak = true_peak_dbtp(np.concatenate([out, out]), sample_rate)  # across the join too
    return out, lufs, peak, bool(lufs >= settings.target_lufs - LOUDNESS_TOLERANCE_LU)


LoopTake = tuple[float, Segment, np.ndarray, int]  # roughness, segment, folded loop, frames rung past its end


@dataclass(frozen=True)
class JoinReference:
    """The whole track's 99th percentiles (joins.track_p99: its sample steps, its spectral change at
    its beats) and loudness: what issue 12 holds a loop's join to, besides the loop's own music."""

    step_p99: float
    flux_p99: float
    lufs: float


def track_reference(track: np.ndarray, form: Form, sample_rate: int,
                    lufs: float | None = None) -> JoinReference | None:
    """The JoinReference of a mastered track (N, 2) of `form`'s bars (`lufs`: its loudness when the master
    measured it already); None when it is silent."""
    from generator.audio.master import integrated_lufs

    lufs = integrated_lufs(track, sample_rate) if lufs is None else lufs
    if not np.isfinite(lufs):
        return None
    p99 = track_p99(track, beat_marks(form, form.bars, sample_rate))
    return JoinReference(p99["step_p99"], p99["flux_p99"], lufs)


def make_loop(midi: pretty_midi.PrettyMIDI, form: Form, render: Render, sample_rate: int,
              settings: EditSettings, bars: int | None = None, track: JoinReference | None = None) -> Edit | None:
    """The loop, exactly form.frames(bars) long, its tail folded into its start: of the places it may
    start (edit_plan.loop_candidates: the main section and its later statements), the one whose join,
    played end to start, stands out least (join_roughness: against the loop's own music and, given the
    track's JoinReference, the track's). Without `bars` asked for, when no such loop's join passes (a
    roughness over 1), the halves of those places (MIN_HALF_LOOP_BARS or more) are tried too, and a
    half whose join passes is kept.
    None when the track has no bar to loop."""
    candidates = loop_candidates(form, bars)
    if not candidates:
        return None
    best = min(_loop_takes(midi, form, render, sample_rate, candidates, track), key=lambda t: t[0])  # first of equals
    tried = list(candidates)
    size = candidates[0][1]
    if best[0] > 1.0 and bars is None and size >= 2 * MIN_HALF_LOOP_BARS:
        half = size // 2
        halves = [(start + k * half, half) for start, _ in candidates for k in (0, 1)]
        tried += halves
        passing = [t for t in _loop_takes(midi, form, render, sample_rate, halves, track) if t[0] <= 1.0]
        if passing:
            best = min(passing, key=lambda t: t[0])
    _, segment, folded, tail = best
    frames, marks = folded.shape[0], beat_marks(form, segment[1], sample_rate)
    audio, lufs, peak, reached = master_edit(folded, sample_rate, settings, circular=True)
    facts = {"bars": segment[1], "start_bar": segment[0], "frames": frames, "sample_rate": sample_rate,
             "duration_s": frames / sample_rate, "bar_s": form.bar_s, "tail_folded_s": max(0, tail) / sample_rate,
             "segments_tried": [list(t) for t in tried],
             **_rounded_ratios(join_ratios(audio, marks, sample_rate, track)),
             "length_rule": "bars x quarter notes per bar x 60 / bpm x sample_rate, rounded once (half up)"}
    return Edit(audio, sample_rate, lufs, peak, reached, facts)


def _loop_takes(midi: pretty_midi.PrettyMIDI, form: Form, render: Render, sample_rate: int,
                segments: Sequence[Segment], track: JoinReference | None) -> list[LoopTake]:
    """(roughness, segment, folded loop, frames rung past its end) of each segment, rendered alone."""
    takes = []
    for segment in segments:
        frames = form.frames(segment[1], sample_rate)
        rendered = to_stereo(render(bars_midi(midi, form, [segment], loop=True), sample_rate))
        folded = fold_tail(rendered, frames)
        roughness = join_roughness(folded, beat_marks(form, segment[1], sample_rate), sample_rate, track)
        takes.append((roughness, segment, folded, rendered.shape[0] - frames))
    return takes


def join_roughness(loop: np.ndarray, marks: tuple[int, ...], sample_rate: int,
                   track: JoinReference | None = None) -> float:
    """How far the loop's join, played 4 times, stands out: the larger of join_ratios. At most 1: the
    join is as smooth as the music."""
    own, in_track = join_ratios(loop, marks, sample_rate, track)
    return own if in_track is None else max(own, in_track)


def join_ratios(loop: np.ndarray, marks: tuple[int, ...], sample_rate: int,
                track: JoinReference | None = None) -> tuple[float, float | None]:
    """(own, in track): the larger of the join's sample step and spectral change over their 99th
    percentiles in the loop's own music (elsewhere; at its beats: audio/joins.py) and, given `track`,
    in the whole track's, the loop brought to the track's loudness first (both are mastered to the
    same target); None without `track`."""
    from generator.audio.master import integrated_lufs

    m = join_measures(loop, marks=marks)
    own = max(_ratio(m["join_step"], m["step_p99"]), _ratio(m["join_flux"], m["flux_p99"]))
    if track is None:
        return own, None
    lufs = integrated_lufs(loop, sample_rate)
    gain = 10 ** ((track.lufs - lufs) / 20) if np.isfinite(lufs) else 1.0
    return own, max(_ratio(m["join_step"] * gain, track.step_p99), _ratio(m["join_flux"] * gain, track.flux_p99))


def _rounded_ratios(ratios: tuple[float, float | None]) -> dict[str, float | None]:
    """The sidecar's join_roughness (own) and join_roughness_in_track of a delivered loop."""
    own, in_track = ratios
    return {"join_roughness": round(own, 3),
            "join_roughness_in_track": None if in_track is None else round(in_track, 3)}


def _ratio(value: float, p99: float) -> float:
    if p99 > 0:
        return value / p99
    return 0.0 if value == 0 else float("inf")


def make_cutdown(midi: pretty_midi.PrettyMIDI, form: Form, nominal_s: float, render: Render, sample_rate: int,
                 settings: EditSettings) -> Edit | None:
    """A cut-down of the whole number of bars nearest `nominal_s` (edit_plan.cutdown_segments) and its
    ring-out; None when the track is not longer than that."""
    segments = cutdown_segments(form, nominal_s)
    if segments is None:
        return None
    bars = sum(n for _, n in segments)
    music = form.frames(bars, sample_rate)
    rendered = to_stereo(render(bars_midi(midi, form, segments), sample_rate))
    cut = with_ring_out(rendered, music, sample_rate, settings.ring_out_s)
    audio, lufs, peak, reached = master_edit(cut, sample_rate, settings, fade_s=settings.ending_fade_s)
    facts = {"nominal_s": float(nominal_s), "bars": bars, "segments": [list(s) for s in segments],
             "bar_s": form.bar_s, "music_s": music / sample_rate, "ring_out_s": (cut.shape[0] - music) / sample_rate,
             "frames": cut.shape[0], "duration_s": cut.shape[0] / sample_rate,
             "length_rule": "the whole number of bars nearest nominal_s, then the ring-out after the last bar line"}
    return Edit(audio, sample_rate, lufs, peak, reached, facts)


def faded_cutdown(mix: np.ndarray, sample_rate: int, nominal_s: float, settings: EditSettings, *,
                  fade_s: float, search_s: float) -> Edit | None:
    """A track without bars: its first `nominal_s` seconds faded out (dsp.cutdown), mastered on their
    own; None when the track is shorter."""
    frames = round(nominal_s * sample_rate)
    if frames > mix.shape[0]:
        return None
    cut = cutdown(mix, sample_rate, nominal_s, fade_s, search_s)
    audio, lufs, peak, reached = master_edit(cut, sample_rate, settings)
    facts = {"nominal_s": float(nominal_s), "bars": None, "frames": frames, "duration_s": frames / sample_rate,
             "length_rule": "exactly nominal_s, faded out: the track has no bars (default encoding)"}
    return Edit(audio, sample_rate, lufs, peak, reached, facts)
