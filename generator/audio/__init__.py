"""Audio: FluidSynth rendering, SoundFonts, mastering, DSP and file codecs."""
