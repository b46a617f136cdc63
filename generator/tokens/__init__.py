"""Tokens: the vocabulary, the encodings and MIDI <-> token ids. No torch."""
