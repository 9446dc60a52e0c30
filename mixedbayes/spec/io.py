"""Reading and writing specs: YAML files or text, dicts, and the Python builders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mixedbayes.errors import Problem, SpecError
from mixedbayes.spec.compositional import CompositionalSpec
from mixedbayes.spec.joint import JointSpec
from mixedbayes.spec.model import SPEC_KINDS, GLMMSpec, LMMSpec, ModelSpec

__all__ = ["GLMM", "LMM", "load_spec", "save_spec", "spec_from_dict"]


def spec_from_dict(data: dict[str, Any]) -> ModelSpec:
    """Build a spec from plain data, choosing the class by ``kind`` (``lmm`` if absent).

    Raises
    ------
    SpecError
        For an unknown kind, an unknown key, or any invalid value; every problem is listed.
    """
    if not isinstance(data, dict):
        raise SpecError(
            f"a spec must be a mapping of keys to values, not {type(data).__name__}.",
            where="spec",
            hint="start the file with keys such as 'kind: lmm' and 'formula: ...'.",
        )
    kind = data.get("kind", "lmm")
    if not isinstance(kind, str) or kind not in SPEC_KINDS:
        raise SpecError(
            f"unknown model kind {kind!r}.", where="kind", hint=f"use one of {sorted(SPEC_KINDS)}."
        )
    return SPEC_KINDS[kind](**{k: v for k, v in data.items() if k != "kind"})


def _read_yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            f"malformed YAML: {problem}.",
            where=where,
            hint="check the indentation and the ':' after each key at that line.",
        ) from None


def load_spec(source: str | os.PathLike[str] | dict[str, Any] | ModelSpec) -> ModelSpec:
    """Load a model spec from a YAML/JSON file, YAML text, a dict, or a spec.

    Parameters
    ----------
    source : str, path, dict or ModelSpec
        A path to a ``.yaml``/``.yml``/``.json`` file, YAML text (anything with a newline or
        a ``key:``), a dict, or an existing spec (returned as is).

    Returns
    -------
    ModelSpec
        The spec of the right kind (e.g. :class:`~mixedbayes.spec.LMMSpec`).

    Raises
    ------
    SpecError
        For a missing file, malformed YAML, or an invalid spec (every problem listed).

    Examples
    --------
    >>> import mixedbayes as mb
    >>> spec = mb.load_spec("kind: lmm\\nformula: Reaction ~ Days + (Days | Subject)\\n")
    >>> spec.formula
    'Reaction ~ Days + (Days | Subject)'
    """
    if isinstance(source, ModelSpec):
        return source
    if isinstance(source, dict):
        return spec_from_dict(source)
    text = os.fspath(source)
    path = Path(text)
    looks_like_text = "\n" in text or (":" in text and not path.suffix)
    if not looks_like_text:
        if not path.is_file():
            raise SpecError(
                f"no spec file at {text!r} (looked in {Path.cwd()}).",
                where="spec",
                hint="give the path of a YAML spec file, e.g. 'models/sleepstudy.yaml'.",
            )
        return spec_from_dict(_read_yaml(path.read_text(), str(path)) or {})
    return spec_from_dict(_read_yaml(text, "spec text") or {})


def save_spec(spec: ModelSpec, path: str | os.PathLike[str]) -> Path:
    """Write ``spec`` as YAML to ``path`` and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(spec.to_yaml())
    return out


def LMM(formula: str, **options: Any) -> LMMSpec:
    """Build a linear mixed model spec in Python.

    Parameters
    ----------
    formula : str
        lme4 syntax: ``"Reaction ~ Days + (Days | Subject)"``; ``(x || g)`` for independent
        terms, ``(1 | clinic/patient)`` for nesting, ``(1 | a) + (1 | b)`` for crossed factors.
    **options
        Any other :class:`~mixedbayes.spec.LMMSpec` field: ``priors``, ``sampler``,
        ``parametrization``, ``group_effects``, ``name``, ``data``. Priors may be given as
        dicts (``{"class": "b", "coef": "Days", "prior": "normal(0, 10)"}``).

    Returns
    -------
    LMMSpec
    """
    return LMMSpec(formula=formula, **options)


def GLMM(formula: str, family: str | dict[str, Any], **options: Any) -> GLMMSpec:
    """Build a generalised linear mixed model spec in Python.

    Parameters
    ----------
    formula : str
        lme4 syntax; binomial responses as ``cbind(k, n - k)`` or ``k | trials(n)``; offsets as
        ``offset(log(exposure))``.
    family : str or dict
        A registered family (``"poisson"``, ``"binomial"``, ``"negbinomial"``, ...) or
        ``{"name": ..., "link": ...}``. Required, as in :class:`~mixedbayes.spec.GLMMSpec`:
        neither has a default family.
    **options
        Any other :class:`~mixedbayes.spec.GLMMSpec` field (``zi``, ``priors``, ...).
    """
    return GLMMSpec(formula=formula, family=family, **options)  # type: ignore[arg-type]


def Joint(
    subject: str,
    time: str,
    longitudinal: dict[str, Any],
    survival: str | dict[str, Any],
    **options: Any,
) -> JointSpec:
    """Build a joint longitudinal–survival model spec in Python.

    Parameters
    ----------
    subject, time : str
        The subject column of both tables and the visit-time column.
    longitudinal : dict
        By outcome name, its formula (a Gaussian outcome) or ``{"formula": ..., "family":
        ...}``: ``{"log_bili": "log(serBilir) ~ year + (year | id)"}``.
    survival : str or dict
        ``"Surv(years, event) ~ sex"`` (B-spline baseline) or ``{"formula": ...,
        "baseline": "weibull"}``.
    **options
        Any other :class:`~mixedbayes.spec.JointSpec` field (``association``, ``lag``,
        ``quadrature``, ``priors``, ...).
    """
    surv = {"formula": survival} if isinstance(survival, str) else survival
    return JointSpec(
        subject=subject,
        time=time,
        longitudinal=longitudinal,  # type: ignore[arg-type]
        survival=surv,  # type: ignore[arg-type]
        **options,
    )


def Compositional(formula: str, **options: Any) -> CompositionalSpec:
    """Build a compositional (microbiome) model spec in Python.

    Parameters
    ----------
    formula : str
        The right-hand side over the sample metadata: ``"~ group * time + (1 | subject)"``.
    **options
        Any other :class:`~mixedbayes.spec.CompositionalSpec` field (``likelihood``,
        ``transform``, ``taxa``, ``zeros``, ``pooling``, ``priors``, ...).
    """
    return CompositionalSpec(formula=formula, **options)


def problems_of(source: Any) -> list[Problem]:
    """Every problem :func:`load_spec` would raise for ``source`` (empty when it is valid)."""
    try:
        load_spec(source)
    except SpecError as exc:
        return list(exc.problems)
    return []
