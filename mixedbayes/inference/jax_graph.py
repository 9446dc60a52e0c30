"""A PyMC model as one JAX function of the flat sampler-scale vector and the model's data.

:func:`jax_model` turns the log-density and every traced variable (free variables on their
own scales, deterministics) of a ``pm.Model`` into ``fn(x, *data) -> (logp, *values)``. The
data containers (packed by :func:`~mixedbayes.inference.reuse.pack_data`) are arguments, not
constants, so one compiled program serves every data set of the same structure.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from mixedbayes._system import python_ops

__all__ = ["JaxModel", "jax_model"]


@dataclass(frozen=True)
class JaxModel:
    """A model's JAX function and how to read its inputs and outputs.

    Attributes
    ----------
    build : callable
        Builds ``fn(x, *data) -> (logp, *values)`` (``x`` the flat vector on the sampler's
        scale), the :attr:`fn` property, on first use: a program loaded from disk needs none.
    data : tuple of ndarray
        The current values of the data arguments, in order.
    data_names : tuple of str
        Their names (the packed containers').
    layout : tuple of (name, shape)
        The value variables in ``x``, in order (nutpie's and :mod:`init`'s order).
    names : tuple of str
        The traced variables of ``values``, in order.
    initial : callable
        ``initial(seed) -> x``: PyMC's start for one chain (the priors' centres, jittered ±1
        on the sampler's scale).
    """

    build: Callable[[], Callable[..., Any]]
    data: tuple[np.ndarray, ...]
    data_names: tuple[str, ...]
    layout: tuple[tuple[str, tuple[int, ...]], ...]
    names: tuple[str, ...]
    initial: Callable[[int], np.ndarray]

    @cached_property
    def fn(self) -> Callable[..., Any]:
        """The model's JAX function (PyTensor's graph rewritten and translated now)."""
        return self.build()

    @property
    def n_dim(self) -> int:
        """Length of the flat vector."""
        return int(sum(int(np.prod(shape)) for _, shape in self.layout))


def _initial(model: Any) -> tuple[Callable[[int], np.ndarray], list[tuple[str, tuple[int, ...]]]]:
    from pymc.initial_point import make_initial_point_fn

    with python_ops():
        point_fn = make_initial_point_fn(
            model=model, jitter_rvs=set(model.free_RVs), return_transformed=True
        )
        first = point_fn(0)
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    layout = [(name, tuple(np.shape(first[name]))) for name in names]

    def initial(seed: int) -> np.ndarray:
        with python_ops():
            point = point_fn(seed)
        parts = [np.asarray(point[n], dtype=np.float64).ravel() for n in names]
        return np.concatenate(parts) if parts else np.zeros(0)

    return initial, layout


def _outputs(model: Any) -> list[Any]:
    return [model.logp(), *model.replace_rvs_by_values([*model.free_RVs, *model.deterministics])]


def data_names(model: Any) -> tuple[str, ...]:
    """The names of the data containers ``model``'s log-density and traced variables read,
    in the order of the JAX function's data arguments."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    shared = [v for v in graph_inputs(_outputs(model)) if isinstance(v, SharedVariable)]
    return tuple(str(v.name) for v in shared)


def jax_model(model: Any, names: tuple[str, ...], data: tuple[np.ndarray, ...]) -> JaxModel:
    """The :class:`JaxModel` of ``model`` (a ``pm.Model`` whose data containers are packed),
    its data arguments ``names`` (:func:`data_names`, or a stored program's) valued ``data``."""
    initial, layout = _initial(model)
    traced = tuple(v.name for v in (*model.free_RVs, *model.deterministics))
    return JaxModel(
        lambda: _translate(model, layout, names), data, names, tuple(layout), traced, initial
    )


def _translate(
    model: Any, layout: list[tuple[str, tuple[int, ...]]], names: tuple[str, ...]
) -> Callable[..., Any]:
    import pytensor.tensor as pt
    from pytensor.compile import mode as pt_mode
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph import FunctionGraph
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import graph_inputs
    from pytensor.link.jax.dispatch import jax_funcify

    flat = pt.dvector("mb_flat")
    replace: dict[Any, Any] = {}
    offset = 0
    for rv, (_, shape) in zip(model.free_RVs, layout, strict=True):
        value = model.rvs_to_values[rv]
        size = int(np.prod(shape))
        replace[value] = flat[offset : offset + size].reshape(shape).astype(value.dtype)
        offset += size
    outputs = _outputs(model)
    shared = {str(v.name): v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)}
    args = [
        pt.tensor(name=n, dtype=shared[n].type.dtype, shape=shared[n].type.shape) for n in names
    ]
    replace.update({shared[n]: a for n, a in zip(names, args, strict=True)})
    fgraph = FunctionGraph([flat, *args], clone_replace(outputs, replace=replace), clone=True)
    with warnings.catch_warnings():
        # parameter checks (sigma > 0) cannot stop a JAX program: the log-density is -inf
        # outside the support anyway, and the sampler's transforms keep it there
        warnings.filterwarnings("ignore", message="Skipping .* as JAX tracing would remove it")
        pt_mode.JAX.optimizer.rewrite(fgraph)
        return jax_funcify(fgraph)
