"""Command modules, one per area. Each exposes `register(app, data_app, model_app)`; `_name`
modules are helpers the commands share."""

from __future__ import annotations

import importlib
import pkgutil

import typer


def register_all(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # helpers shared by commands, not commands
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(app, data_app, model_app)
