"""Piano rolls of library tracks, to look at: one row per track, pitched notes as bars coloured by
instrument, drum hits as ticks below them (one row per drum sound), bar lines in grey.

    python bench/piano_rolls.py LIBRARY:1,5 [OTHER_LIBRARY:1,5 ...] --seconds 20 --out docs/img/piano-rolls.png

Tracks are numbered as in the library's manifest (1-based plan order); rows follow the order given.
The tempo and bar lines are read from each MIDI file (`gen batch` writes one tempo and its time signatures).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pretty_midi  # noqa: E402


def track_midis(spec: str) -> list[tuple[str, Path]]:
    """LIBRARY:N,M -> (title, MIDI path) of tracks N and M of the library."""
    folder, _, numbers = spec.rpartition(":")
    library = Path(folder)
    manifest = json.loads((library / "manifest.json").read_text(encoding="utf-8"))
    records = sorted(manifest["tracks"].values(), key=lambda r: r["index"])
    picked = []
    for number in numbers.split(","):
        record = records[int(number) - 1]
        (midi,) = (library / record["folder"]).glob("*.mid")
        picked.append((f"{library.name}: {record['title']} ({record['genre']})", midi))
    return picked


def draw(ax, title: str, midi_path: Path, seconds: float) -> None:
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    pitched = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes if n.start < seconds]
    low = min((n.pitch for n in pitched), default=48) - 2
    kit = sorted({n.pitch for inst in pm.instruments if inst.is_drum for n in inst.notes if n.start < seconds})
    lanes = {pitch: low - 2 * (len(kit) - i) for i, pitch in enumerate(kit)}  # one row per drum, under the notes
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, inst in enumerate(pm.instruments):
        notes = [n for n in inst.notes if n.start < seconds]
        if inst.is_drum:
            for n in notes:
                ax.plot([n.start, n.start], [lanes[n.pitch], lanes[n.pitch] + 1.6], color="black", linewidth=0.8)
            continue
        colour = colours[i % len(colours)]
        for n in notes:
            ax.add_patch(plt.Rectangle((n.start, n.pitch), min(n.end, seconds) - n.start, 0.8, color=colour,
                                       alpha=0.8, label=inst.name))
    for bar in pm.get_downbeats():
        if bar < seconds:
            ax.axvline(bar, color="0.8", linewidth=0.6, zorder=0)
    tempo = pm.get_tempo_changes()[1]
    ax.set_title(f"{title}, {tempo[0]:.0f} bpm" if len(tempo) else title, fontsize=9, loc="left")
    ax.set_xlim(0, seconds)
    ax.set_ylim(low - 2 * len(kit) - 1, max((n.pitch for n in pitched), default=72) + 2)
    handles = {p.get_label(): p for p in ax.patches}
    ax.legend(handles.values(), handles.keys(), fontsize=7, loc="upper right")
    ax.set_yticks([])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracks", nargs="+", help="LIBRARY:N,M,... (1-based track numbers)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    picked = [track for spec in args.tracks for track in track_midis(spec)]
    fig, axes = plt.subplots(len(picked), 1, figsize=(14, 2.6 * len(picked)), squeeze=False)
    for ax, (title, midi) in zip(axes[:, 0], picked):
        draw(ax, title, midi, args.seconds)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(args.out)


if __name__ == "__main__":
    main()
