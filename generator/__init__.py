"""gen: batch generator of royalty-free music libraries."""

__version__ = "0.1.0"
