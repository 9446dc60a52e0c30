"""Survival building blocks (fast, no sampling): quadrature, every registered baseline hazard
against its NumPy/SciPy cumulative hazard, NumPy against pytensor, the B-spline basis
against SciPy's, and the errors users see."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from mixedbayes.errors import DataError, SpecError
from mixedbayes.survival import (
    BASELINES,
    Baseline,
    gauss_legendre,
    get_baseline,
    interval_nodes,
    log_likelihood_rows,
    reference_log_likelihood,
)
from mixedbayes.survival.baselines import BSplineBaseline

#: Uniform sampling ranges of the parameters; other names use ``DEFAULT_RANGE``.
THETA_RANGES = {"shape": (0.5, 3.0), "gompertz_rate": (-0.3, 0.3)}
DEFAULT_RANGE = (-1.5, 0.5)
NODES = 15
RTOL = 1e-6
#: A 15-node rule on an interval starting at or near t = 0 where h0 is singular at 0
#: (Weibull t^(shape-1), shape 0.5: ~3% of H0); such baselines say ``smooth_at_zero =
#: False``. Rows with ``start >= NEAR_ZERO * (stop - start)`` are held to ``RTOL``.
RTOL_SINGULAR_FROM_ZERO = 5e-2
NEAR_ZERO = 0.1
NAMES = BASELINES.names()


def simulate_rows(seed: int, rows: int = 40) -> dict[str, np.ndarray]:
    """Stop times, events (some censored), starts (half 0, half > 0), a linear predictor."""
    rng = np.random.default_rng(seed)
    stop = rng.uniform(0.2, 10.0, rows)
    event = (rng.uniform(size=rows) < 0.6).astype(float)
    event[:2] = (1.0, 0.0)
    start = np.where(np.arange(rows) % 2 == 0, 0.0, rng.uniform(0.0, 0.9, rows) * stop)
    return {"start": start, "stop": stop, "event": event, "lin_pred": rng.normal(0, 0.5, rows)}


def fitted(name: str, data: Mapping[str, np.ndarray]) -> Baseline:
    return get_baseline(name).setup(data["stop"], data["event"], entry=data["start"])


def draw_theta(baseline: Baseline, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = {}
    for p in baseline.params():
        low, high = THETA_RANGES.get(p.name, DEFAULT_RANGE)
        value = rng.uniform(low, high, p.size) if p.size else np.float64(rng.uniform(low, high))
        theta[p.name] = value
    return theta


# --------------------------------------------------------------------------- quadrature
@pytest.mark.parametrize("n", [1, 2, 5, 15])
def test_gauss_legendre_exact_to_degree_2n_minus_1(n: int) -> None:
    rng = np.random.default_rng(n)
    lower = rng.uniform(-3, 3, 20)
    upper = lower + rng.uniform(0, 4, 20)
    nodes, weights = interval_nodes(lower, upper, n)
    assert nodes.shape == weights.shape == (20, n)
    for degree in range(2 * n):
        c = rng.normal(size=degree + 1)
        antideriv = np.polynomial.polynomial.polyint(c)
        exact = np.polynomial.polynomial.polyval(
            upper, antideriv
        ) - np.polynomial.polynomial.polyval(lower, antideriv)
        got = np.sum(weights * np.polynomial.polynomial.polyval(nodes, c), axis=1)
        np.testing.assert_allclose(got, exact, rtol=1e-10, atol=1e-10, err_msg=f"degree {degree}")
    # degree 2n is not integrated exactly (the test can tell exact from inexact)
    got = np.sum(weights * nodes ** (2 * n), axis=1)
    exact = (upper ** (2 * n + 1) - lower ** (2 * n + 1)) / (2 * n + 1)
    assert np.max(np.abs(got - exact)) > 1e-8


def test_interval_nodes_zero_length_and_breaks() -> None:
    lower = np.array([0.0, 1.0, 2.0, 3.0])
    upper = np.array([0.0, 4.0, 2.0, 5.0])
    nodes, weights = interval_nodes(lower, upper, 4)
    assert np.all(weights[[0, 2]] == 0.0)
    assert np.all(weights[[1, 3]] > 0.0)
    np.testing.assert_allclose(np.sum(weights, axis=1), upper - lower, rtol=1e-14)
    # split at breaks: |x - 2.5| is exact piecewise, not as one interval
    nodes, weights = interval_nodes(lower, upper, 4, breaks=[2.5, 2.5, 10.0])
    assert nodes.shape == (4, 12)
    assert np.all((nodes >= lower[:, None]) & (nodes <= upper[:, None]))
    got = np.sum(weights * np.abs(nodes - 2.5), axis=1)
    exact = np.array([0.0, (1.5**2 + 1.5**2) / 2, 0.0, (2.5**2 - 0.5**2) / 2])
    np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-14)
    nodes, weights = interval_nodes(lower, upper, 4)
    assert abs(np.sum(weights[1] * np.abs(nodes[1] - 2.5)) - exact[1]) > 1e-6


def test_quadrature_errors() -> None:
    with pytest.raises(SpecError, match="quadrature"):
        gauss_legendre(0)
    with pytest.raises(DataError, match="rows 1"):
        interval_nodes(np.array([0.0, 2.0]), np.array([1.0, 1.0]), 3)


# --------------------------------------------------------------------------- likelihood
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", NAMES)
def test_quadrature_likelihood_matches_reference(name: str, seed: int) -> None:
    data = simulate_rows(seed)
    baseline = fitted(name, data)
    theta = draw_theta(baseline, seed + 100)
    start, stop, event, lp = data["start"], data["stop"], data["event"], data["lin_pred"]
    nodes, weights = interval_nodes(start, stop, NODES, breaks=baseline.breakpoints())
    log_h_stop = baseline.log_hazard(stop, theta, np) + lp
    log_h_nodes = baseline.log_hazard(nodes, theta, np) + lp[:, None]
    got = log_likelihood_rows(log_h_stop, log_h_nodes, weights, event, np)
    ref = reference_log_likelihood(baseline, theta, start, stop, event, lp)
    assert got.shape == ref.shape == stop.shape
    cumulative = np.exp(lp) * (
        baseline.cumulative_hazard(stop, theta) - baseline.cumulative_hazard(start, theta)
    )
    assert np.all(cumulative > 0)
    near_zero = (start < NEAR_ZERO * (stop - start)) & (not baseline.smooth_at_zero)
    rtol = np.where(near_zero, RTOL_SINGULAR_FROM_ZERO, RTOL)
    assert np.sum(~near_zero) >= 10
    err = np.abs(got - ref)
    assert np.all(err <= rtol * (np.abs(ref) + cumulative)), (err / cumulative).max()


@pytest.mark.parametrize("name", NAMES)
def test_censored_rows_have_no_log_hazard_term(name: str) -> None:
    data = simulate_rows(3)
    baseline = fitted(name, data)
    theta = draw_theta(baseline, 3)
    event = data["event"]
    nodes, weights = interval_nodes(data["start"], data["stop"], NODES)
    log_h_nodes = baseline.log_hazard(nodes, theta, np)
    log_h_stop = baseline.log_hazard(data["stop"], theta, np)
    base = log_likelihood_rows(log_h_stop, log_h_nodes, weights, event, np)
    shifted = log_likelihood_rows(log_h_stop + 5.0, log_h_nodes, weights, event, np)
    np.testing.assert_allclose(shifted - base, 5.0 * event, atol=1e-12)
    poisoned = np.where(event > 0, log_h_stop, np.inf)
    same = log_likelihood_rows(poisoned, log_h_nodes, weights, event, np)
    np.testing.assert_array_equal(same, base)
    assert np.any(event == 0) and np.any(event == 1)


def test_piecewise_closed_form() -> None:
    baseline = get_baseline("piecewise", pieces=3).setup(
        np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), np.ones(6)
    )
    edges = baseline.breaks
    assert edges[0] == 0.0 and len(edges) == 3 and np.all(np.diff(edges) > 0)
    theta = {"log_h0": np.log(np.array([0.5, 1.0, 2.0]))}
    t = np.array([0.0, edges[1], 0.5 * (edges[1] + edges[2]), edges[2], edges[2] + 7.0])
    expected = np.array(
        [
            0.0,
            0.5 * edges[1],
            0.5 * edges[1] + 1.0 * 0.5 * (edges[2] - edges[1]),
            0.5 * edges[1] + 1.0 * (edges[2] - edges[1]),
            0.5 * edges[1] + 1.0 * (edges[2] - edges[1]) + 2.0 * 7.0,
        ]
    )
    np.testing.assert_allclose(baseline.cumulative_hazard(t, theta), expected, rtol=1e-14)
    np.testing.assert_allclose(
        baseline.log_hazard(t, theta, np), np.log([0.5, 1.0, 1.0, 2.0, 2.0]), rtol=1e-14
    )


def test_weibull_and_gompertz_closed_forms() -> None:
    t = np.array([0.0, 0.3, 1.0, 4.0])
    weibull = get_baseline("weibull")
    np.testing.assert_allclose(
        weibull.cumulative_hazard(t, {"log_h0": np.log(2.0), "shape": 1.0}), 2.0 * t, rtol=1e-14
    )
    gompertz = get_baseline("gompertz")
    flat = gompertz.cumulative_hazard(t, {"log_h0": np.log(3.0), "gompertz_rate": 0.0})
    np.testing.assert_allclose(flat, 3.0 * t, rtol=1e-14)
    near = gompertz.cumulative_hazard(t, {"log_h0": np.log(3.0), "gompertz_rate": 1e-9})
    np.testing.assert_allclose(near, flat, rtol=1e-8)


# --------------------------------------------------------------------------- pytensor
def probe_times(baseline: Baseline, stop: np.ndarray) -> np.ndarray:
    """Times including 0, near 0, the breakpoints and beyond the follow-up."""
    extra = [0.0, 1e-12, 1e-3, *baseline.breakpoints(), float(stop.max()), 2 * float(stop.max())]
    return np.concatenate([np.array(extra), np.linspace(0.05, stop.max(), 11)])


@pytest.mark.parametrize("name", NAMES)
def test_pytensor_matches_numpy_with_finite_gradient(name: str) -> None:
    import pytensor
    import pytensor.tensor as pt

    from mixedbayes._system import python_ops

    data = simulate_rows(4)
    baseline = fitted(name, data)
    theta = draw_theta(baseline, 4)
    t_values = probe_times(baseline, data["stop"])
    t = pt.dvector("t")
    symbols = {
        p.name: pt.dvector(p.name) if p.size else pt.dscalar(p.name) for p in baseline.params()
    }
    log_h = baseline.log_hazard(t, symbols, pt)
    wrt = list(symbols.values())
    with python_ops():
        fn = pytensor.function([t, *wrt], [log_h, *pt.grad(log_h.sum(), wrt)])
        value, *grads = fn(t_values, *(theta[n] for n in symbols))
    expected = baseline.log_hazard(t_values, theta, np)
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(expected))

    def total(values: Mapping[str, np.ndarray]) -> float:
        return float(np.sum(baseline.log_hazard(t_values, values, np)))

    for n, g in zip(symbols, grads, strict=True):
        g = np.atleast_1d(np.asarray(g, dtype=float))
        assert np.all(np.isfinite(g)), n
        base = np.atleast_1d(np.asarray(theta[n], dtype=float))
        for i in range(base.size):
            h = 1e-6 * max(1.0, abs(base[i]))
            up, down = base.copy(), base.copy()
            up[i] += h
            down[i] -= h
            shape = np.shape(theta[n])
            fd = (
                total({**theta, n: up.reshape(shape)}) - total({**theta, n: down.reshape(shape)})
            ) / (2 * h)
            np.testing.assert_allclose(g[i], fd, rtol=1e-5, atol=1e-6, err_msg=f"{n}[{i}]")


def test_pytensor_likelihood_rows_match_numpy() -> None:
    import pytensor.tensor as pt

    from mixedbayes._system import python_ops

    rng = np.random.default_rng(5)
    log_h_stop = rng.normal(size=6)
    log_h_nodes = rng.normal(size=(6, 3))
    weights = rng.uniform(size=(6, 3))
    event = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    symbolic = log_likelihood_rows(
        pt.as_tensor(log_h_stop), pt.as_tensor(log_h_nodes), pt.as_tensor(weights), event, pt
    )
    with python_ops():
        got = symbolic.eval()
    expected = log_likelihood_rows(log_h_stop, log_h_nodes, weights, event, np)
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    np.testing.assert_allclose(
        expected, event * log_h_stop - np.sum(weights * np.exp(log_h_nodes), axis=1), rtol=1e-14
    )


# --------------------------------------------------------------------------- B-spline basis
@pytest.mark.parametrize(("degree", "knots"), [(1, 0), (2, 5), (3, 4), (2, 1)])
def test_bspline_basis_matches_scipy(degree: int, knots: int) -> None:
    data = simulate_rows(6, rows=60)
    baseline = get_baseline("bspline", degree=degree, knots=knots).setup(
        data["stop"], data["event"]
    )
    assert isinstance(baseline, BSplineBaseline)
    assert len(baseline.interior) == knots
    upper = baseline.upper
    assert upper == data["stop"].max()
    t = np.concatenate([np.linspace(0.0, upper, 201), baseline.breakpoints(), [-1.0, upper + 3]])
    basis = baseline.basis(t, np)
    assert basis.shape == (t.size, baseline.n_basis())
    np.testing.assert_allclose(basis, baseline.design_matrix(t), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(basis.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(basis >= -1e-15)


# --------------------------------------------------------------------------- errors, setup
def test_unknown_baseline_and_option() -> None:
    with pytest.raises(SpecError, match="weibul") as info:
        get_baseline("weibul")
    assert "survival.baseline" in str(info.value) and "'weibull'" in str(info.value)
    with pytest.raises(SpecError, match="knotz") as info:
        get_baseline("bspline", knotz=4)
    assert "knots" in str(info.value)
    with pytest.raises(SpecError, match="pieces"):
        get_baseline("piecewise", pieces=0)
    with pytest.raises(SpecError, match="interior"):
        get_baseline("bspline", interior=(1.0,))


def test_setup_places_knots_and_checks_data() -> None:
    data = simulate_rows(7, rows=80)
    events = data["stop"][data["event"] > 0]
    pw = get_baseline("piecewise", pieces=4).setup(data["stop"], data["event"])
    np.testing.assert_allclose(pw.breakpoints(), np.quantile(events, [0.25, 0.5, 0.75]))
    assert len(pw.params()[0].labels) == pw.params()[0].size == 4
    assert len(set(pw.params()[0].labels)) == 4
    bs = get_baseline("bspline", knots=3).setup(data["stop"], data["event"])
    np.testing.assert_allclose(bs.breakpoints()[:-1], np.quantile(events, [0.25, 0.5, 0.75]))
    with pytest.raises(DataError, match="rows 0"):
        get_baseline("weibull").setup(np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    with pytest.raises(DataError, match=r"survival\.event"):
        get_baseline("bspline").setup(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    with pytest.raises(DataError, match=r"survival\.entry"):
        get_baseline("piecewise").setup(np.array([1.0, 2.0]), np.ones(2), entry=np.array([0, 3.0]))


def test_smooth_bspline_is_integrated_without_splitting_at_knots() -> None:
    """A degree-2 B-spline log hazard is integrated over each interval whole in the model
    (``quadrature_breaks``); 15 nodes keep the cumulative hazard within 0.5 % of SciPy's
    (0.15 % here: a change of the log-likelihood far below the posterior's spread; splitting
    at the 6 knots would make it exact to rounding and the pbc2 fit 4× slower)."""
    from mixedbayes.survival import get_baseline, interval_nodes

    rng = np.random.default_rng(5)
    stop = rng.uniform(0.2, 12.0, 60)
    event = rng.integers(0, 2, 60)
    base = get_baseline("bspline").setup(stop, event)
    assert base.quadrature_breaks() == ()
    assert get_baseline("piecewise").setup(stop, event).quadrature_breaks()
    theta = {"h0_coef": rng.normal(-3.0, 0.7, base.n_basis())}
    nodes, weights = interval_nodes(np.zeros_like(stop), stop, 15, breaks=base.quadrature_breaks())
    assert nodes.shape == (60, 15)
    got = np.sum(weights * np.exp(base.log_hazard(nodes, theta, np)), axis=1)
    np.testing.assert_allclose(got, base.cumulative_hazard(stop, theta), rtol=5e-3)


def test_hazard_nodes_split_at_breaks_without_multiplying_nodes() -> None:
    """The model's quadrature: 15 nodes over 6 pieces is 5 per piece (30, not 90), and a
    piecewise hazard times exp(b·t) (a value association of a linear trajectory) is still
    integrated to 1e-9 of its closed form."""
    from mixedbayes.survival import get_baseline, hazard_nodes

    rng = np.random.default_rng(11)
    stop = rng.uniform(0.5, 10.0, 50)
    start = stop * rng.uniform(0, 0.6, 50)
    base = get_baseline("piecewise").setup(stop, rng.integers(0, 2, 50))
    breaks = base.quadrature_breaks()
    nodes, weights = hazard_nodes(start, stop, 15, breaks)
    assert nodes.shape == (50, 5 * (len(breaks) + 1))
    assert hazard_nodes(start, stop, 15)[0].shape == (50, 15)
    theta = {"log_h0": rng.normal(-2, 0.5, len(breaks) + 1)}
    b = 0.3
    got = np.sum(weights * np.exp(base.log_hazard(nodes, theta, np) + b * nodes), axis=1)
    edges = np.concatenate([[0.0], np.asarray(breaks), [np.inf]])
    expected = np.zeros(50)
    for j in range(len(edges) - 1):
        lo = np.clip(start, edges[j], edges[j + 1])
        hi = np.clip(stop, edges[j], edges[j + 1])
        expected += np.exp(theta["log_h0"][j]) * (np.exp(b * hi) - np.exp(b * lo)) / b
    np.testing.assert_allclose(got, expected, rtol=1e-9)
