"""Facts about the machine and PyTensor settings every layer may use (imports no stage)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["python_ops", "usable_cpus"]


def usable_cpus() -> int:
    """The cores this process may run on (its affinity on Linux, the CPU count elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def python_ops() -> Iterator[None]:
    """PyTensor without its C compiler for the small helper functions (initial points,
    shapes, structural checks): PyTensor's C thunks cost 20 s of gcc on a fresh machine for a
    function that runs once; their Python implementations cost nothing to build."""
    import pytensor

    with pytensor.config.change_flags(cxx=""):
        yield
