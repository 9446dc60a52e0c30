"""The safe expression language of nonlinear mean functions and ODE right-hand sides."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixedbayes.errors import SpecError
from mixedbayes.nonlinear import FUNCTIONS, Expression, parse_expression

X = np.array([0.2, 0.5, 1.5])
Y = np.array([0.3, 0.9, 0.4])
ENV = {"x": X, "y": Y, "E0": 1.0, "Emax": 4.0, "EC50": 2.0, "C": X}


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


VALID = [
    ("E0 + Emax * C / (EC50 + C)", 1.0 + 4.0 * X / (2.0 + X)),
    ("-x", -X),
    ("+x", X),
    ("x - y - 1", X - Y - 1),
    ("x / y / 2", X / Y / 2),
    ("2 ** x ** 2", 2 ** (X**2)),
    ("-x ** 2", -(X**2)),
    ("(x + y) * 3", (X + Y) * 3),
    ("1e-3 * x", 1e-3 * X),
    ("exp(x) + log(y)", np.exp(X) + np.log(Y)),
    ("log1p(x) * expm1(y)", np.log1p(X) * np.expm1(Y)),
    ("sqrt(x) + abs(-y)", np.sqrt(X) + np.abs(Y)),
    ("sin(x) * cos(y) + tanh(x)", np.sin(X) * np.cos(Y) + np.tanh(X)),
    ("logit(y)", _logit(Y)),
    ("inv_logit(x) + expit(y)", 1 / (1 + np.exp(-X)) + 1 / (1 + np.exp(-Y))),
    ("pow(x, y)", X**Y),
    ("minimum(x, y) + maximum(x, y)", np.minimum(X, Y) + np.maximum(X, Y)),
    ("exp(-log(x))", 1 / X),
    ("3", 3.0),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[v[0] for v in VALID])
def test_numpy_evaluation_matches_hand_computed(text: str, expected: object) -> None:
    value = parse_expression(text).evaluate(ENV)
    np.testing.assert_allclose(np.broadcast_to(value, np.shape(expected)), expected, rtol=1e-12)


def test_names_in_order_of_first_appearance_without_functions() -> None:
    e = parse_expression("E0 + Emax * exp(C) / (EC50 + C) + pow(E0, 2)")
    assert e.names == ("E0", "Emax", "C", "EC50")
    assert parse_expression(" 2 * 3 ").names == ()
    assert str(e) == e.text


def test_expression_equality_and_construction_from_text() -> None:
    a = parse_expression("KA * A_gut", where="ode.rhs.A_gut")
    b = Expression("KA * A_gut", ("KA", "A_gut"))
    assert a == b
    assert b.evaluate({"KA": 2.0, "A_gut": 3.0}) == 6.0
    with pytest.raises(ValueError, match="names"):
        Expression("KA * A_gut", ("A_gut",))


def test_missing_names_are_all_listed() -> None:
    e = parse_expression("E0 + Emax * C / (EC50 + C)", where="mean")
    with pytest.raises(SpecError, match="'Emax', 'EC50'") as err:
        e.evaluate({"E0": 1.0, "C": X})
    assert err.value.where == ["mean"]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[v[0] for v in VALID])
def test_pytensor_evaluation_equals_numpy(text: str, expected: object) -> None:
    import pytensor
    import pytensor.tensor as pt

    e = parse_expression(text)
    x, y = pt.dvector("x"), pt.dvector("y")
    env = {**ENV, "x": x, "y": y, "C": x}
    out = e.evaluate(env, xp="pytensor")
    f = pytensor.function([x, y], out, on_unused_input="ignore")
    np.testing.assert_allclose(
        np.broadcast_to(f(X, Y), np.shape(expected)), e.evaluate(ENV), rtol=1e-12
    )


def test_pytensor_evaluation_is_differentiable() -> None:
    import pytensor
    import pytensor.tensor as pt

    e = parse_expression(
        "E0 + Emax * C ** 2 / (EC50 + C) + logit(inv_logit(C)) * sqrt(abs(C)) + pow(C, 2)"
        " + minimum(C, 1) + maximum(C, 1) + tanh(log1p(C)) * expm1(C) - sin(C) / cos(C)"
    )
    c, emax = pt.dvector("C"), pt.dscalar("Emax")
    out = e.evaluate({"C": c, "Emax": emax, "E0": 1.0, "EC50": 2.0}, xp="pytensor")
    grads = pytensor.grad(out.sum(), [c, emax])
    g_c, g_emax = pytensor.function([c, emax], grads)(X, 4.0)
    assert np.all(np.isfinite(g_c)) and np.isfinite(g_emax)
    np.testing.assert_allclose(g_emax, np.sum(X**2 / (2.0 + X)), rtol=1e-12)
    # Check dC against central differences of the numpy evaluation.
    env = {"E0": 1.0, "EC50": 2.0, "Emax": 4.0}
    eps = 1e-6
    num = (e.evaluate({**env, "C": X + eps}) - e.evaluate({**env, "C": X - eps})) / (2 * eps)
    np.testing.assert_allclose(g_c, num, rtol=1e-6)


def test_invalid_xp() -> None:
    with pytest.raises(ValueError, match="xp"):
        parse_expression("x").evaluate({"x": 1.0}, xp="jax")  # type: ignore[arg-type]


BAD = [
    ("__import__('os').system('ls')", "attribute access"),
    ("__import__('os')", "unknown function '__import__'"),
    ("os.system", "attribute access"),
    ("().__class__", "attribute access"),
    ("x.y(1)", "attribute access"),
    ("x[0]", "subscript"),
    ("'a'", "string"),
    ("b'a'", "string"),
    ("x if y else z", "conditional expression"),
    ("x < 1", "comparison"),
    ("lambda: 1", "lambda"),
    ("open('f')", "unknown function 'open'"),
    ("exp(x, y)", "exp takes 1 argument, got 2"),
    ("pow(x)", "pow takes 2 arguments, got 1"),
    ("exp(x=1)", "keyword argument 'x='"),
    ("exp(**k)", "keyword argument"),
    ("[x for x in y]", "list comprehension"),
    ("(x for x in y)", "generator expression"),
    ("x and y", "boolean operator"),
    ("not x", "operator 'not'"),
    ("~x", "operator '~'"),
    ("x // 2", "operator '//'"),
    ("x % 2", "operator '%'"),
    ("x @ y", "operator '@'"),
    ('f"{x}"', "f-string"),
    ("*x", "starred"),
    ("exp(*x)", "starred"),
    ("unknownfn(x)", "unknown function 'unknownfn'"),
    ("", "empty"),
    ("   ", "empty"),
    ("x +", "syntax error"),
    ("x = 1", "syntax error"),
    ("x; y", "syntax error"),
    ("[x, y]", "list"),
    ("(x, y)", "tuple"),
    ("{x: y}", "dict"),
    ("(x := 1)", "assignment expression"),
    ("True", "constant True"),
    ("None", "constant None"),
    ("1j", "complex number"),
    ("exp + 1", "'exp' is a function"),
    ("__builtins__", "'__builtins__' is not allowed"),
    ("-" * 150 + "x", "nested more than"),
    ("(" * 300 + "x" + ")" * 300, "cannot parse"),
    ("x\x00", "cannot parse"),
]


@pytest.mark.parametrize(("text", "construct"), BAD, ids=[repr(b[0])[:40] for b in BAD])
def test_invalid_expressions_raise_spec_error_naming_the_construct(
    text: str, construct: str
) -> None:
    with pytest.raises(SpecError) as err:
        parse_expression(text, where="ode.rhs.A_gut")
    message = str(err.value)
    assert construct in message
    assert err.value.where == ["ode.rhs.A_gut"]
    if text.strip() and len(text) < 100 and "\x00" not in text:
        assert repr(text.strip()) in message or text.strip() in message


def test_hint_lists_the_allowed_functions() -> None:
    with pytest.raises(SpecError) as err:
        parse_expression("gamma(x)")
    hint = err.value.problems[0].hint
    assert all(name in hint for name in FUNCTIONS)


def test_non_string_is_rejected() -> None:
    with pytest.raises(SpecError, match="must be a string"):
        parse_expression(3)  # type: ignore[arg-type]


def test_no_eval_exec_or_compile_in_the_module() -> None:
    import ast
    import inspect

    import mixedbayes.nonlinear.expression as module

    tree = ast.parse(inspect.getsource(module))
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__"}


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_random_text_raises_only_spec_error(text: str) -> None:
    with contextlib.suppress(SpecError):
        parse_expression(text)


_ATOMS = st.sampled_from(["x", "y", "1", "2.5", "(", ")", "+", "-", "*", "/", "**", ","])
_TOKENS = st.sampled_from([*FUNCTIONS, "os", ".", "[", "]", "'", "<", "=", " ", "__"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_ATOMS, _TOKENS), max_size=25))
def test_random_token_soup_raises_only_spec_error(tokens: list[str]) -> None:
    try:
        e = parse_expression("".join(tokens))
    except SpecError:
        return
    # Whatever parses evaluates with numpy (values may be inf or nan, never an exception).
    with np.errstate(all="ignore"):
        e.evaluate(dict.fromkeys(e.names, 0.5))
