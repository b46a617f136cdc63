"""The model card facts of a checkpoint, read from the file itself, and their text form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABEL_WIDTH = 21


def card_facts(path: Path) -> dict[str, Any]:
    """The model card facts of a checkpoint, read from the file itself."""
    from generator.model.checkpoint import load_checkpoint

    model, meta = load_checkpoint(path)
    c = model.config
    return {
        "checkpoint": str(path),
        "architecture": c.describe(),
        "config": {k: getattr(c, k) for k in c.__dataclass_fields__},
        "parameters": model.n_params(),
        "vocab": meta.get("vocab"),
        "steps": meta.get("steps"),
        "finished": meta.get("finished"),
        "tokens_seen": meta.get("tokens_seen"),
        "steps_total": meta.get("steps_total", meta.get("steps")),
        "tokens_seen_total": meta.get("tokens_seen_total", meta.get("tokens_seen")),
        "init": meta.get("init"),
        "data_sha256": (meta.get("data") or {}).get("sha256"),
        "data": meta.get("data"),
        "valid_nll": meta.get("valid_nll") or ((meta.get("history") or [{}])[-1].get("valid_nll")),
        "test_nll": meta.get("test_nll"),
        "hardware": meta.get("hardware"),
        "wall_time_s": meta.get("wall_time_s"),
        "command": meta.get("command"),
        "options": meta.get("options"),
        "source": meta.get("source"),
    }


def card_lines(facts: dict[str, Any]) -> list[str]:
    """`label:   value` lines of the facts, in model card order; '-' where a fact is unknown."""
    data = facts["data"] or {}
    rows = [
        ("checkpoint", facts["checkpoint"]), ("architecture", facts["architecture"]),
        ("parameters", facts["parameters"]), ("vocabulary", facts["vocab"]),
        ("steps", facts["steps"]), ("tokens seen", facts["tokens_seen"]),
        *((("warm start from", _parent(facts["init"])), ("steps, all runs", facts["steps_total"]),
           ("tokens seen, all runs", facts["tokens_seen_total"])) if facts["init"] else ()),
        ("training data", f"{_value(data.get('train_pieces'))} pieces, {_value(data.get('train_tokens'))} tokens"
         if data else None),
        ("excluded licences", (", ".join(data.get("excluded_licences", [])) or "none") if data else None),
        ("excluded sources", (", ".join(data.get("excluded_sources", [])) or "none") if data else None),
        ("data sha256", facts["data_sha256"]),
        ("held-out NLL (test)", facts["test_nll"]), ("valid NLL", facts["valid_nll"]),
        ("hardware", facts["hardware"]), ("wall time (s)", facts["wall_time_s"]),
        ("command", facts["command"]),
    ]
    if facts["source"]:
        rows.append(("source", facts["source"]))
    return [f"{name + ':':<{LABEL_WIDTH}}{_value(value)}" for name, value in rows]


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _parent(init: dict[str, Any]) -> str:
    """One line for a warm start's parent: its file, hash, steps and command."""
    return (f"{init.get('checkpoint')} (sha256 {str(init.get('sha256'))[:12]}, {_value(init.get('steps'))} steps, "
            f"data {str(init.get('data_sha256'))[:12]}): {init.get('command') or '-'}")
