"""Families and links: one registry each, of objects.

A family knows its allowed links, its default link, its own parameters (with the prior class
and default prior of each), how to check a response for support, how to add its likelihood to
a PyMC model, a SciPy reference of its log-density (for the registry-driven tests), its mean
and how to simulate. A link knows its inverse as a PyTensor expression and itself in NumPy.
A new family or link is one class in one module, registered with a decorator; importing this
package registers them all. No PyMC is imported at import time.
"""

from mixedbayes.families.base import (
    FAMILIES,
    LINKS,
    Family,
    FamilyParam,
    Link,
    families_with_formula,
    get_family,
    get_link,
    register_family,
    register_link,
    response_scale,
    round_sig,
    scale_prior,
    sd_scale,
)
from mixedbayes.registry import import_submodules

__all__ = [
    "FAMILIES",
    "LINKS",
    "Family",
    "FamilyParam",
    "Link",
    "families_with_formula",
    "get_family",
    "get_link",
    "register_family",
    "register_link",
    "response_scale",
    "round_sig",
    "scale_prior",
    "sd_scale",
]

# Every module of this package registers its families and links (a new one: a new file).
import_submodules(__name__)
