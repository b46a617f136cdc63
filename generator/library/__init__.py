"""A library build: recipe, plan, pipeline, manifest and lock, export, sidecars, catalogue."""
