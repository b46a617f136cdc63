"""Time two whole commands side by side, A B A B ..., and the ratio A/B pair by pair.

    python bench/paired_runs.py -n 3 --a "python bench/bench_shipped_sampling.py --genre pop" \
        --b "sh -c 'cd /tmp/before && exec python bench/bench_shipped_sampling.py --genre pop'"

Each run is one child process (its start-up included); wall seconds are a monotonic clock around
it, CPU seconds (user + system) and peak memory (the largest resident set) are the kernel's own
accounting of the reaped child (os.wait4). Pairing keeps the ratio meaningful when a shared
machine's speed drifts between runs. Prints every run, then each figure's median and range of
the pair ratios; `--json` writes them too. What each command prints goes to `--log` (default: discarded).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_once(command: list[str], log) -> dict[str, float]:
    """One run of `command`: wall and CPU seconds, peak resident memory in MiB, exit status."""
    start = time.monotonic()
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    rss_kib = usage.ru_maxrss  # Linux: KiB
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mib": rss_kib / 1024,
            "exit": child.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="command A, split as a shell splits words")
    parser.add_argument("--b", required=True, help="command B (the baseline)")
    parser.add_argument("-n", type=int, default=3, help="pairs to run (default 3)")
    parser.add_argument("--warmup", type=int, default=0, help="uncounted runs of each first (default 0)")
    parser.add_argument("--log", default=None,
                        help="append what A and B print to LOG-A.txt and LOG-B.txt (default: discarded)")
    parser.add_argument("--json", type=Path, default=None, help="write the runs and medians here")
    args = parser.parse_args()
    commands = {"A": shlex.split(args.a), "B": shlex.split(args.b)}
    logs = {name: open(f"{args.log}-{name}.txt", "ab") if args.log else subprocess.DEVNULL  # noqa: SIM115
            for name in commands}  # closed at exit
    for _ in range(args.warmup):
        for name, command in commands.items():
            run_once(command, logs[name])
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    for pair in range(args.n):
        for name, command in commands.items():
            result = run_once(command, logs[name])
            runs[name].append(result)
            print(f"pair {pair + 1} {name}: wall {result['wall_s']:.2f} s, cpu {result['cpu_s']:.2f} s, "
                  f"peak {result['peak_mib']:.0f} MiB, exit {result['exit']}", flush=True)
    summary = {}
    for figure in ("wall_s", "cpu_s", "peak_mib"):
        ratios = [a[figure] / b[figure] for a, b in zip(runs["A"], runs["B"]) if b[figure] > 0]
        summary[figure] = {"A_median": statistics.median(r[figure] for r in runs["A"]),
                           "B_median": statistics.median(r[figure] for r in runs["B"]),
                           "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
                           "ratio_max": max(ratios)}
        s = summary[figure]
        print(f"{figure}: A {s['A_median']:.2f}, B {s['B_median']:.2f}, A/B {s['ratio_median']:.3f} "
              f"({s['ratio_min']:.3f}-{s['ratio_max']:.3f}) over {len(ratios)} pairs")
    if args.json:
        args.json.write_text(json.dumps({"a": args.a, "b": args.b, "runs": runs, "summary": summary}, indent=1))
    if any(r["exit"] for rs in runs.values() for r in rs):
        sys.exit("a run exited non-zero: see --log")


if __name__ == "__main__":
    main()
