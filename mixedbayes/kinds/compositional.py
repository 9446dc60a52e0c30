"""The ``compositional`` kind: many taxa's counts per sample on the log-ratio scale, effects
pooled across taxa, subject random effects per taxon."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from mixedbayes.kinds.base import Kind, register_kind
from mixedbayes.spec.compositional import CompositionalSpec

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.compile.context import BuildContext
    from mixedbayes.design.base import ModelDesign
    from mixedbayes.design.compositional import CompositionalDesign
    from mixedbayes.priors.table import PriorTable
    from mixedbayes.spec.model import ModelSpec

__all__ = ["CompositionalKind"]


@register_kind
class CompositionalKind(Kind):
    """``compositional``: ``b`` (term × taxon, CLR), ``tau_b`` / ``slab_b`` (horseshoe) or
    ``sd_b`` (the taxon effects' SD per coefficient), ``sd_<g>`` / ``r_<g>`` per group term
    and taxon (``tau_sd_<g>`` and ``taxon_sd_<g>`` with ``group_sd: taxon``), ``phi`` or
    ``sigma``."""

    name = "compositional"
    spec_type = CompositionalSpec
    capabilities: ClassVar[frozenset[str]] = frozenset({"taxa"})

    def design(self, spec: ModelSpec, data: pd.DataFrame) -> CompositionalDesign:
        from mixedbayes.design.compositional import make_compositional_design

        return make_compositional_design(cast(CompositionalSpec, spec), data)

    def default_priors(self, design: ModelDesign) -> PriorTable:
        from mixedbayes.priors.compositional import default_compositional_priors

        return default_compositional_priors(cast("CompositionalDesign", design))

    def positive_classes(self, design: ModelDesign) -> tuple[str, ...]:
        from mixedbayes.priors.compositional import COMPOSITIONAL_POSITIVE

        return COMPOSITIONAL_POSITIVE

    def coords(self, design: ModelDesign) -> dict[str, list[Any]]:
        return cast("CompositionalDesign", design).coords()

    def build(self, design: ModelDesign, priors: PriorTable, ctx: BuildContext) -> Any:
        from mixedbayes.compile.compositional import add_compositional

        return add_compositional(cast("CompositionalDesign", design), priors, ctx)

    def family_variables(self, design: ModelDesign) -> list[str]:
        from mixedbayes.compile.compositional import tau_sd_name

        d = cast("CompositionalDesign", design)
        pooled = {"taxa": ["sd_b"], "horseshoe": ["tau_b", "slab_b"]}.get(d.spec.pooling, [])
        pooled = pooled if d.slopes else []
        spread = [tau_sd_name(g.name) for g in d.groups] if d.spec.group_sd == "taxon" else []
        extra = {"dirichlet_multinomial": "phi"}.get(d.spec.likelihood, "sigma")
        return [*pooled, *spread, extra]

    def response_columns(self, design: ModelDesign) -> list[str]:
        return list(cast("CompositionalDesign", design).taxa)

    def replicate_template(self, spec: ModelSpec, data: Any) -> Any:
        """Both tables as given (the counts' index holds the sample ids)."""
        from mixedbayes.design.compositional import _tables

        counts, samples = _tables(data)
        return {"counts": counts.copy(), "samples": samples.copy()}

    def replicate_columns(
        self,
        design: ModelDesign,
        template: Any,
        draws: dict[str, Any],
        observed: dict[str, Any],
        rng: Any,
    ) -> dict[str, dict[str, Any]]:
        """The simulated counts of the taxa kept, in the samples the model uses (dropped
        taxa and samples keep the template's values)."""
        import numpy as np

        from mixedbayes.errors import SpecError

        d = cast("CompositionalDesign", design)
        if d.spec.likelihood == "logratio_normal":
            raise SpecError(
                "SBC simulates counts; logratio_normal models log-ratios of zero-replaced "
                "compositions, which have no counts to simulate.",
                where="likelihood",
                hint="calibrate the count likelihood (multinomial or dirichlet_multinomial).",
            )
        counts = template["counts"]
        rows = counts.index.astype(str).get_indexer([str(i) for i in d.obs_index])
        simulated = np.asarray(observed["counts"], dtype=np.int64)
        out = {}
        columns = [str(c) for c in counts.columns]
        for j, taxon in enumerate(d.taxa):
            column = counts.iloc[:, columns.index(taxon)].to_numpy().astype(np.int64).copy()
            column[rows] = simulated[:, j]
            out[taxon] = column
        return {"counts": out}

    def describe(self, spec: ModelSpec) -> str:
        s = cast(CompositionalSpec, spec)
        return f"taxa {s.formula} ({s.likelihood}, {s.transform})"

    def report_items(self, spec: ModelSpec) -> list[tuple[str, str]]:
        s = cast(CompositionalSpec, spec)
        return [
            ("likelihood", s.likelihood),
            ("log-ratio scale", s.transform),
            ("zeros", s.zeros),
            (
                "pooling",
                {
                    "taxa": "taxon effects share an SD per coefficient",
                    "horseshoe": "regularised horseshoe across taxa per coefficient",
                }.get(s.pooling, "none"),
            ),
            (
                "group SDs",
                "per taxon, log-normal around the pooled SD"
                if s.group_sd == "taxon"
                else "one per term, shared by every taxon",
            ),
        ]
