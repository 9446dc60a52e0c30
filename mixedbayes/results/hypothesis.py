"""Hypotheses on parameters (brms's ``hypothesis``) and slopes/contrasts on the response scale.

A hypothesis is ``"<expression> <op> <expression>"`` with ``op`` one of ``<``, ``>``, ``=``,
over fixed-effect names (``Days``, ``trt:time``, ``Intercept``) and summary parameters
(``sd_Subject[Days]``, ``sigma``), numbers and ``+ - * /``. lme4 and brms spellings of the
fixed effects work too (``age:SexFemale``, ``SexFemale:age``, ``(Intercept)``, ``b_age``,
``sd_Subject__Days``; see :func:`mixedbayes.design.terms.resolve_term`); a name that means no
parameter is a ``SpecError`` listing the fixed effects. It is parsed with :mod:`ast` after
the names are replaced by placeholders — never evaluated as Python.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixedbayes.design.terms import resolve_term
from mixedbayes.errors import SpecError

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.results.protocols import FitLike

__all__ = ["fixed_effect_names", "hypothesis", "parameter_draws"]

_OPS = ("<=", ">=", "<", ">", "=")


def parameter_draws(posterior: xr.Dataset, names: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Flat draws (chain × draw) of every scalar parameter, by the names users write.

    Fixed effects by their term (``Days``) and as ``b[Days]``; every other variable by its
    summary label (``sd_Subject[Days]``, ``cor_Subject[Intercept,Days]``, ``sigma``).
    """
    out: dict[str, np.ndarray] = {}
    for var in posterior.data_vars:
        da = posterior[var]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        flat = da.transpose("chain", "draw", *extra).to_numpy()
        flat = flat.reshape(-1, *flat.shape[2:])
        if not extra:
            out[str(var)] = flat
            continue
        coords = [[str(v) for v in da[d].to_numpy()] for d in extra]
        for index in np.ndindex(*[len(c) for c in coords]):
            label = ",".join(coords[k][i] for k, i in enumerate(index))
            out[f"{var}[{label}]"] = flat[(slice(None), *index)]
            if var == "b":
                out[label] = flat[(slice(None), *index)]
    return out


def _split(text: str) -> tuple[str, str, str]:
    for op in _OPS:
        if text.count(op) == 1 and (op in ("<=", ">=") or ("<=" not in text and ">=" not in text)):
            left, right = text.split(op)
            return (
                left.strip(),
                ("<" if op in ("<", "<=") else ">" if op in (">", ">=") else "="),
                right.strip(),
            )
    raise SpecError(
        f"hypothesis {text!r} needs exactly one comparison '<', '>' or '='.",
        where="hypothesis",
        hint="write e.g. 'trt:time < 0' or 'Days - 10 > 0'.",
    )


#: A name as typed in a hypothesis: a term with levels and interactions
#: (``age:Sex[Female]``, ``age:SexFemale``), a brms name (``sd_Subject__Days``) or a
#: back-quoted name holding any characters (```age40-59```).
_PART = r"[A-Za-z][\w.]*(?:\[[^\]]*\])?"
_NAME = re.compile(rf"'[^']*'|\"[^\"]*\"|`[^`]+`|(?<![\w.\]]){_PART}(?::{_PART})*")

#: brms's names of group-level parameters: ``sd_Subject__Days``, ``cor_Subject__Intercept__Days``.
_BRMS_GROUP = re.compile(r"^(sd|cor)_(.+?)__(.+)$")


def fixed_effect_names(posterior: xr.Dataset) -> list[str]:
    """The fixed-effect names a hypothesis may use: the terms of ``b`` (``Days``) and the
    entries of every part's ``b_<part>`` (``b_log_CL[Intercept]``)."""
    names: list[str] = []
    for var in posterior.data_vars:
        name = str(var)
        if name != "b" and (not name.startswith("b_") or name.startswith("b_slope")):
            continue
        extra = [d for d in posterior[var].dims if d not in ("chain", "draw")]
        if len(extra) != 1:
            continue
        labels = [str(v) for v in posterior[var][extra[0]].to_numpy()]
        names += labels if name == "b" else [f"{name}[{lab}]" for lab in labels]
    return names


def _resolve(token: str, draws: dict[str, np.ndarray], fixed: Sequence[str]) -> str | None:
    """The parameter of ``draws`` a user's spelling means (lme4/brms names included)."""
    text = token.strip("`")
    if text in draws:
        return text
    m = _BRMS_GROUP.match(text)
    if m:
        kind, group, rest = m.groups()
        name = f"{kind}_{group}[{rest.replace('__', ',')}]"
        if name in draws:
            return name
    return resolve_term(text, fixed)


def _unknown(name: str, text: str, draws: dict[str, np.ndarray], fixed: Sequence[str]) -> SpecError:
    others = [
        n for n in draws if n not in fixed and ("[" not in n or n.startswith(("sd_", "cor_")))
    ]
    others = [n for n in others if not n.startswith("b[") and n not in ("b",)]
    return SpecError(
        f"hypothesis {text!r} names {name!r}, which is not a parameter of this model.",
        where="hypothesis",
        hint=f"the fixed effects are {list(fixed)}; other parameters: {others[:12]} "
        "(lme4/brms spellings such as 'SexFemale', '(Intercept)', 'b_age' are accepted).",
    )


