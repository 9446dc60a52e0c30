"""The naming module: the plain part keeps today's names, parts are prefixed, group-level
names are shared, and names read back."""

from __future__ import annotations

import pytest

from mixedbayes.naming import OBS_DIM, Names, ParsedName, parse


def test_plain_part_gives_the_names_users_know() -> None:
    n = Names()
    assert (n.b, n.term_dim, n.intercept, n.b_slope, n.slope_dim) == (
        "b",
        "term",
        "Intercept",
        "b_slope",
        "slope",
    )
    assert n.obs_dim == OBS_DIM == "observation"
    assert (n.data("X"), n.data("index", "Subject"), n.param("sigma")) == (
        "X",
        "index_Subject",
        "sigma",
    )


def test_named_part_is_prefixed_and_group_names_are_not() -> None:
    n = Names("log_bili")
    assert (n.b, n.term_dim, n.obs_dim, n.param("sigma")) == (
        "b_log_bili",
        "log_bili_term",
        "observation_log_bili",
        "sigma_log_bili",
    )
    assert (n.data("X"), n.data("Z", "id")) == ("X_log_bili", "Z_log_bili_id")
    # one covariance per grouping factor spans every part
    assert (n.sd("id"), n.cor("id"), n.r("id")) == (Names.sd("id"), "cor_id", "r_id")
    assert (Names.group_term_dim("id"), Names.cor_dim("id")) == ("id_term", "id_term2")


def test_zero_inflation_part_matches_todays_names() -> None:
    zi = Names().scoped("zi")
    assert (zi.b, zi.term_dim, zi.data("X")) == ("b_zi", "zi_term", "X_zi")
    assert Names("y").scoped("zi").b == "b_y_zi"


def test_nonlinear_parameter_part_matches_todays_names() -> None:
    p = Names("log_CL")
    assert (p.b, p.term_dim, p.data("X")) == ("b_log_CL", "log_CL_term", "X_log_CL")


@pytest.mark.parametrize(
    ("name", "parts", "expected"),
    [
        ("sd_Subject", (), ParsedName("sd", group="Subject")),
        ("cor_clinic:patient", (), ParsedName("cor", group="clinic:patient")),
        ("cor_chol_Subject", (), ParsedName("cor_chol", group="Subject")),
        ("r_Subject", (), ParsedName("r", group="Subject")),
        ("b", (), ParsedName("b")),
        ("sigma", (), ParsedName("sigma")),
        ("b_log_bili", ("log_bili",), ParsedName("b", part="log_bili")),
        ("sigma_log_bili", ("log_bili", "ascites"), ParsedName("sigma", part="log_bili")),
        ("sigma_prop", ("log_CL",), ParsedName("sigma_prop")),
    ],
)
def test_parse_reads_names_back(name: str, parts: tuple[str, ...], expected: ParsedName) -> None:
    assert parse(name, parts) == expected


@pytest.mark.parametrize("part", ["", "log_bili", "zi"])
def test_parse_inverts_names(part: str) -> None:
    n = Names(part)
    parts = (part,) if part else ()
    assert parse(n.b, parts) == ParsedName("b", part=part)
    assert parse(n.param("sigma"), parts) == ParsedName("sigma", part=part)
    assert parse(n.sd("g"), parts) == ParsedName("sd", group="g")
