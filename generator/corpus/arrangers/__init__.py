"""Synthetic arrangers that turn chord charts and notation into training MIDI (corpus only)."""
