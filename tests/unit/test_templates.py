"""Templates: variables, rendering, syntax errors."""

from __future__ import annotations

import pytest

from shared.domain.templates import TemplateError, Variable, parse, render, variables


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("no variables", set()),
        ("Hi {{name}}", {"name"}),
        ("Hi {{ name }}, {{  _x1 }} and {{name}}", {"name", "_x1"}),
        ("{{a}}{{b}}", {"a", "b"}),
        ("a stray }} is text", set()),
    ],
)
def test_lists_variables(template: str, names: set[str]) -> None:
    assert variables(template) == names


def test_parse_splits_text_and_variables() -> None:
    assert parse("Hi {{ name }}!") == ("Hi ", Variable("name"), "!")


@pytest.mark.parametrize(
    ("template", "values", "text"),
    [
        ("Hi {{ name }}!", {"name": "Ann"}, "Hi Ann!"),
        ("{{a}}-{{ b }}", {"a": 1, "b": 2.5}, "1-2.5"),
        ("vip: {{ vip }}", {"vip": True}, "vip: true"),
        ("Hi {{ missing }}!", {}, "Hi !"),
        ("Hi {{ none }}!", {"none": None}, "Hi !"),
        ("plain", {"x": "y"}, "plain"),
    ],
)
def test_renders(template: str, values: dict[str, object], text: str) -> None:
    assert render(template, values) == text


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("Hi {{ name", "unclosed"),
        ("Hi {{}}", "empty"),
        ("Hi {{   }}", "empty"),
        ("Hi {{ 1st }}", "invalid variable name '1st'"),
        ("Hi {{ first name }}", "invalid variable name"),
        ("Hi {{ a-b }}", "invalid variable name"),
        ("ok {{ a }} then {{ b", "unclosed"),
    ],
)
def test_syntax_errors_say_what_is_wrong(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason):
        variables(template)
