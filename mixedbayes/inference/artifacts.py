"""Where compiled models live across sessions: one artifact per model structure, on disk.

A compiled sampler program is keyed by the model's structure key
(:func:`~mixedbayes.inference.reuse.structure_key`: every operation and constant of the
log-density, the shapes but not the values of its data) plus the sampler settings that fix
the program's shape (chains, tuning and draw counts). The first fit of a structure traces
the program, serialises it with :mod:`jax.export` and stores it here; XLA's executable goes
to JAX's persistent compilation cache in the same folder. A later process with the same
structure loads the serialised program (no tracing) and the executable (no compiling).

The folder is ``$MIXEDBAYES_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/mixedbayes``, else
``~/.cache/mixedbayes``. Deleting it is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["cache_dir", "configure_jax_cache", "load_exported", "save_exported"]

#: Bumped when the layout of a stored program changes (older files are then ignored).
FORMAT = "1"


def cache_dir() -> Path:
    """The folder of this user's persisted compiled models (created on first use)."""
    env = os.environ.get("MIXEDBAYES_CACHE_DIR")
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "mixedbayes"
    return path


_JAX_CONFIGURED = False


def configure_jax_cache() -> None:
    """Turn on JAX's persistent compilation cache in :func:`cache_dir` (unless the user set
    one already) and 64-bit floats (the models are written in double precision)."""
    global _JAX_CONFIGURED
    if _JAX_CONFIGURED:
        return
    import jax

    jax.config.update("jax_enable_x64", True)
    if not jax.config.jax_compilation_cache_dir:
        folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(cache_dir() / "xla")
        with contextlib.suppress(OSError):
            Path(folder).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    _JAX_CONFIGURED = True


def _path(key: str) -> Path:
    import jax

    tag = hashlib.sha256(f"{FORMAT}|{jax.__version__}|{key}".encode()).hexdigest()[:40]
    return cache_dir() / "programs" / f"{tag}.jaxexport"


def load_exported(key: str) -> tuple[Any, dict[str, Any]] | None:
    """The stored program of ``key`` (a ``jax.export.Exported``) and its description, or
    None."""
    from jax import export

    path = _path(key)
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        return export.deserialize(bytearray(path.read_bytes())), meta
    except Exception:  # absent, truncated or foreign: compile again
        return None


def save_exported(key: str, exported: Any, meta: dict[str, Any]) -> None:
    """Store ``exported`` and its description ``meta`` under ``key`` (atomically; a read-only
    cache folder is skipped)."""
    path = _path(key)
    pid = os.getpid()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for target, blob in (
            (path.with_suffix(".json"), json.dumps(meta).encode()),
            (path, bytes(exported.serialize())),
        ):
            tmp = target.with_name(f"{target.name}.{pid}.tmp")
            tmp.write_bytes(blob)
            tmp.replace(target)
    except OSError:
        return
