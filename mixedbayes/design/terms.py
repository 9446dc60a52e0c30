"""Term names as users type them: lme4's and brms's spellings mapped to the design's names.

The design names a treatment-coded level ``Sex[Female]`` and an interaction
``age:Sex[Female]``. Users coming from R type ``SexFemale`` (lme4), ``b_SexFemale`` (brms),
``(Intercept)``, or the interaction's parts in another order (``SexFemale:age``).
:func:`resolve_term` maps each of those to the one term it means; it is the resolver used
wherever a user types a fixed-effect term (hypotheses, prior ``coef``).

Level names with characters a formula cannot hold are matched in brms's spelling too
(``age[40-59]`` is ``age40M59``). Sum-coded terms (``Sex[S.Female]``) are matched only by their
own name: R numbers them (``Sex1``), which names no level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["resolve_term", "term_aliases"]

#: What the intercept is called in R (lme4 prints ``(Intercept)``, brms ``b_Intercept``).
INTERCEPT_ALIASES = ("(Intercept)", "Intercept", "b_Intercept", "intercept")

#: brms's renaming of characters a name cannot hold (``brms:::rename``).
_BRMS_CHARS = {
    " ": "",
    "(": "",
    ")": "",
    "[": "",
    "]": "",
    ",": "",
    '"': "",
    "'": "",
    "?": "",
    "+": "P",
    "-": "M",
    "*": "MU",
    "/": "D",
    "^": "E",
    "=": "EQ",
}

_LEVEL = re.compile(r"^(?P<var>[^\[\]]+)\[(?P<level>[^\[\]]*)\]$")


def _brms(text: str) -> str:
    return "".join(_BRMS_CHARS.get(ch, ch) for ch in text)


def _component_aliases(component: str) -> set[str]:
    """How users write one part of a term: ``Sex[Female]`` → ``SexFemale``."""
    out = {component}
    m = _LEVEL.match(component)
    if m and not m["level"].startswith("S."):
        var, level = m["var"], m["level"]
        out |= {var + level, var + _brms(level)}
    return out


def _split(name: str) -> list[str]:
    """The parts of an interaction (``:`` outside brackets)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(name):
        depth += ch == "["
        depth -= ch == "]"
        if ch == ":" and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    parts.append(name[start:])
    return [p.strip() for p in parts]


def term_aliases(terms: Iterable[str]) -> dict[str, str]:
    """Every unambiguous spelling of one part of ``terms`` → that part's own name."""
    seen: dict[str, set[str]] = {}
    for term in terms:
        for part in _split(term):
            for alias in _component_aliases(part):
                seen.setdefault(alias, set()).add(part)
    return {alias: next(iter(parts)) for alias, parts in seen.items() if len(parts) == 1}


def resolve_term(name: str, terms: Sequence[str]) -> str | None:
    """The term of ``terms`` that ``name`` means, or None when it means none (or several).

    Parameters
    ----------
    name : str
        As the user typed it: ``"age:Sex[Female]"``, ``"age:SexFemale"``,
        ``"SexFemale:age"``, ``"b_age:SexFemale"``, ``"(Intercept)"``.
    terms : sequence of str
        The design's fixed-effect terms.

    Examples
    --------
    >>> terms = ["Intercept", "age", "Sex[Female]", "age:Sex[Female]"]
    >>> resolve_term("SexFemale:age", terms), resolve_term("(Intercept)", terms)
    ('age:Sex[Female]', 'Intercept')
    """
    text = name.strip().strip("`")
    if text in terms:
        return text
    if text in INTERCEPT_ALIASES:
        return "Intercept" if "Intercept" in terms else None
    if text.startswith("b_"):
        found = resolve_term(text[2:], terms)
        if found is not None:
            return found
    aliases = term_aliases(terms)
    parts = [aliases.get(p) for p in _split(text)]
    if any(p is None for p in parts):
        return None
    key = sorted(p for p in parts if p is not None)
    matches = [t for t in terms if sorted(_split(t)) == key]
    return matches[0] if len(matches) == 1 else None