def _evaluate(
    expr: str, draws: dict[str, np.ndarray], text: str, fixed: Sequence[str] = ()
) -> np.ndarray:
    names = sorted(draws, key=len, reverse=True)
    placeholders: dict[str, str] = {}
    pattern = "|".join(re.escape(n) for n in names)
    token = re.compile(rf"(?<![\w\[\]:.])(?:{pattern})(?![\w\[\]:.])")

    def swap(m: re.Match[str]) -> str:
        key = f"__p{len(placeholders)}__"
        placeholders[key] = m.group(0)
        return key

    def swap_resolved(m: re.Match[str]) -> str:
        if m.group(0)[0] in "'\"":  # a string: left for the parser to refuse
            return m.group(0)
        found = _resolve(m.group(0), draws, fixed)
        if found is None:
            raise _unknown(m.group(0).strip("`"), text, draws, fixed)
        key = f"__p{len(placeholders)}__"
        placeholders[key] = found
        return key

    code = token.sub(swap, expr) if names else expr
    code = _NAME.sub(swap_resolved, code)
    try:
        tree = ast.parse(code, mode="eval").body
    except SyntaxError:
        tree = None
    if tree is None or not _allowed(tree, placeholders):
        raise SpecError(
            f"cannot read {expr!r} in hypothesis {text!r}: use parameter names, numbers, "
            "+ - * / and parentheses (quote a name holding other characters: `age40-59`).",
            where="hypothesis",
            hint=f"the fixed effects are {list(fixed)}.",
        )
    return np.asarray(_eval(tree, {k: draws[v] for k, v in placeholders.items()}), dtype=float)


def _allowed(node: ast.AST, placeholders: dict[str, str]) -> bool:
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div) and all(
            _allowed(n, placeholders) for n in (node.left, node.right)
        )
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.USub | ast.UAdd) and _allowed(node.operand, placeholders)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float) and not isinstance(node.value, bool)
    return isinstance(node, ast.Name) and node.id in placeholders


def _eval(node: ast.AST, env: dict[str, np.ndarray]) -> np.ndarray | float:
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, env), _eval(node.right, env)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        return a / b
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]
    assert isinstance(node, ast.Name)
    return env[node.id]


def summarise_draws(
    label: str,
    values: np.ndarray,
    *,
    direction: str = "",
    prob: float = 0.95,
    rope: tuple[float, float] | None = None,
) -> dict[str, object]:
    """One tidy row: estimate, sd, interval, posterior probability, evidence ratio, ROPE."""
    q = (1 - prob) / 2
    row: dict[str, object] = {
        "hypothesis": label,
        "estimate": float(np.mean(values)),
        "sd": float(np.std(values, ddof=1)),
        "lower": float(np.quantile(values, q)),
        "upper": float(np.quantile(values, 1 - q)),
    }
    if direction in ("<", ">"):
        p = float(np.mean(values < 0) if direction == "<" else np.mean(values > 0))
        row["post_prob"] = p
        row["evidence_ratio"] = p / (1 - p) if p < 1 else np.inf
    else:
        row["post_prob"] = float(np.mean(values > 0))
        row["evidence_ratio"] = np.nan
    if rope is not None:
        lo, hi = rope
        row["p_in_rope"] = float(np.mean((values >= lo) & (values <= hi)))
    row["excludes_zero"] = not (row["lower"] <= 0 <= row["upper"])  # type: ignore[operator]
    return row


def hypothesis(
    fit: FitLike,
    hypotheses: str | Sequence[str],
    *,
    prob: float = 0.95,
    rope: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Test hypotheses about parameters, as brms's ``hypothesis``.

    Parameters
    ----------
    fit : Fit
    hypotheses : str or list of str
        E.g. ``"trt:time < 0"``, ``"Days - 10 > 0"``, ``"sd_Subject[Days] > 5"``,
        ``"time + trt:time = 0"`` (the time slope of the treated arm).
    prob : float
        Mass of the central interval of the difference (left − right).
    rope : (float, float), optional
        Region of practical equivalence for the difference; adds ``p_in_rope``.

    Returns
    -------
    DataFrame
        One row per hypothesis: ``estimate`` (posterior mean of left − right), ``sd``,
        ``lower``, ``upper``, ``post_prob`` (P(left − right < 0) for ``<``, > 0 for ``>``; for
        ``=`` P(> 0)), ``evidence_ratio`` (post_prob / (1 − post_prob) for one-sided
        hypotheses), ``p_in_rope`` and ``excludes_zero``.
    """
    items = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    draws = parameter_draws(fit.posterior)
    fixed = fixed_effect_names(fit.posterior)
    rows = []
    for text in items:
        left, op, right = _split(text)
        diff = _evaluate(left, draws, text, fixed) - _evaluate(right, draws, text, fixed)
        rows.append(
            summarise_draws(
                text,
                np.broadcast_to(diff, (next(iter(draws.values())).shape[0],)),
                direction=op,
                prob=prob,
                rope=rope,
            )
        )
    frame = pd.DataFrame(rows)
    frame.attrs["prob"] = prob
    return frame
