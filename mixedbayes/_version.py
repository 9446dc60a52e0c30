"""The version of mixedbayes (a leaf module: it imports nothing)."""

__version__ = "0.1.0"
