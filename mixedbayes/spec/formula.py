"""Split an lme4 formula into its fixed part and its random-effect bars.

formulae parses the formula and builds every design matrix; what it does not keep is which
group terms were written together in one bar (and so are correlated), nor lme4's double bar
``(x || g)`` for independent terms. This module finds the bars (as lme4's ``findbars`` does),
rewrites ``||`` to ``|`` for formulae, and records, for every bar, whether its terms are
correlated. It never parses terms itself: each bar is handed to formulae.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mixedbayes.errors import Problem

__all__ = ["Bar", "FormulaParts", "split_formula"]


@dataclass(frozen=True)
class Bar:
    """One random-effect bar ``(lhs | factor)`` or ``(lhs || factor)``.

    Attributes
    ----------
    lhs, factor : str
        The two sides of the bar as written.
    correlated : bool
        ``False`` for ``||``: the terms get independent effects.
    term_names : tuple of str
        The formulae group-term names the bar expands to (``"1|Subject"``, ``"Days|Subject"``,
        and for nested factors ``"1|clinic:patient"`` too).
    """

    lhs: str
    factor: str
    correlated: bool
    term_names: tuple[str, ...]

    @property
    def text(self) -> str:
        """The bar as it would be written in the formula."""
        return f"({self.lhs} {'|' if self.correlated else '||'} {self.factor})"


@dataclass(frozen=True)
class FormulaParts:
    """A formula split for formulae, with the bar structure kept.

    For binomial responses, ``failures`` (``cbind(k, n - k)``) or ``trials``
    (``k | trials(n)``) hold the expression formulae evaluates beside the response ``k``.
    """

    formula: str
    formulae_formula: str
    response: str
    bars: tuple[Bar, ...]
    failures: str | None = None
    trials: str | None = None


def _split_response(lhs: str) -> tuple[str, str | None, str | None]:
    """``cbind(k, n - k)`` → (k, n - k, None); ``k | trials(n)`` → (k, None, n); else (lhs,)."""
    text = lhs.strip()
    m = re.fullmatch(r"cbind\s*\((.*)\)", text)
    if m:
        inner = m.group(1)
        depth = 0
        for i, ch in enumerate(inner):
            depth += ch == "("
            depth -= ch == ")"
            if ch == "," and depth == 0:
                k, rest = inner[:i].strip(), inner[i + 1 :].strip()
                if k and rest:
                    return k, rest, None
        raise ValueError("cbind() takes two arguments: cbind(successes, failures)")
    m = re.fullmatch(r"(.+?)\|\s*trials\s*\((.+)\)", text)
    if m:
        return m.group(1).strip(), None, m.group(2).strip()
    return text, None, None


def _find_bars(rhs: str) -> list[tuple[int, int, int, bool]]:
    """Top-level parenthesised groups holding a bar: (start, end, bar position, double)."""
    found = []
    depth = 0
    start = -1
    for i, ch in enumerate(rhs):
        if ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' at character {i + 1}")
            if depth == 0:
                inner = rhs[start + 1 : i]
                pos = _bar_position(inner)
                if pos >= 0:
                    double = inner[pos : pos + 2] == "||"
                    found.append((start, i, start + 1 + pos, double))
    if depth != 0:
        raise ValueError("unbalanced '(': a parenthesis is never closed")
    return found


def _bar_position(inner: str) -> int:
    depth = 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return i
    return -1


def _group_term_names(text: str) -> tuple[str, ...]:
    import formulae as fm

    desc = fm.model_description(f"y ~ {text}")
    return tuple(t.name for t in desc.group_terms)


@lru_cache(maxsize=256)
def split_formula(formula: str) -> FormulaParts:
    """Split ``formula`` into the formula formulae reads and its bars.

    Parameters
    ----------
    formula : str
        An lme4-style formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.

    Returns
    -------
    FormulaParts

    Raises
    ------
    ValueError
        With a message naming what is malformed (the caller turns it into a ``SpecError``).
    """
    import formulae as fm

    if formula.count("~") != 1:
        raise ValueError(
            "a formula needs exactly one '~' with the response on its left, "
            "e.g. 'y ~ time + (1 | id)'"
        )
    lhs, rhs = formula.split("~")
    if not lhs.strip():
        raise ValueError("the formula has no response on the left of '~'")
    lhs, failures, trials = _split_response(lhs)
    bars = _find_bars(rhs)
    pieces = []
    last = 0
    parsed: list[Bar] = []
    for start, end, pos, double in bars:
        left = rhs[start + 1 : pos].strip()
        right = rhs[pos + (2 if double else 1) : end].strip()
        if not left or not right:
            raise ValueError(f"the bar '{rhs[start : end + 1].strip()}' needs terms on both sides")
        pieces.append(rhs[last:start])
        pieces.append(f"({left} | {right})")
        last = end + 1
        try:
            names = _group_term_names(f"({left} | {right})")
        except Exception as exc:
            raise ValueError(f"formulae cannot parse the bar '({left} | {right})': {exc}") from None
        parsed.append(Bar(left, right, not double, names))
    pieces.append(rhs[last:])
    new_formula = f"{lhs.strip()} ~ {''.join(pieces).strip()}"
    try:
        desc = fm.model_description(new_formula)
    except Exception as exc:  # formulae raises ScanError/ParseError/ValueError
        raise ValueError(f"formulae cannot parse it: {exc}") from None
    response = desc.response.term.name if desc.response is not None else lhs.strip()
    return FormulaParts(formula, new_formula, response, tuple(parsed), failures, trials)


def formula_problems(formula: str, key: str = "formula") -> list[Problem]:
    """Problems with a formula's syntax, for spec validation (empty when it parses)."""
    try:
        split_formula(formula)
    except ValueError as exc:
        return [
            Problem(
                f"malformed formula {formula!r}: {exc}.",
                key,
                "write it in lme4 syntax, e.g. 'y ~ x + (1 + x | group)'.",
            )
        ]
    return []


def fixed_formula(formula: str) -> str:
    """The formula without its random-effect bars (the pooled, 'naive' model)."""
    import formulae as fm

    parts = split_formula(formula)
    desc = fm.model_description(parts.formulae_formula)
    names = [t.name for t in desc.common_terms]
    has_intercept = any(type(t).__name__ == "Intercept" for t in desc.common_terms)
    terms = [n for n in names if n != "Intercept"]
    rhs = " + ".join(terms) if terms else "1"
    if not has_intercept:
        rhs = "0 + " + rhs if terms else "0"
    return f"{formula.split('~')[0].strip()} ~ {rhs}"


def auxiliary_formula(expr: str) -> str:
    """A formulae formula whose response evaluates ``expr`` (e.g. ``size - incidence``)."""
    return f"{{{expr}}} ~ 1" if not re.fullmatch(r"[A-Za-z_][\w.]*", expr) else f"{expr} ~ 1"
