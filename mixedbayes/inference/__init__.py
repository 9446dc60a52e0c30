"""Sampler backends: a registry of objects (nutpie by default, pymc, numpyro)."""

from mixedbayes.inference.samplers import (
    COMPILE_CACHE,
    SAMPLERS,
    Sampler,
    get_sampler,
    log_likelihood,
    register_sampler,
    sampler_names,
)

__all__ = [
    "COMPILE_CACHE",
    "SAMPLERS",
    "Sampler",
    "get_sampler",
    "log_likelihood",
    "register_sampler",
    "sampler_names",
]
