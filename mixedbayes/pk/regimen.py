"""Dosing regimens for predictions (e.g. 3 doses every 12 h for a new subject)."""

from __future__ import annotations

from mixedbayes.errors import DataError
from mixedbayes.pk.dosing import DoseRecord

__all__ = ["regimen"]


def regimen(
    amount: float,
    n_doses: int,
    interval: float,
    *,
    start: float = 0.0,
    rate: float = 0.0,
    subject: str = "new",
) -> list[DoseRecord]:
    """A dosing regimen: ``n_doses`` of ``amount`` every ``interval`` from ``start``.

    Parameters
    ----------
    amount : float
        Dose amount (> 0), in the units of the data's doses.
    n_doses : int
    interval : float
        Time between doses (> 0).
    start : float
        Time of the first dose.
    rate : float
        Infusion rate (0: bolus or oral).
    subject : str
        Label of the subject the doses are for.

    Returns
    -------
    list of DoseRecord
    """
    if amount <= 0 or n_doses < 1 or interval <= 0:
        raise DataError(
            "a regimen needs amount > 0, n_doses >= 1 and interval > 0.", where="regimen"
        )
    return [DoseRecord(subject, start + i * interval, amount, rate) for i in range(n_doses)]
