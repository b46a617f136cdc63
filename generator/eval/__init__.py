"""Quality evaluation: features of real and generated music, metrics, reports."""
