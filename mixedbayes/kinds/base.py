"""The model kind as an object: the one place that knows what a kind of model is.

A kind (``lmm``, ``glmm``, ``nonlinear``; later ``joint``, ``compositional``) knows its spec
class, how to design its spec on data, its default priors, how to build its model into a
:class:`~mixedbayes.compile.context.BuildContext`, the sampling variant it may offer (the
marginalised Gaussian LMM), the variables its summary shows, its response columns and its
capabilities. Stages, report sections, workflows and ``Fit`` ask the kind — they never
compare kind names. A new kind is one class in one module, registered with
:func:`register_kind`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mixedbayes.errors import SpecError
from mixedbayes.naming import Names
from mixedbayes.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.compile.context import BuildContext
    from mixedbayes.compile.model import CompiledModel
    from mixedbayes.design.base import ModelDesign
    from mixedbayes.design.groups import GroupFactor
    from mixedbayes.priors.table import PriorTable
    from mixedbayes.spec.model import ModelSpec

__all__ = [
    "CAPABILITIES",
    "KINDS",
    "Kind",
    "kind_of",
    "register_kind",
    "replicate_response",
]

#: What a kind's fits can do, beyond the summary, diagnostics, LOO and the report's core.
CAPABILITIES = {
    "predict": "fit.predict(newdata): predictions at the population or group level",
    "shrinkage": "fit.shrinkage(): no, partial and complete pooling per level",
    "trajectories": "fit.trajectories(): individual and population curves",
    "slopes": "fit.slopes() / fit.contrasts(): marginal effects on a reference grid",
    "naive": "mb.compare_naive(): the mixed model against naive regressions",
    "pk": "typical values, individual parameters, fitted (concentration) curves, regimens",
    "survival": "fit.predict_survival(newdata, times, landmark): dynamic survival predictions",
    "taxa": "fit.taxa_effects(): each taxon's effects with local false sign rates",
}


class Kind:
    """A model kind. Subclass, set the class variables, implement the methods, register.

    Class attributes
    ----------------
    name : str
        The spec's ``kind`` value.
    spec_type : type of ModelSpec
        The spec class of the kind (``kind_of`` finds a kind by it).
    capabilities : frozenset of str
        Keys of :data:`CAPABILITIES` the kind's fits offer.
    instead : dict of str to str
        For a capability the kind lacks, what its users should call instead.
    """

    name: ClassVar[str]
    spec_type: ClassVar[type[ModelSpec]]
    capabilities: ClassVar[frozenset[str]] = frozenset()
    instead: ClassVar[dict[str, str]] = {}

    # ------------------------------------------------------------------ stages
    def design(self, spec: ModelSpec, data: pd.DataFrame) -> ModelDesign:
        """Stage 2: apply ``spec`` to ``data`` (validated; ``data`` is not modified)."""
        raise NotImplementedError

    def default_priors(self, design: ModelDesign) -> PriorTable:
        """The default prior table of ``design``, each row with its provenance."""
        raise NotImplementedError

    def positive_classes(self, design: ModelDesign) -> tuple[str, ...]:
        """Prior classes besides ``sd`` that are positive (half priors allowed)."""
        return ()

    def coords(self, design: ModelDesign) -> dict[str, list[Any]]:
        """The model's coords (dims and their values)."""
        return design.coords()

    def build(self, design: ModelDesign, priors: PriorTable, ctx: BuildContext) -> Any:
        """Stage 3: add the kind's variables to ``ctx.model``; return the observed variable."""
        raise NotImplementedError

    def compile(
        self, design: ModelDesign, priors: PriorTable, marginalize: bool = True
    ) -> CompiledModel:
        """The compiled model: the plain model, and what NUTS samples.

        The default samples the plain model; a kind with a faster equivalent (the
        marginalised Gaussian LMM) overrides :meth:`sampling_variant`.
        """
        from mixedbayes.compile.context import BuildContext, new_model
        from mixedbayes.compile.model import CompiledModel

        variant = self.sampling_variant(design, priors, marginalize)
        if isinstance(variant, CompiledModel):
            return variant
        ctx = BuildContext(new_model(self.coords(design)))
        observed = self.build(design, priors, ctx)
        return CompiledModel(ctx.model, design, priors, observed.name, marginalization=variant)

    def sampling_variant(
        self, design: ModelDesign, priors: PriorTable, marginalize: bool
    ) -> CompiledModel | str:
        """A compiled model whose sampled model differs from the plain one, or the note of
        why the plain model is sampled (``""`` when there is nothing to say)."""
        return ""

    def point_fit(self, design: ModelDesign) -> bool:
        """Whether the chains start, by default, from a point fit (the mode of the
        log-density on the sampler's scale) rather than from the sampler's own start."""
        return False

    def initial_values(self, design: ModelDesign) -> dict[str, Any]:
        """Where the chains of this design start (or a point fit starts), by variable name
        (values on the variable's own scale); ``{}`` for the priors' centres."""
        return {}

    # ------------------------------------------------------------------ results
    def log_likelihood(self, design: ModelDesign, posterior: Any) -> np.ndarray | None:
        """The pointwise log-likelihood (chain, draw, rows) computed from ``posterior`` with
        NumPy, or None to have the model's own log-density evaluate it."""
        return None

    def log_likelihood_extra(
        self, design: ModelDesign, posterior: Any
    ) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Pointwise log-likelihoods of terms that are not observed variables (a joint
        model's survival rows), by name: their dims and values (chain, draw, ...)."""
        return {}

    def imputed_draws(
        self, posterior: Any, design: ModelDesign, seed: int | None
    ) -> dict[str, tuple[str, Any, np.ndarray]]:
        """The variables of the fit's ``imputed`` group (the spec's ``missing:``), by name:
        their dim, the row labels of the missing cells and their draws (chain, draw, cells);
        ``{}`` for a kind that imputes nothing by sampling."""
        return {}

    def loo_units(self, design: ModelDesign, log_likelihood: Any) -> Any:
        """What LOO leaves out when it is not one row of the observed variable: an
        ``xarray.DataArray`` (chain, draw, unit) summed from the ``log_likelihood`` group
        (a joint model: every measurement and the survival of one subject), named as it is
        stored; None for the rows."""
        return None

    def simulate(self, design: ModelDesign, posterior: Any, seed: int | None) -> Any:
        """Replicated responses (chain, draw, rows) at the fitted rows, drawn with NumPy from
        ``posterior``, or None to have PyMC draw them from the model.

        A kind with the ``predict`` capability simulates through its predictions
        (``kind="response"``); a family without a NumPy simulator raises
        ``NotImplementedError`` (PyMC then draws).
        """
        if "predict" not in self.capabilities:
            return None
        from mixedbayes.results.predict import predict_draws

        draws = predict_draws(posterior, design, None, kind="response", seed=seed)
        return np.asarray(draws.to_numpy())

    # ------------------------------------------------------------------ SBC replicates
    def replicate_spec(self, spec: ModelSpec) -> ModelSpec:
        """The spec SBC fits to its replicates (``spec`` itself unless the kind needs a
        setting for data simulated on a template's design)."""
        return spec

    def replicate_template(self, spec: ModelSpec, data: Any) -> Any:
        """The template data as SBC keeps it: a DataFrame with row positions as labels."""
        import pandas as pd

        from mixedbayes.errors import DataError

        if not isinstance(data, pd.DataFrame):
            raise DataError(
                f"template_data must be a pandas DataFrame, not {type(data).__name__}.",
                where="template_data",
            )
        return data.reset_index(drop=True)

    def replicate_columns(
        self,
        design: ModelDesign,
        template: Any,
        draws: dict[str, np.ndarray],
        observed: dict[str, np.ndarray],
        rng: np.random.Generator,
    ) -> dict[str, dict[str, np.ndarray]]:
        """The columns of one SBC replicate, by table (``""`` for a single DataFrame): the
        template's response column with the prior-predictive draw of the observed variable
        in the rows the model uses.

        Parameters
        ----------
        design : ModelDesign
            The design of ``template``.
        template : DataFrame
            From :meth:`replicate_template`.
        draws : dict of str to ndarray
            One prior draw of every free and deterministic variable.
        observed : dict of str to ndarray
            The prior-predictive draw of every observed variable, with ``draws``.
        rng : numpy.random.Generator
            For what the kind simulates itself.
        """
        (name,) = self.response_columns(design)
        (y,) = observed.values()
        return {"": {name: replicate_response(design, name, template, y)}}

    def parts(self, design: ModelDesign) -> tuple[str, ...]:
        """The named parts (submodels) of the model; ``()`` for a single plain part."""
        return ()

    def fixed_variables(self, design: ModelDesign) -> list[str]:
        """The fixed-effect variables, in summary order (``b``; ``b_<part>`` per part)."""
        return [Names(p).b for p in self.parts(design)] or [Names().b]

    def family_variables(self, design: ModelDesign) -> list[str]:
        """The response's own parameters (``sigma``, ``alpha``), in summary order."""
        return []

    def summary_variables(self, design: ModelDesign, include_group_levels: bool) -> list[str]:
        """The variables a summary shows, in order: fixed effects, ``sd_*``, ``cor_*``, the
        family's or error model's parameters, then ``r_*`` when asked."""
        names = self.fixed_variables(design)
        for g in design.groups:
            names.append(Names.sd(g.name))
            if g.correlated:
                names.append(Names.cor(g.name))
        names += self.family_variables(design)
        if include_group_levels:
            names += [Names.r(g.name) for g in design.groups]
        return names

    def response_columns(self, design: ModelDesign) -> list[str]:
        """The data columns holding the response (simulation replaces them, SBC)."""
        return [design.response]

    def subject_factor(self, design: ModelDesign) -> GroupFactor | None:
        """The grouping factor whose levels are the individuals followed over time.

        The factor with the most levels among those with at least two rows per level
        (median), so that an observation-level factor (``(1 | obs)``) is not taken for the
        individuals; the factor with the most levels when none has repeated rows; None
        without grouping factors.
        """
        import numpy as np

        groups = list(design.groups)
        if not groups:
            return None
        repeated = [
            g
            for g in groups
            if np.median(np.bincount(g.index[g.index >= 0], minlength=g.n_levels)) >= 2
        ]
        return max(repeated or groups, key=lambda g: g.n_levels)

    def describe(self, spec: ModelSpec) -> str:
        """The model in one line (its formula, or its structural model and parameters)."""
        return spec.kind

    def report_items(self, spec: ModelSpec) -> list[tuple[str, str]]:
        """Kind-specific lines of the report's model summary (name, value)."""
        return []

    # ------------------------------------------------------------------ capabilities
    def supports(self, capability: str) -> bool:
        """Whether the kind's fits offer ``capability`` (a key of :data:`CAPABILITIES`)."""
        return capability in self.capabilities

    def require(self, capability: str, method: str) -> None:
        """Raise a ``SpecError`` naming the alternative unless ``capability`` is offered."""
        if self.supports(capability):
            return
        offered = sorted(
            k for k, v in KINDS.items() if capability in v.capabilities and k != self.name
        )
        alt = self.instead.get(capability)
        hint = f"for a {self.name} fit use fit.{alt}." if alt else "no alternative yet."
        raise SpecError(
            f"fit.{method}() is not available for {self.name} fits "
            f"(kinds that offer it: {offered}).",
            where="kind",
            hint=hint,
        )


class _KindRegistry(Registry[Kind]):
    def items(self) -> list[tuple[str, Kind]]:
        return [(k, self._items[k]) for k in self.names()]


#: The registered kinds by name.
KINDS = _KindRegistry("model kind", "kind")


def replicate_response(
    design: ModelDesign, name: str, template: pd.DataFrame, y: np.ndarray
) -> np.ndarray:
    """The template's response column ``name`` with ``y`` in the rows ``design`` uses (as
    integers for a discrete family); a ``SpecError`` when ``name`` is not a column (a
    transformed response such as ``log(y)``)."""
    if name not in template.columns:
        raise SpecError(
            f"SBC replaces the response column with simulated values, but the response "
            f"{name!r} is not a column of the data.",
            where="formula",
            hint="compute the transformed response as a column first (df['log_y'] = ...) "
            "and use that column in the formula.",
        )
    column = template[name].astype("float64").copy()
    column.loc[list(design.obs_index)] = np.asarray(y)
    if getattr(design.family, "discrete", False) and column.notna().all():
        return column.round().astype("int64").to_numpy()
    return column.to_numpy()


def register_kind[K: type[Kind]](cls: K) -> K:
    """Class decorator registering an instance of the kind ``cls`` under ``cls.name``."""
    KINDS.add(cls.name, cls())
    return cls


def kind_of(spec: ModelSpec) -> Kind:
    """The kind of ``spec``: the kind whose spec class it is; else the kind registered under
    its ``kind``; else the kind of its nearest registered ancestor class.

    Raises
    ------
    SpecError
        When no kind fits, naming the registered ones.
    """
    exact = [k for k in KINDS if type(spec) is k.spec_type]
    if exact:
        return exact[0]
    name = str(getattr(spec, "kind", ""))
    if name in KINDS:
        return KINDS.get(name)
    near = [k for k in KINDS if isinstance(spec, k.spec_type)]
    if near:
        return max(near, key=lambda k: len(k.spec_type.__mro__))
    return KINDS.get(name or type(spec).__name__)
