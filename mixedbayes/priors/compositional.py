"""Default priors of compositional (microbiome) models.

Effects live on the CLR scale (log-ratios against the geometric mean of the taxa), so their
scale is set by the covariates alone, not by the counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixedbayes.families import round_sig, sd_scale
from mixedbayes.priors.distributions import PriorDist
from mixedbayes.priors.table import PriorRow, PriorTable, group_prior_rows

if TYPE_CHECKING:
    from mixedbayes.design.compositional import CompositionalDesign
    from mixedbayes.design.groups import GroupFactor

__all__ = ["COMPOSITIONAL_POSITIVE", "default_compositional_priors"]

#: The kind's positive parameter classes besides ``sd``.
COMPOSITIONAL_POSITIVE = ("sd_b", "tau_b", "slab_b", "tau_sd", "phi", "sigma")

#: ``group_sd: taxon``: the prior SD of the spread of the taxa's log group SDs.
TAU_SD_SCALE = 0.5


def _normal(scale: float) -> PriorDist:
    return PriorDist("normal", (0.0, round_sig(scale)))


#: ``pooling: horseshoe``: the share of taxa expected to change (sets the global scale), the
#: degrees of freedom of the global scale's half-Student-t and of the slab.
EXPECTED_SHARE, GLOBAL_DF, SLAB_DF = 0.1, 3.0, 4.0


def _horseshoe_rows(term: str, sx: float, n_taxa: int) -> list[PriorRow]:
    """``tau_b`` half-Student-t(3, 0, τ0) with ``τ0 = p0 / (J − p0) / sd(x)``, ``p0`` a
    tenth of the ``J`` taxa (Piironen & Vehtari's rule with ``1/sd(x)`` as the effects'
    scale), and ``slab_b`` (the slab's variance) InvGamma(ν/2, ν s²/2), ``ν = 4``, ``s =
    1/sd(x)``: the few large effects get a Student-t(4, 0, 1/sd(x)) prior.

    A half-Cauchy global scale puts 6 % of its mass above 10·τ0, where ``tau·λ`` exceeds the
    slab for most taxa: the prior is no longer sparse there and the data cannot tell tau's
    size, so its posterior keeps the Cauchy's tail (SBC refits: divergences in 90 of 100); a
    half-t(3) puts 0.2 % there and keeps the scale τ0 sets."""
    p0 = max(1.0, EXPECTED_SHARE * n_taxa)
    tau0 = p0 / max(n_taxa - p0, 1.0) / sx
    slab = SLAB_DF / 2
    return [
        PriorRow(
            "tau_b",
            term,
            "",
            "",
            PriorDist("student_t", (GLOBAL_DF, 0.0, round_sig(tau0))),
            "default",
            f"horseshoe global scale: half-Student-t(3, 0, p0/(J-p0)/sd(x)), p0 = {p0:g} of "
            f"J = {n_taxa} taxa expected to change; sd({term})={sx:.4g}",
        ),
        PriorRow(
            "slab_b",
            term,
            "",
            "",
            PriorDist("inv_gamma", (slab, round_sig(slab / sx**2))),
            "default",
            "horseshoe slab variance: InvGamma(2, 2/sd(x)^2), large effects Student-t(4, 0, "
            "1/sd(x))",
        ),
    ]


def default_compositional_priors(design: CompositionalDesign) -> PriorTable:
    """The defaults:

    - ``Intercept`` of each taxon: Normal(c, 2.5), ``c`` its CLR in the pooled composition
      (the data's overall abundance; part of the table, so SBC keeps it fixed), made
      zero-sum across taxa;
    - per coefficient x, ``pooling: horseshoe`` (default): see :func:`_horseshoe_rows`;
      ``pooling: taxa``: ``sd_b`` (the SD of its taxon effects) half-Normal(0, 1/sd(x)), a
      one-SD change of x moving a taxon's log-ratio by about 1; ``pooling: none``: ``b``
      Normal(0, 1/sd(x)) with that SD fixed;
    - group effects: ``sd`` per factor and term, half-Normal(0, 1/sd(z)) (pooled across
      taxa); with ``group_sd: taxon`` also ``tau_sd`` per factor and term, half-Normal(0,
      0.5), the SD of the taxa's log SDs around it;
    - ``phi`` (Dirichlet-multinomial concentration): LogNormal(4, 2) (median 55);
    - ``sigma``: half-Normal(0, 1) per taxon (the logistic-normal residual), or
      half-Normal(0, sd) per coordinate of ``logratio_normal``'s outcome.
    """
    spec = design.spec
    X = design.samples.X
    terms = list(design.samples.fixed_terms)
    rows = [
        PriorRow(
            "Intercept",
            taxon,
            "",
            "",
            PriorDist("normal", (round_sig(float(centre)), 2.5)),
            "default",
            "Normal(clr, 2.5), made zero-sum across taxa; clr of the pooled composition",
        )
        for taxon, centre in zip(design.taxa, design.centre, strict=True)
    ]
    for term in design.slopes:
        sx = sd_scale(X[:, terms.index(term)])
        if spec.pooling == "horseshoe":
            rows += _horseshoe_rows(term, sx, len(design.taxa))
            continue
        cls = "sd_b" if spec.pooling == "taxa" else "b"
        what = "SD of its taxon effects" if cls == "sd_b" else "taxon effects, fixed SD"
        rows.append(
            PriorRow(
                cls,
                term,
                "",
                "",
                _normal(1.0 / sx),
                "default",
                f"{what}: Normal(0, 1/sd(x)) on the CLR scale; sd({term})={sx:.4g}",
            )
        )

    def sd_prior(g: GroupFactor, k: int) -> tuple[PriorDist, str]:
        sz = 1.0 if g.terms[k] == "Intercept" else sd_scale(g.Z[:, k])
        return _normal(1.0 / sz), f"half-Normal(0, 1/sd(z)) pooled across taxa; sd(z)={sz:.4g}"

    rows += group_prior_rows(
        design.groups, sd_prior, 1.0, "LKJ(1) over the terms, shared by every taxon"
    )
    if spec.group_sd == "taxon":
        rows += [
            PriorRow(
                "tau_sd",
                term,
                g.name,
                "",
                _normal(TAU_SD_SCALE),
                "default",
                f"SD of the taxa's log SDs around sd_{g.name}: half-Normal(0, {TAU_SD_SCALE})",
            )
            for g in design.groups
            for term in g.terms
        ]
    if spec.likelihood == "dirichlet_multinomial":
        rows.append(
            PriorRow(
                "phi",
                "",
                "",
                "",
                PriorDist("lognormal", (4.0, 2.0)),
                "default",
                "Dirichlet-multinomial concentration, LogNormal(4, 2) (median 55)",
            )
        )
    elif spec.likelihood == "multinomial":
        for taxon in design.taxa:
            rows.append(
                PriorRow(
                    "sigma",
                    taxon,
                    "",
                    "",
                    _normal(1.0),
                    "default",
                    "logistic-normal residual SD of the taxon, half-Normal(0, 1)",
                )
            )
    else:
        assert design.outcome is not None
        for j, coord in enumerate(design.transform.coordinates()):
            s = sd_scale(design.outcome[:, j])
            rows.append(
                PriorRow(
                    "sigma",
                    coord,
                    "",
                    "",
                    _normal(s),
                    "default",
                    f"half-Normal(0, sd(y)) of the coordinate; sd(y)={s:.4g}",
                )
            )
    return PriorTable(tuple(rows))
