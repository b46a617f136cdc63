"""Sampling: the generation loop, logit filters, row state, rejection and loop detectors."""
