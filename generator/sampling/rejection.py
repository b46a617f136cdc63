"""Sample, check with the loop detectors, resample rejected tracks with a fresh derived seed.

A take closed by the token cap is rejected as cut short, then the loop detectors judge the rest.
A rejected track is sampled again with `derive_seed(seed, attempt)`, at most `max_attempts`
times in all; then it is given up (never an endless loop). `compose_many` resamples all
rejected rows of a round together, in batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from generator.sampling.generate import GenerationRequest, GenerationResult, Progress, generate
from generator.sampling.loops import LoopLimits, detect
from generator.seeds import stable_seed
from generator.tokens.encoding import Encoding

log = logging.getLogger(__name__)

Detector = Callable[[Sequence[int], str, "LoopLimits | None", Encoding], "str | None"]
# finish(request index, take) -> the take made final (e.g. library/arrange.py's form), before the detectors judge it
Finish = Callable[[int, GenerationResult], GenerationResult]


@dataclass(frozen=True)
class ComposeResult:
    request: GenerationRequest  # the attempt that was kept (or the last one tried)
    result: GenerationResult | None  # None: given up after max_attempts rejections
    rejections: tuple[tuple[int, str], ...]  # (seed, reason) of every rejected attempt

    @property
    def accepted(self) -> bool:
        return self.result is not None


def derive_seed(seed: int, attempt: int) -> int:
    """Attempt 0 keeps the request's seed; later attempts get stable, unrelated 63-bit seeds."""
    if attempt == 0:
        return int(seed)
    return stable_seed(int(seed), "resample", attempt)


def cut_short(result: GenerationResult, request: GenerationRequest) -> str | None:
    """A rejection reason for a take closed by the token cap (generate's guard against a model that
    writes events without moving time): it stops short of its length, and a library track must last
    its target. A take cut short by the time budget is not judged here (no time is left to resample)."""
    if result.stop_reason != "token_cap":
        return None
    return (f"cut_short: closed by the token cap at {result.duration_s:.1f} of {request.duration_s:.1f} s "
            f"({result.tokens_generated} tokens)")


def compose(model: torch.nn.Module, request: GenerationRequest, *, limits: LoopLimits | None = None,
            max_attempts: int = 4, device: str = "cpu", time_budget_s: float | None = None,
            detector: Detector = detect) -> ComposeResult:
    """One track that passes the detectors, or a given-up result after `max_attempts` tries."""
    return compose_many(model, [request], limits=limits, max_attempts=max_attempts, device=device,
                        batch_size=1, time_budget_s=time_budget_s, detector=detector)[0]


def compose_many(model: torch.nn.Module, requests: Sequence[GenerationRequest], *,
                 limits: LoopLimits | None = None, max_attempts: int = 4, device: str = "cpu",
                 batch_size: int = 8, time_budget_s: float | None = None, detector: Detector = detect,
                 progress: Progress | None = None, finish: Finish | None = None) -> list[ComposeResult]:
    """compose for many requests: each round samples every still-rejected row in batches.

    `limits` None: each genre's calibrated limits. Once the time budget is spent nothing is
    resampled. `progress` gets (tracks settled, tracks in all). `finish` turns each take into the
    final piece first: the detectors judge, and the result holds, what it returns.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
    rejections: list[list[tuple[int, str]]] = [[] for _ in requests]
    settled: dict[int, ComposeResult] = {}
    pending = list(range(len(requests)))
    for attempt in range(max_attempts):
        if not pending:
            break
        tries = [replace(requests[i], seed=derive_seed(requests[i].seed, attempt)) for i in pending]
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        results = generate(model, tries, device=device, batch_size=batch_size, time_budget_s=left)
        still = []
        for i, attempt_request, result in zip(pending, tries, results):
            if finish is not None:
                result = finish(i, result)
            reason = cut_short(result, attempt_request) or detector(result.ids, attempt_request.genre, limits,
                                                                   model.encoding)
            if reason is None:
                settled[i] = ComposeResult(attempt_request, result, tuple(rejections[i]))
                continue
            log.info("track %d (seed %d) rejected: %s", i, attempt_request.seed, reason)
            rejections[i].append((attempt_request.seed, reason))
            out_of_time = result.stop_reason == "time_budget"
            if attempt == max_attempts - 1 or out_of_time:
                settled[i] = ComposeResult(attempt_request, None, tuple(rejections[i]))
            else:
                still.append(i)
        pending = still
        if progress is not None:
            progress(len(settled), len(requests))
    return [settled[i] for i in range(len(requests))]
