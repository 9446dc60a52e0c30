"""Compile reuse: a model refitted with new data of the same structure is not recompiled.

A model's *structure key* hashes its log-density and deterministics graph: every operation,
every constant's value (priors, centring constants) and, for each data container, its name,
dtype and shape, but not its values. Two models with the same key differ only in the
values of their data containers, so the compiled log-density of the first serves the
second once its data are swapped in (nutpie's ``with_data``).

Before compiling, :func:`pack_data` gathers the data containers into one vector per dtype:
nutpie's numba backend compiles one extraction routine per container the log-density reads
(about a third of a second each on the benchmark machine), so a marginalised LMM with 16
containers spent more time on them than on its graph. Packed, the containers cost one
routine per dtype, and their shapes become constants of the graph.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["COMPILE_CACHE", "CompileCache", "Packing", "pack_data", "structure_key"]

#: Name prefix of the packed containers (``<prefix><dtype>``).
PACK_PREFIX = "mb_packed_"


def structure_key(model: Any) -> tuple[str, dict[str, np.ndarray]]:
    """The structure key of a ``pm.Model`` and the values of its data containers."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import io_toposort

    outputs = [model.logp(), *model.deterministics, *model.free_RVs]
    inputs = [v for v in model.value_vars]
    h = hashlib.sha256()
    ids: dict[Any, int] = {}
    shared: dict[str, np.ndarray] = {}
    # A dim length held in a scalar container sizes the free RVs (a factor's levels): its
    # value, not only its shape, is structure (two models with 29 and 30 levels differ).
    dim_lengths = {id(v) for v in model.dim_lengths.values() if isinstance(v, SharedVariable)}

    def ident(var: Any) -> int:
        if var in ids:
            return ids[var]
        ids[var] = len(ids)
        if isinstance(var, SharedVariable):
            value = np.asarray(var.get_value())
            shared[str(var.name)] = value
            h.update(f"S|{var.name}|{value.dtype}|{value.shape}|".encode())
            if id(var) in dim_lengths:
                h.update(f"D|{value.tolist()}|".encode())
        elif isinstance(var, Constant):
            data = np.asarray(var.data)
            h.update(f"C|{data.dtype}|{data.shape}|".encode())
            if data.dtype == object:  # None, slices: their bytes are addresses, not values
                h.update(repr(var.data).encode())
            else:
                h.update(np.ascontiguousarray(data).tobytes())
        elif var.owner is None:
            h.update(f"I|{var.name}|{var.type}|".encode())
        return ids[var]

    for v in inputs:
        ident(v)
    for node in io_toposort(inputs, outputs):
        args = [ident(i) for i in node.inputs]
        h.update(f"A|{node.op}|{args}|".encode())
        for o in node.outputs:
            ids[o] = len(ids)
            h.update(f"O|{o.type}|".encode())
    h.update(f"N|{[ident(o) for o in outputs]}|{[v.name for v in model.free_RVs]}".encode())
    return h.hexdigest(), shared


class CompileCache:
    """The last few compiled models of this process, by structure key (least recently used
    dropped first)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any:
        """The compiled model of ``key``, or None."""
        if key not in self._items:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: str, compiled: Any) -> None:
        """Remember ``compiled`` under ``key``."""
        self._items[key] = compiled
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every compiled model."""
        self._items.clear()


#: The compiled models of this process (every sampler backend's), by structure key.
COMPILE_CACHE = CompileCache()


@dataclass(frozen=True)
class Packing:
    """Where each data container of a model sits in the packed vectors of :func:`pack_data`.

    ``slots`` holds ``(container name, packed vector name, offset, shape)``; ``sizes`` the
    length and dtype of each packed vector.
    """

    slots: tuple[tuple[str, str, int, tuple[int, ...]], ...]
    sizes: tuple[tuple[str, int, str], ...]

    def pack(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The packed vectors holding ``data`` (container name → value), as laid out here."""
        out = {name: np.empty(size, dtype=dtype) for name, size, dtype in self.sizes}
        for container, name, offset, shape in self.slots:
            value = np.asarray(data[container])
            if value.shape != shape:
                raise ValueError(
                    f"data container {container!r} has shape {value.shape}, "
                    f"the compiled model {shape}"
                )
            out[name][offset : offset + value.size] = value.ravel()
        return out


def pack_data(model: Any, names: Any) -> tuple[Any, Packing]:
    """A copy of ``model`` whose data containers called ``names`` (those its log-density and
    deterministics read: the keys of :func:`structure_key`'s values) are views into one vector
    per dtype.

    Dim lengths held in containers become constants (the structure key already fixes every
    container's shape). Returns the new model and the :class:`Packing` that maps new data
    of the same structure onto the packed vectors.
    """
    import pytensor
    import pytensor.tensor as pt
    from pymc.model.fgraph import fgraph_from_model, model_from_fgraph
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph import FunctionGraph
    from pytensor.graph.replace import clone_replace

    fg, memo = fgraph_from_model(model)
    containers = [
        v for v in model.named_vars.values() if isinstance(v, SharedVariable) and v.name in names
    ]
    by_dtype: dict[str, list[Any]] = {}
    for var in containers:
        by_dtype.setdefault(str(np.asarray(var.get_value()).dtype), []).append(var)
    replacements: dict[Any, Any] = {}
    slots: list[tuple[str, str, int, tuple[int, ...]]] = []
    sizes: list[tuple[str, int, str]] = []
    values: dict[str, np.ndarray] = {}
    for dtype, group in sorted(by_dtype.items()):
        name = f"{PACK_PREFIX}{dtype}"
        offset = 0
        for var in group:
            value = np.asarray(var.get_value())
            slots.append((str(var.name), name, offset, value.shape))
            values[str(var.name)] = value
            offset += value.size
        sizes.append((name, offset, dtype))
    packing = Packing(tuple(slots), tuple(sizes))
    packed = {
        name: pytensor.shared(value, name=name) for name, value in packing.pack(values).items()
    }
    for var, (_, name, offset, shape) in zip(
        [v for dtype in sorted(by_dtype) for v in by_dtype[dtype]], slots, strict=True
    ):
        size = int(np.prod(shape, dtype=int))
        flat = packed[name]
        view = flat[offset : offset + size].reshape(shape) if shape else flat[offset]
        replacements[memo[var].owner.inputs[0]] = var.type.filter_variable(view)
    for dim_length in model.dim_lengths.values():
        if isinstance(dim_length, SharedVariable):
            replacements[memo[dim_length]] = pt.constant(dim_length.get_value())
    if not replacements:
        return model, packing
    outs = clone_replace(fg.outputs, replace=replacements, rebuild_strict=False)
    new = FunctionGraph(outputs=outs, clone=False)
    new._coords = fg._coords  # type: ignore[attr-defined]
    new._dim_lengths = {  # type: ignore[attr-defined]
        dim: replacements.get(length, length)
        for dim, length in fg._dim_lengths.items()  # type: ignore[attr-defined]
    }
    return model_from_fgraph(new, mutate_fgraph=True), packing
