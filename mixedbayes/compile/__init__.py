"""Stage 3: Design → CompiledModel. The only place a ``pm.Model`` is built.

Builders take a :class:`BuildContext` (the model, explicit, and the names of the part being
built); each kind composes them (``mixedbayes.kinds``).
"""

from mixedbayes.compile.blas import quiet_blas_fallback_notice
from mixedbayes.compile.context import BuildContext, new_model
from mixedbayes.compile.model import CompiledModel

quiet_blas_fallback_notice()  # PyTensor's BLAS fallback notice: see compile/blas.py

__all__ = ["BuildContext", "CompiledModel", "new_model"]
