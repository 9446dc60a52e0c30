"""Compile reuse: a model refitted with new data of the same structure is not recompiled.

A model's *structure key* hashes its log-density and deterministics graph: every operation,
every constant's value (priors, centring constants) and, for each data container, its name,
dtype and shape, but not its values. Two models with the same key differ only in the
values of their data containers, so the compiled log-density of the first serves the
second once its data are swapped in (nutpie's ``with_data``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = ["CompileCache", "structure_key"]


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

    def ident(var: Any) -> int:
        if var in ids:
            return ids[var]
        ids[var] = len(ids)
        if isinstance(var, SharedVariable):
            value = np.asarray(var.get_value())
            shared[str(var.name)] = value
            h.update(f"S|{var.name}|{value.dtype}|{value.shape}|".encode())
        elif isinstance(var, Constant):
            data = np.asarray(var.data)
            h.update(f"C|{data.dtype}|{data.shape}|".encode())
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
