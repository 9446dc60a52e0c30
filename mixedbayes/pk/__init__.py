"""Pharmacokinetics: dosing events and closed-form structural PK models.

:mod:`mixedbayes.pk.dosing` reads doses (NONMEM-style event tables, or one dose per subject
from a dose column) and lays them out against observation times; :mod:`mixedbayes.pk.library`
holds the registry of closed-form compartment models, whose unit-dose responses are
superposed over a dosing history by :func:`concentration`.

No PyMC or pytensor is imported here.
"""

from __future__ import annotations

from mixedbayes.pk.dosing import (
    DoseMatrices,
    DoseRecord,
    DosingTable,
    dose_matrices,
    from_dose_column,
    from_events,
)
from mixedbayes.pk.library import (
    PK_MODELS,
    CompartmentSystem,
    PKModel,
    concentration,
    get_pk_model,
    register_pk_model,
)
from mixedbayes.pk.regimen import regimen

__all__ = [
    "PK_MODELS",
    "CompartmentSystem",
    "DoseMatrices",
    "DoseRecord",
    "DosingTable",
    "PKModel",
    "concentration",
    "dose_matrices",
    "from_dose_column",
    "from_events",
    "get_pk_model",
    "regimen",
    "register_pk_model",
]
