"""Stage 3: Design → CompiledModel. The only place a ``pm.Model`` is built."""

from mixedbayes.compile.model import BUILDERS, CompiledModel, compile_model, register_builder

__all__ = ["BUILDERS", "CompiledModel", "compile_model", "register_builder"]
