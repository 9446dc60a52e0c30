"""The ``compositional`` kind: counts (or proportions) of many taxa per sample, modelled on
the log-ratio scale with effects pooled across taxa and subject random effects."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from mixedbayes.spec.model import FamilySpec, ModelSpec, _Strict, checked_formula, register_kind

__all__ = ["LIKELIHOODS", "CompositionalSpec", "TaxaFilter"]

#: The likelihoods of the kind: counts with a multinomial logistic-normal (a latent residual
#: per sample and taxon), counts with a Dirichlet-multinomial, or the log-ratio coordinates
#: of the compositions as a normal outcome.
LIKELIHOODS = ("multinomial", "dirichlet_multinomial", "logratio_normal")

#: The response placeholder of the right-hand-side formula (the counts are the response).
RESPONSE = "composition__"


class TaxaFilter(_Strict):
    """Which taxa to keep: present (count > 0) in at least ``min_prevalence`` of the samples
    and with at least ``min_count`` reads in all."""

    min_prevalence: float = Field(default=0.0, ge=0.0, le=1.0)
    min_count: float = Field(default=0.0, ge=0.0)


@register_kind
class CompositionalSpec(ModelSpec):
    """A compositional model of the taxa of each sample.

    Attributes
    ----------
    formula : str
        The right-hand side over the sample metadata, lme4 syntax:
        ``"~ group * timepoint + (1 | subject)"``. Each coefficient has one effect per taxon
        on the log-ratio (CLR) scale; each group-effect term one effect per level and taxon.
    sample : str, optional
        The samples table's column of sample ids (default: its index); the counts table's
        index holds the same ids (or a column of that name: a CSV read without an index).
    taxa : "all", list of str, or TaxaFilter
        The taxa modelled (columns of the counts table). Taxa with no reads at all are
        dropped with a warning whatever this says.
    likelihood : {"multinomial", "dirichlet_multinomial", "logratio_normal"}
        ``multinomial`` (default): counts with a logistic-normal residual per sample and
        taxon (``sigma`` per taxon, as fido's pibble); ``dirichlet_multinomial``: counts,
        overdispersion through one concentration ``phi`` (cheaper, but one concentration
        for every taxon and sample: overconfident when abundant taxa vary more than the
        multinomial allows); ``logratio_normal``: the transformed compositions as a normal
        outcome (zeros replaced first).
    transform : {"clr", "alr", "ilr"}
        The log-ratio scale of ``logratio_normal``'s outcome and of reported effects
        (``mixedbayes.compositional.TRANSFORMS``); the model's own effects are CLR.
    reference : str, optional
        The ALR reference taxon (default: the most prevalent).
    factors : int
        ``multinomial`` only: a low-rank residual covariance across taxa, ``Λ Λᵀ + diag(σ²)``
        with ``factors`` columns of loadings ``Λ`` (taxa × factors; lower-triangular with a
        positive diagonal, so the factors are identified) and per-sample factor scores
        (default 0: a diagonal residual).
    zeros : {"model", "pseudocount", "multiplicative"}
        ``model`` (default for counts) leaves zeros to the count likelihood; the others
        replace them (needed by ``logratio_normal``).
    zero_value : float, optional
        The pseudocount (default 0.5) or the multiplicative rule's fraction of the detection
        limit (default 0.65: of one read, or of the smallest non-zero proportion).
    pooling : {"horseshoe", "taxa", "none"}
        ``horseshoe`` (default): a regularised horseshoe per coefficient (``tau_b`` global,
        ``lambda_b`` per taxon, ``slab_b``): most taxa shrunk hard to no change, the few
        large effects left alone — for the sparse truth of most studies (few taxa change):
        fewer false calls, large effects not pulled toward the rest; ``taxa``: each
        coefficient's taxon effects share a normal prior whose SD is estimated (``sd_b``);
        ``none``: fixed prior SDs.
    group_sd : {"shared", "taxon"}
        ``shared`` (default): one SD per group term (``sd_<g>``) for every taxon;
        ``taxon``: an SD per term and taxon (``taxon_sd_<g>``), log-normal around the pooled
        ``sd_<g>`` with a spread ``tau_sd_<g>`` per term (for a subject-level trait strong
        in a few taxa).

    Data: ``mb.fit(spec, {"counts": counts, "samples": samples})``, counts samples × taxa
    with the sample ids as index.
    """

    kind: Literal["compositional"] = "compositional"  # type: ignore[assignment]
    formula: str
    sample: str | None = None
    taxa: Any = "all"
    likelihood: Literal["multinomial", "dirichlet_multinomial", "logratio_normal"] = "multinomial"
    transform: str = "clr"
    reference: str | None = None
    zeros: str = "model"
    zero_value: float | None = Field(default=None, gt=0)
    pooling: Literal["horseshoe", "taxa", "none"] = "horseshoe"
    group_sd: Literal["shared", "taxon"] = "shared"
    factors: int = Field(default=0, ge=0)

    allowed_families: ClassVar[tuple[str, ...] | None] = None

    @field_validator("formula")
    @classmethod
    def _rhs(cls, value: str) -> str:
        text = value.strip()
        if not text.startswith("~"):
            raise ValueError(
                f"the formula is the right-hand side over the sample metadata, starting with "
                f"'~' (the counts are the response), not {value!r}"
            )
        checked_formula(f"{RESPONSE} {text}")
        return text

    @field_validator("taxa", mode="before")
    @classmethod
    def _taxa(cls, value: Any) -> Any:
        if isinstance(value, TaxaFilter) or value == "all":
            return value
        if isinstance(value, dict):
            try:
                return TaxaFilter(**value)
            except ValidationError as exc:
                first = exc.errors()[0]
                key = ".".join(map(str, first["loc"]))
                raise ValueError(f"taxa.{key}: {first['msg']}") from None
        if isinstance(value, list | tuple) and value and all(isinstance(t, str) for t in value):
            return list(value)
        raise ValueError(
            "taxa is 'all', a list of taxa (columns of the counts), or filters such as "
            f"{{min_prevalence: 0.1, min_count: 10}}, not {value!r}"
        )

    @field_validator("transform")
    @classmethod
    def _transform(cls, value: str) -> str:
        from mixedbayes.compositional import TRANSFORMS

        if value not in TRANSFORMS.names():
            raise ValueError(f"unknown transform {value!r}; use one of {list(TRANSFORMS.names())}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_zeros(cls, value: Any) -> Any:
        """``zeros`` defaults by likelihood: ``model`` for counts, ``pseudocount`` for
        ``logratio_normal`` (whose log-ratios need zeros replaced)."""
        if isinstance(value, dict) and not value.get("zeros"):
            log_ratio = value.get("likelihood") == "logratio_normal"
            value = {**value, "zeros": "pseudocount" if log_ratio else "model"}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        from mixedbayes.compositional import ZEROS

        if self.family != FamilySpec():
            raise ValueError(
                "a compositional model chooses its likelihood with 'likelihood' "
                f"({list(LIKELIHOODS)}), not with 'family'"
            )
        zeros = self.zeros
        if zeros not in ZEROS.names():
            raise ValueError(f"unknown zeros {zeros!r}; use one of {list(ZEROS.names())}")
        if zeros == "model" and self.likelihood == "logratio_normal":
            raise ValueError(
                "logratio_normal takes log-ratios, which need zeros replaced: set zeros to "
                "'pseudocount' or 'multiplicative' (or use a count likelihood)"
            )
        if self.factors and self.likelihood != "multinomial":
            raise ValueError(
                "factors adds a low-rank residual covariance to the multinomial model's latent "
                f"log-abundances; {self.likelihood} has none: set likelihood: multinomial"
            )
        if self.reference is not None and self.transform != "alr":
            raise ValueError("reference is the ALR reference taxon: set transform: alr")
        return self

    def transform_options(self) -> dict[str, Any]:
        """The transform's options from the spec (the ALR reference)."""
        return {"reference": self.reference} if self.transform == "alr" else {}

    def zero_parameter(self) -> float:
        """The zero rule's parameter (its default when not given)."""
        if self.zero_value is not None:
            return float(self.zero_value)
        return 0.65 if self.zeros == "multiplicative" else 0.5
