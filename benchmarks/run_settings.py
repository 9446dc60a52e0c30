"""What ``run.py`` and its tables share: the run settings, the systems and the result rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Result = dict[str, Any]

R_MISSING = "R not installed (apt-get install r-cran-brms r-cran-lme4)"
PACKAGES = ("mixedbayes", "pymc", "pytensor", "nutpie", "numba", "bambi", "arviz", "numpy")
PYTHON_SYSTEMS = ("mixedbayes", "bambi")
R_SYSTEMS = ("lme4", "brms")
#: mb.fit keeps the pointwise log-likelihood; above this share of RAM it is left out (auto).


@dataclass(frozen=True)
class Settings:
    """What every run of this invocation uses."""

    draws: int
    tune: int
    chains: int
    cores: int
    seed: int
    target_accept: float
    timeout: float
    with_peers_large: bool
    systems: tuple[str, ...]
    #: "cold": every run starts with empty PyTensor and numba caches (a first fit on a fresh
    #: machine); "warm": each variant runs once untimed to fill a cache of its own, then the
    #: timed run reads it (what a user sees from the second session on).
    cache: str = "cold"
    #: Only these variant keys (all when empty).
    variants: tuple[str, ...] = ()

    def cache_phrase(self) -> str:
        """How the caches stood during the timed runs, for the tables."""
        if self.cache == "warm":
            return (
                "warm caches: each Python variant ran once untimed to fill PyTensor's and "
                "numba's on-disk caches of its own, then the timed run started a fresh process "
                "reading them"
            )
        return "cold caches: every run in a fresh process with empty PyTensor and numba caches"
