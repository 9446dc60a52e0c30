"""NumPyro's NUTS kernel, driven as one compiled JAX program per model structure.

``pm.sample(nuts_sampler="numpyro")`` compiles several hundred small XLA programs on the
way (jittered starts, NumPyro's initialisation run op by op, post-processing) and a fresh
numba function for the log-likelihood; each costs more than sampling a small model. Here
the whole run of a chain — its initialisation, warm-up, draws, the traced variables and
the sampler statistics — is one ``jit``, with the data as arguments, and the chains run it
in threads, one per core (vectorising the chains with ``vmap`` made tracing five times and
XLA's compile 40 % slower, and ran every chain on one core):

* in a process, a model of the same structure reuses the compiled program (new data in);
* across processes, the traced program is stored with :mod:`jax.export` and its executable
  in JAX's persistent compilation cache (:mod:`mixedbayes.inference.artifacts`): a later
  session skips tracing and compiling.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes._system import usable_cpus
from mixedbayes.inference.artifacts import (
    configure_jax_cache,
    load_exported,
    save_exported,
)
from mixedbayes.inference.init import Start, chain_starts, start_vector
from mixedbayes.inference.jax_graph import JaxModel, data_names, jax_model
from mixedbayes.inference.reuse import COMPILE_CACHE, pack_data, structure_key
from mixedbayes.inference.trees import data_groups

if TYPE_CHECKING:
    import pymc as pm
    import xarray as xr

__all__ = ["MAX_TREE_DEPTH", "run_jax_nuts"]

#: NUTS's largest tree depth (2**10 - 1 leapfrog steps), as nutpie's and Stan's default.
MAX_TREE_DEPTH = 10

#: Fresh jittered starts tried when a chain's start has a non-finite log-density.
START_RETRIES = 5


def _program(jm: JaxModel, tune: int, draws: int, target_accept: float) -> Any:
    """The jitted function ``(key, x0, *data) -> (start potential, values, stats)`` of one
    chain."""
    import jax
    from numpyro.infer.hmc import hmc

    fn = jm.fn
    potential = jax.jit(lambda z, *data: -fn(z, *data)[0])
    expand = jax.jit(lambda z, *data: tuple(fn(z, *data)[1:]))

    def one_chain(key: Any, x0: Any, *data: Any) -> Any:
        init_kernel, sample_kernel = hmc(potential_fn=lambda z: potential(z, *data), algo="NUTS")
        state = init_kernel(
            x0,
            num_warmup=tune,
            target_accept_prob=target_accept,
            max_tree_depth=MAX_TREE_DEPTH,
            rng_key=key,
        )
        start = state.potential_energy
        state = jax.lax.fori_loop(0, tune, lambda _, s: sample_kernel(s), state)

        def step(s: Any, _: Any) -> Any:
            s = sample_kernel(s)
            stats = (
                s.diverging,
                s.num_steps,
                s.accept_prob,
                s.energy,
                -s.potential_energy,
                s.adapt_state.step_size,
            )
            return s, (expand(s.z, *data), stats)

        _, (values, stats) = jax.lax.scan(step, state, None, length=draws)
        return start, values, stats

    return jax.jit(one_chain)


def _compiled(model: pm.Model, tune: int, draws: int, target_accept: float) -> Any:
    """The compiled program of ``model`` and its data arguments: from this process's cache,
    from disk, or traced and compiled now (then stored)."""
    import jax

    configure_jax_cache()
    key, data = structure_key(model)
    full = f"jax-nuts|{key}|{tune}|{draws}|{target_accept!r}|{MAX_TREE_DEPTH}"
    cached = COMPILE_CACHE.get(full)
    if cached is not None:
        run, packing, jm = cached
        packed = packing.pack(data)
        return run, jm, tuple(packed[name] for name in jm.data_names)
    packed_model, packing = pack_data(model, data)
    packed = packing.pack(data)
    stored = load_exported(full)
    if stored is not None:
        exported, meta = stored
        names = tuple(meta["data"])
    else:
        exported, names = None, data_names(packed_model)
    jm = jax_model(packed_model, names, tuple(packed[n] for n in names))
    if stored is not None and (
        [list(x) for x in meta["layout"]] != [[n, list(s)] for n, s in jm.layout]
        or list(meta["names"]) != list(jm.names)
    ):
        exported = None  # a hash collision or a changed layout: trace again
    x_spec = jax.ShapeDtypeStruct((jm.n_dim,), np.float64)
    key_spec = jax.ShapeDtypeStruct((2,), np.uint32)
    specs = [jax.ShapeDtypeStruct(d.shape, d.dtype) for d in jm.data]
    if exported is None:
        from jax import export

        exported = export.export(_program(jm, tune, draws, target_accept))(key_spec, x_spec, *specs)
        meta = {
            "data": list(jm.data_names),
            "layout": [[n, list(s)] for n, s in jm.layout],
            "names": list(jm.names),
        }
        save_exported(full, exported, meta)
    run = jax.jit(exported.call).lower(key_spec, x_spec, *specs).compile()
    COMPILE_CACHE.put(full, (run, packing, jm))
    return run, jm, jm.data


def _run_chains(run: Any, keys: np.ndarray, x0: np.ndarray, data: Any) -> Any:
    """Every chain through the one-chain program, as many at once as there are cores (the
    compiled program releases the GIL while it runs); outputs stacked along a chain axis."""
    from concurrent.futures import ThreadPoolExecutor

    import jax

    def chain(c: int) -> Any:
        return jax.device_get(run(keys[c], x0[c], *data))

    workers = max(1, min(len(keys), usable_cpus()))
    with ThreadPoolExecutor(workers) as pool:
        outs = list(pool.map(chain, range(len(keys))))
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *outs)


def _keys(seed: int, chains: int) -> np.ndarray:
    """One raw threefry key per chain, from ``seed`` (no JAX operation needed)."""
    words = np.random.SeedSequence(seed).generate_state(2 * chains, dtype=np.uint32)
    return words.reshape(chains, 2)


def _starts(
    model: pm.Model, jm: JaxModel, data: Any, start: Start | None, seeds: list[int]
) -> np.ndarray:
    if start is None:
        return np.stack([jm.initial(s) for s in seeds])
    x, mask = start_vector(model, start, lambda: _logp_grad(jm, data))
    draw = chain_starts(x, mask, start.jitter)
    return np.stack([draw(s) for s in seeds])


def _logp_grad(jm: JaxModel, data: Any) -> Any:
    """The log-density and its gradient at a flat vector (for a point fit)."""
    import jax

    value_and_grad = jax.jit(jax.value_and_grad(lambda z, *d: jm.fn(z, *d)[0]))

    def value(x: np.ndarray) -> tuple[float, np.ndarray]:
        lp, grad = value_and_grad(np.asarray(x, dtype=np.float64), *data)
        return float(lp), np.asarray(grad, dtype=np.float64)

    return value


def run_jax_nuts(
    model: pm.Model,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float,
    start: Start | None = None,
) -> tuple[xr.DataTree, float, float]:
    """Sample ``model``; the posterior tree, compile seconds and sampling seconds."""
    from mixedbayes.errors import SpecError

    t0 = time.perf_counter()
    run, jm, data = _compiled(model, tune, draws, target_accept)
    t1 = time.perf_counter()
    rng = np.random.SeedSequence(seed)
    for attempt in range(START_RETRIES):
        seeds = [int(s.generate_state(1)[0]) for s in rng.spawn(chains)]
        x0 = _starts(model, jm, data, start, seeds)
        first, values, stats = _run_chains(run, _keys(seed + attempt, chains), x0, data)
        bad = ~np.isfinite(np.asarray(first))
        if not bad.any():
            break
    else:
        raise SpecError(
            f"no finite starting point for chain(s) {np.flatnonzero(bad).tolist()} after "
            f"{START_RETRIES} tries: the log-density is not finite near the priors' centres.",
            where="init",
            hint="give starting values with mb.fit(..., init={...}) or check the priors.",
        )
    t2 = time.perf_counter()
    tree = _tree(model, jm, values, stats, t2 - t1, tune)
    return tree, t1 - t0, t2 - t1


STAT_NAMES = ("diverging", "n_steps", "mean_tree_accept", "energy", "lp", "step_size")


def _tree(
    model: pm.Model, jm: JaxModel, values: Any, stats: Any, seconds: float, tune: int
) -> xr.DataTree:
    import xarray as xr

    coords = {k: list(v) for k, v in model.coords.items() if v is not None}
    dims_of = model.named_vars_to_dims
    post: dict[str, Any] = {}
    used: dict[str, Any] = {}
    for name, value in zip(jm.names, values, strict=True):
        arr = np.asarray(value)
        dims = list(dims_of.get(name) or ())
        dims = [
            d if d is not None and d in coords and len(coords[d]) == arr.shape[2 + i] else None
            for i, d in enumerate(dims)
        ] + [None] * (arr.ndim - 2 - len(dims))
        named = [d if d is not None else f"{name}_dim_{i}" for i, d in enumerate(dims)]
        post[name] = (("chain", "draw", *named), arr)
        used.update({d: coords[d] for d in named if d in coords})
    base = {"chain": np.arange(np.asarray(values[0]).shape[0] if values else 0)}
    n_draws = np.asarray(stats[0]).shape[1]
    base["draw"] = np.arange(n_draws)
    posterior = xr.Dataset(post, coords={**base, **used})
    posterior.attrs.update(
        {"sampling_time": seconds, "tuning_steps": tune, "inference_library": "numpyro"}
    )
    diverging, n_steps, accept, energy, lp, step = (np.asarray(s) for s in stats)
    depth = np.ceil(np.log2(n_steps.astype(float) + 1.0)).astype(np.int64)
    sample_stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), diverging.astype(bool)),
            "n_steps": (("chain", "draw"), n_steps.astype(np.int64)),
            "depth": (("chain", "draw"), depth),
            "maxdepth_reached": (("chain", "draw"), depth >= MAX_TREE_DEPTH),
            "mean_tree_accept": (("chain", "draw"), accept.astype(float)),
            "energy": (("chain", "draw"), energy.astype(float)),
            "lp": (("chain", "draw"), lp.astype(float)),
            "step_size": (("chain", "draw"), step.astype(float)),
        },
        coords=base,
    )
    tree = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": sample_stats})
    return data_groups(tree, model)
