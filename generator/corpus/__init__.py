"""Training corpus: sources, preparation, shards and the data report."""
