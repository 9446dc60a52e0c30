"""A safe expression language for user-written mean functions and ODE right-hand sides.

An expression such as ``"E0 + Emax * C / (EC50 + C)"`` or ``"-KA * A_gut"`` is parsed with
:mod:`ast` and checked against a small grammar; it is never passed to ``eval``, ``exec`` or
``compile``. The grammar allows:

* numeric constants (``1``, ``2.5``, ``1e-3``),
* names (free variables, looked up in an environment when evaluated),
* the binary operators ``+ - * / **`` and the unary operators ``+ -``, with parentheses,
* calls of the functions in :data:`FUNCTIONS` by bare name, with positional arguments only.

Anything else (attribute access, subscripts, strings, comparisons, conditionals, boolean
operators, lambdas, comprehensions, keyword or starred arguments, unknown functions) raises
:class:`~mixedbayes.errors.SpecError` naming the construct.

The checked tree is kept as a small immutable tree of its own, which :meth:`Expression.evaluate`
walks to build the value with numpy (arrays, floats) or pytensor (tensors, differentiable).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from mixedbayes.errors import SpecError

__all__ = ["FUNCTIONS", "Expression", "Function", "parse_expression"]

#: The deepest nesting of operators and calls accepted (guards the recursive walks).
MAX_DEPTH = 100


def _pt() -> Any:
    import pytensor.tensor as pt

    return pt


def _np_logit(p: Any) -> Any:
    return np.log(p) - np.log1p(-p)


def _np_expit(x: Any) -> Any:
    from scipy.special import expit

    return expit(x)


def _pt_logit(p: Any) -> Any:
    pt = _pt()
    return pt.log(p) - pt.log1p(-p)


class Function(NamedTuple):
    """A function callable from an expression.

    Parameters
    ----------
    arity : int
        Number of positional arguments.
    numpy : callable
        Implementation on numpy arrays and floats.
    pytensor : callable
        Implementation on pytensor tensors (imports pytensor when called).
    """

    arity: int
    numpy: Callable[..., Any]
    pytensor: Callable[..., Any]


def _unary(name: str) -> Function:
    return Function(1, getattr(np, name), lambda x: getattr(_pt(), name)(x))


def _binary(np_name: str, pt_name: str) -> Function:
    return Function(2, getattr(np, np_name), lambda x, y: getattr(_pt(), pt_name)(x, y))


_EXPIT = Function(1, _np_expit, lambda x: _pt().sigmoid(x))

#: Functions an expression may call, by name: ``name -> (arity, numpy, pytensor)``.
FUNCTIONS: dict[str, Function] = {
    "exp": _unary("exp"),
    "log": _unary("log"),
    "log1p": _unary("log1p"),
    "expm1": _unary("expm1"),
    "sqrt": _unary("sqrt"),
    "abs": _unary("abs"),
    "sin": _unary("sin"),
    "cos": _unary("cos"),
    "tanh": _unary("tanh"),
    "logit": Function(1, _np_logit, _pt_logit),
    "inv_logit": _EXPIT,
    "expit": _EXPIT,
    "pow": _binary("power", "power"),
    "minimum": _binary("minimum", "minimum"),
    "maximum": _binary("maximum", "maximum"),
}

_BINARY_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
}

_NUMPY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "**": np.power,
}

_PYTENSOR_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": lambda x, y: x / y,
    "**": lambda x, y: x**y,
}

# Names Python gives to constructs outside the grammar, for the error messages.
_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Slice: "slice",
    ast.IfExp: "conditional expression (x if c else y)",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator (and/or)",
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Starred: "starred argument (*x)",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.NamedExpr: "assignment expression (:=)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_BAD_OPERATORS: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Not: "not",
    ast.Invert: "~",
}


def _hint() -> str:
    return (
        "write numbers, names, + - * / ** and parentheses, and call only the functions "
        + ", ".join(sorted(FUNCTIONS))
        + " with positional arguments"
    )


# --- the checked tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Const:
    value: float


@dataclass(frozen=True)
class _Name:
    id: str


@dataclass(frozen=True)
class _Unary:
    op: str
    operand: _Node


@dataclass(frozen=True)
class _Binary:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Call:
    func: str
    args: tuple[_Node, ...]


type _Node = _Const | _Name | _Unary | _Binary | _Call


class _Converter:
    """Check an :mod:`ast` tree against the grammar and turn it into ``_Node``."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        self.names: dict[str, None] = {}

    def fail(self, what: str) -> SpecError:
        return SpecError(f"{what} is not allowed in expression {self.text!r}", where=self.where)

    def fail_construct(self, node: ast.AST, what: str) -> SpecError:
        segment = None
        if isinstance(node, ast.expr):
            segment = ast.get_source_segment(self.text, node)
        shown = f" {segment!r}" if segment and segment != self.text else ""
        return SpecError(
            f"{what}{shown} is not allowed in expression {self.text!r}",
            where=self.where,
            hint=_hint(),
        )

    def convert(self, node: ast.AST, depth: int = 0) -> _Node:
        if depth > MAX_DEPTH:
            raise SpecError(
                f"expression {self.text!r} is nested more than {MAX_DEPTH} levels deep",
                where=self.where,
                hint="split it into simpler expressions",
            )
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            op = _BINARY_OPS.get(type(node.op))
            if op is None:
                raise self.fail_construct(node, f"operator '{self.operator(node.op)}'")
            left = self.convert(node.left, depth + 1)
            right = self.convert(node.right, depth + 1)
            return _Binary(op, left, right)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub | ast.UAdd):
                operand = self.convert(node.operand, depth + 1)
                return _Unary("-" if isinstance(node.op, ast.USub) else "+", operand)
            raise self.fail_construct(node, f"operator '{self.operator(node.op)}'")
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        what = _CONSTRUCTS.get(type(node), f"the construct {type(node).__name__}")
        raise self.fail_construct(node, what)

    def operator(self, op: ast.AST) -> str:
        return _BAD_OPERATORS.get(type(op), type(op).__name__)

    def constant(self, node: ast.Constant) -> _Const:
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.fail_construct(node, f"the constant {value!r}")
        if isinstance(value, str | bytes):
            raise self.fail_construct(node, "string constant")
        if isinstance(value, complex):
            raise self.fail_construct(node, "complex number")
        if isinstance(value, int | float):
            try:
                return _Const(float(value))
            except OverflowError:
                raise self.fail_construct(node, "integer too large for a float") from None
        raise self.fail_construct(node, f"the constant {value!r}")  # pragma: no cover

    def name(self, node: ast.Name) -> _Name:
        name = node.id
        if name.startswith("__"):
            raise SpecError(
                f"the name {name!r} is not allowed in expression {self.text!r}",
                where=self.where,
                hint="names of variables must not start with '__'",
            )
        if name in FUNCTIONS:
            raise SpecError(
                f"{name!r} is a function and must be called, as in {name}(x), "
                f"in expression {self.text!r}",
                where=self.where,
                hint="rename the variable if it is not meant as the function",
            )
        self.names.setdefault(name, None)
        return _Name(name)

    def call(self, node: ast.Call, depth: int) -> _Call:
        if not isinstance(node.func, ast.Name):
            what = _CONSTRUCTS.get(type(node.func), type(node.func).__name__)
            raise self.fail_construct(node.func, f"call of a non-name ({what})")
        fname = node.func.id
        if fname not in FUNCTIONS:
            raise SpecError(
                f"unknown function {fname!r} in expression {self.text!r}",
                where=self.where,
                hint=_hint(),
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail_construct(arg, f"starred argument in call of {fname}")
        if node.keywords:
            kw = node.keywords[0]
            label = f"'{kw.arg}='" if kw.arg is not None else "'**'"
            raise self.fail_construct(
                node, f"keyword argument {label} in call of {fname} (keyword arguments)"
            )
        arity = FUNCTIONS[fname].arity
        if len(node.args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise SpecError(
                f"{fname} takes {arity} {plural}, got {len(node.args)} (wrong number of "
                f"arguments) in expression {self.text!r}",
                where=self.where,
                hint=_hint(),
            )
        args = tuple(self.convert(a, depth + 1) for a in node.args)
        return _Call(fname, args)


def _parse(text: str, where: str) -> tuple[_Node, tuple[str, ...]]:
    if not isinstance(text, str):
        raise SpecError(
            f"an expression must be a string, got {type(text).__name__}",
            where=where,
            hint="write it as text, e.g. 'E0 + Emax * C / (EC50 + C)'",
        )
    source = text.strip()
    if not source:
        raise SpecError("the expression is empty", where=where, hint=_hint())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        col = f" at column {err.offset}" if err.offset else ""
        what = "; a starred expression (*x) is not allowed" if source.startswith("*") else ""
        raise SpecError(
            f"cannot parse expression {text!r}: syntax error{col} ({err.msg}){what}",
            where=where,
            hint=_hint(),
        ) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as err:
        raise SpecError(
            f"cannot parse expression {text!r}: {type(err).__name__}",
            where=where,
            hint=_hint(),
        ) from None
    converter = _Converter(source, where)
    try:
        node = converter.convert(tree.body)
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops it first
        raise SpecError(f"expression {text!r} is nested too deeply", where=where) from None
    return node, tuple(converter.names)


# --- the public API -----------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text and its free variable names.

    Parameters
    ----------
    text : str
        The expression as written.
    names : tuple of str
        Free variable names, in order of first appearance, function names excluded.
    where : str, optional
        Key path of the expression in the spec, used in error messages.

    Examples
    --------
    >>> e = parse_expression("E0 + Emax * C / (EC50 + C)")
    >>> e.names
    ('E0', 'Emax', 'C', 'EC50')
    >>> float(e.evaluate({"E0": 1.0, "Emax": 2.0, "C": 3.0, "EC50": 1.0}))
    2.5
    """

    text: str
    names: tuple[str, ...]
    where: str = field(default="expression", compare=False)
    _node: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._node is None:
            node, names = _parse(self.text, self.where)
            if tuple(self.names) != names:
                raise ValueError(f"names {self.names} do not match the expression's {names}")
            object.__setattr__(self, "_node", node)

    def __str__(self) -> str:
        return self.text

    def evaluate(self, env: Mapping[str, Any], xp: Literal["numpy", "pytensor"] = "numpy") -> Any:
        """Compute the expression from the values of its names.

        Parameters
        ----------
        env : mapping of str to array-like or tensor
            A value for every name in :attr:`names` (extra entries are ignored). Values
            broadcast as in numpy.
        xp : {"numpy", "pytensor"}
            Build the value with numpy functions, or as a pytensor graph (differentiable).

        Returns
        -------
        numpy.ndarray or float or pytensor.tensor.TensorVariable

        Raises
        ------
        SpecError
            When ``env`` lacks some of the names (all of them are listed).
        """
        if xp not in ("numpy", "pytensor"):
            raise ValueError(f"xp must be 'numpy' or 'pytensor', got {xp!r}")
        missing = [n for n in self.names if n not in env]
        if missing:
            raise SpecError(
                f"expression {self.text!r} needs values for {', '.join(map(repr, missing))}",
                where=self.where,
                hint="define them as parameters, data columns or states",
            )
        if xp == "numpy":
            return _evaluate(self._node, env, _NUMPY_OPS, np.negative, numpy=True)
        pt = _pt()
        pt_env = {n: pt.as_tensor_variable(env[n]) for n in self.names}
        value = _evaluate(self._node, pt_env, _PYTENSOR_OPS, lambda x: -x, numpy=False)
        return pt.as_tensor_variable(value)


def _evaluate(
    node: _Node,
    env: Mapping[str, Any],
    ops: Mapping[str, Callable[[Any, Any], Any]],
    negate: Callable[[Any], Any],
    *,
    numpy: bool,
) -> Any:
    if isinstance(node, _Const):
        return np.float64(node.value) if numpy else node.value
    if isinstance(node, _Name):
        return env[node.id]
    if isinstance(node, _Unary):
        value = _evaluate(node.operand, env, ops, negate, numpy=numpy)
        return negate(value) if node.op == "-" else value
    if isinstance(node, _Binary):
        left = _evaluate(node.left, env, ops, negate, numpy=numpy)
        right = _evaluate(node.right, env, ops, negate, numpy=numpy)
        return ops[node.op](left, right)
    fn = FUNCTIONS[node.func]
    args = [_evaluate(a, env, ops, negate, numpy=numpy) for a in node.args]
    return fn.numpy(*args) if numpy else fn.pytensor(*args)


def parse_expression(text: str, *, where: str = "expression") -> Expression:
    """Parse and check an expression, without evaluating it.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"E0 + Emax * C / (EC50 + C)"``.
    where : str, optional
        Key path of the expression in the spec (e.g. ``"ode.rhs.A_gut"``), named in errors.

    Returns
    -------
    Expression

    Raises
    ------
    SpecError
        When the text is not a valid expression: the message names the construct at fault
        and the hint lists the allowed functions.
    """
    node, names = _parse(text, where)
    return Expression(text.strip(), names, where, node)
