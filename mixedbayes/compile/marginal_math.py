"""The algebra of the marginalised Gaussian LMM, written once for PyTensor and NumPy.

Matrices are nested lists of *entries* and vectors lists of entries; an entry is a tensor or
an array holding that element for every group (and, in NumPy, every posterior draw), so
every operation is elementwise on long vectors: no batched small-matrix routines, which are
slow on CPUs and awkward to differentiate. The dimensions (terms per factor, fixed effects)
are small, so the Python loops over them only build the expression.

Notation (one inner factor with levels p; optionally an outer factor with levels c that the
inner one is nested in; see :mod:`mixedbayes.compile.marginal`)::

    A_p = I + Liᵀ ZᵢᵀZᵢ Li / σ²      C_p = chol(A_p)     w_p = C_p⁻¹ Liᵀ Zᵢᵀe / σ²
    W_p = C_p⁻¹ Liᵀ ZᵢᵀZₒ / σ²                         (outer factor only)
    H_c = ZₒᵀZₒ / σ² − Σ_p W_pᵀW_p    h_c = Zₒᵀe / σ² − Σ_p W_pᵀ w_p
    B_c = I + Loᵀ H_c Lo              D_c = chol(B_c)     z_c = D_c⁻¹ Loᵀ h_c

    log p(y) = −½ [n log 2πσ² + Σ_p log|A_p| + eᵀe/σ² − Σ_p |w_p|²]
               + Σ_c [−½ log|B_c| + ½ |z_c|²]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Ops", "Terms", "backward", "cholesky", "forward", "marginal_terms"]

Mat = list[list[Any]]
Vec = list[Any]


@dataclass(frozen=True)
class Ops:
    """The few non-arithmetic operations: square root, log, and the sum of per-inner-level
    entries into their outer levels (``segment_sum(x)``)."""

    sqrt: Callable[[Any], Any]
    log: Callable[[Any], Any]
    segment_sum: Callable[[Any], Any]
    total: Callable[[Any], Any]


def cholesky(A: Mat, ops: Ops) -> Mat:
    """Lower Cholesky factor of the symmetric ``A``."""
    q = len(A)
    C: Mat = [[0.0] * q for _ in range(q)]
    for i in range(q):
        for j in range(i + 1):
            s = A[i][j] - sum((C[i][k] * C[j][k] for k in range(j)), start=0.0)
            C[i][j] = ops.sqrt(s) if i == j else s / C[j][j]
    return C


def forward(C: Mat, b: Vec) -> Vec:
    """``C⁻¹ b`` for lower-triangular ``C``."""
    w: Vec = []
    for i in range(len(b)):
        w.append((b[i] - sum((C[i][k] * w[k] for k in range(i)), start=0.0)) / C[i][i])
    return w


def backward(C: Mat, b: Vec) -> Vec:
    """``C⁻ᵀ b`` for lower-triangular ``C``."""
    q = len(b)
    w: Vec = [0.0] * q
    for i in reversed(range(q)):
        w[i] = (b[i] - sum((C[k][i] * w[k] for k in range(i + 1, q)), start=0.0)) / C[i][i]
    return w


def t_vec(L: Mat, v: Vec) -> Vec:
    """``Lᵀ v``."""
    return [sum((L[a][i] * v[a] for a in range(len(v))), start=0.0) for i in range(len(L[0]))]


def mat_vec(L: Mat, v: Vec) -> Vec:
    """``L v``."""
    return [sum((L[i][a] * v[a] for a in range(len(v))), start=0.0) for i in range(len(L))]


def congruence(L: Mat, S: Mat, R: Mat) -> Mat:
    """``Lᵀ S R``."""
    SR = [[sum((S[a][b] * R[b][j] for b in range(len(R))), start=0.0) for j in range(len(R[0]))]
          for a in range(len(S))]  # fmt: skip
    return [
        [sum((L[a][i] * SR[a][j] for a in range(len(L))), start=0.0) for j in range(len(R[0]))]
        for i in range(len(L[0]))
    ]


def residual_cross(Zty: Vec, ZtF: Mat, theta: Vec) -> Vec:
    """``Zᵀ(y − Fθ)`` from ``Zᵀy`` and ``ZᵀF``."""
    return [
        Zty[a] - sum((ZtF[a][k] * theta[k] for k in range(len(theta))), start=0.0)
        for a in range(len(Zty))
    ]


def _eye_plus(M: Mat, scale: Any) -> Mat:
    q = len(M)
    return [[M[i][j] / scale + (1.0 if i == j else 0.0) for j in range(q)] for i in range(q)]


@dataclass
class Terms:
    """What the log-likelihood and the conditional draws share."""

    C: Mat  # inner Cholesky factors
    w: Vec  # C⁻¹ Liᵀ Zᵢᵀe / σ²
    Zte: Vec  # Zᵢᵀe
    logdet_inner: Any
    quad_inner: Any
    D: Mat | None = None  # outer Cholesky factors
    z: Vec | None = None
    logdet_outer: Any = 0.0
    quad_outer: Any = 0.0


def marginal_terms(
    s: dict[str, Any], theta: Vec, s2: Any, Li: Mat, Lo: Mat | None, ops: Ops
) -> Terms:
    """The per-level terms of the module docstring.

    ``s`` holds the statistics as entry lists: ``ZtZ``, ``ZtF``, ``Zty`` per inner level and,
    with an outer factor, ``ZtO`` (inner), ``OtO``, ``OtF``, ``Oty`` (outer).
    """
    Zte = residual_cross(s["Zty"], s["ZtF"], theta)
    C = cholesky(_eye_plus(congruence(Li, s["ZtZ"], Li), s2), ops)
    w = forward(C, [x / s2 for x in t_vec(Li, Zte)])
    qi = len(w)
    out = Terms(
        C=C,
        w=w,
        Zte=Zte,
        logdet_inner=2.0 * sum((ops.log(C[i][i]) for i in range(qi)), start=0.0),
        quad_inner=sum((x * x for x in w), start=0.0),
    )
    if Lo is None:
        return out
    qo = len(Lo)
    G = congruence(Li, s["ZtO"], [[1.0 if a == b else 0.0 for b in range(qo)] for a in range(qo)])
    cols = [forward(C, [G[i][j] / s2 for i in range(qi)]) for j in range(qo)]  # W[:, j]
    H = [
        [
            s["OtO"][j][k] / s2
            - ops.segment_sum(sum((cols[j][i] * cols[k][i] for i in range(qi)), start=0.0))
            for k in range(qo)
        ]
        for j in range(qo)
    ]
    Ote = residual_cross(s["Oty"], s["OtF"], theta)
    h = [
        Ote[j] / s2 - ops.segment_sum(sum((cols[j][i] * w[i] for i in range(qi)), start=0.0))
        for j in range(qo)
    ]
    D = cholesky(_eye_plus(congruence(Lo, H, Lo), 1.0), ops)
    z = forward(D, t_vec(Lo, h))
    out.D, out.z = D, z
    out.logdet_outer = 2.0 * sum((ops.log(D[i][i]) for i in range(qo)), start=0.0)
    out.quad_outer = sum((x * x for x in z), start=0.0)
    return out


def log_likelihood(terms: Terms, ete: Any, s2: Any, n: int, ops: Ops) -> Any:
    """The marginal log-likelihood from :func:`marginal_terms`."""
    import math

    inner = n * (math.log(2 * math.pi) + ops.log(s2)) + ops.total(terms.logdet_inner)
    inner = inner + ete / s2 - ops.total(terms.quad_inner)
    outer = ops.total(terms.logdet_outer) - ops.total(terms.quad_outer)
    return -0.5 * (inner + outer)
