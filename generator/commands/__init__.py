"""Command modules, one per area. Each exposes `register(app, data_app, model_app)`."""

from __future__ import annotations

import importlib
import pkgutil

import typer


def register_all(app: typer.Typer, data_app: typer.Typer, model_app: typer.Typer) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(app, data_app, model_app)
