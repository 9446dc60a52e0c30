"""The report sections; importing this package registers every module's sections (a new
section is one class in one new file here, or in the user's own module)."""

from mixedbayes.registry import import_submodules

__all__ = ["SECTION_MODULES"]

#: The modules whose sections are registered.
SECTION_MODULES = import_submodules(__name__)
