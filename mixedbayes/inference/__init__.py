"""Sampler backends: a registry of objects (nutpie by default, pymc, numpyro)."""

from mixedbayes.inference.samplers import (
    COMPILE_CACHE,
    SAMPLER_NAMES,
    SAMPLERS,
    Sampler,
    get_sampler,
    log_likelihood,
    register_sampler,
)

__all__ = [
    "COMPILE_CACHE",
    "SAMPLERS",
    "SAMPLER_NAMES",
    "Sampler",
    "get_sampler",
    "log_likelihood",
    "register_sampler",
]
