"""Sampler backends: a registry of objects (nutpie by default, pymc, numpyro)."""

from mixedbayes.inference.samplers import (
    SAMPLER_NAMES,
    SAMPLERS,
    Sampler,
    get_sampler,
    register_sampler,
)

__all__ = ["SAMPLERS", "SAMPLER_NAMES", "Sampler", "get_sampler", "register_sampler"]
