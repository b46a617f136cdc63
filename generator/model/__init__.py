"""The Music Transformer: relative attention, the model, checkpoints and training."""
