"""gap-replay: rebuild and refresh the GAP-Replay medical pretraining corpus."""

__version__ = "0.1.0"
