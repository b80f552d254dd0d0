"""twolayer: a reproducible companion to four papers on two-layer ReLU networks."""

__version__ = "0.1.0"
