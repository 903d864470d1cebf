"""Templates: variables, rendering, syntax errors."""

from __future__ import annotations

import pytest

from shared.domain.templates import (
    TemplateError,
    Variable,
    client_values,
    parse,
    render,
    render_html,
    variables,
)


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


@pytest.mark.parametrize(
    ("template", "values", "html"),
    [
        ("<p>Hi {{ name }}</p>", {"name": "<b>Ann</b>"}, "<p>Hi &lt;b&gt;Ann&lt;/b&gt;</p>"),
        (
            '<a title="{{ t }}">x</a>',
            {"t": '" onclick="evil()'},
            '<a title="&quot; onclick=&quot;evil()">x</a>',
        ),
        ("{{ a }} &amp; {{ b }}", {"a": "R&D", "b": 3}, "R&amp;D &amp; 3"),
        ("<i>{{ missing }}</i>", {}, "<i></i>"),
        ("{{ quote }}", {"quote": "it's"}, "it&#x27;s"),
    ],
)
def test_html_rendering_escapes_values_but_not_the_template(
    template: str, values: dict[str, object], html: str
) -> None:
    assert render_html(template, values) == html


def test_plain_rendering_does_not_escape() -> None:
    assert render("Hi {{ name }}", {"name": "<b>Ann & co</b>"}) == "Hi <b>Ann & co</b>"


def test_client_values_let_fields_win_over_attributes_of_the_same_name() -> None:
    values = client_values({"name": "Ann", "email": "spoof"}, "+1", "a@x.org", "555", "UTC")

    assert values == {
        "name": "Ann",
        "email": "a@x.org",
        "phone": "+1",
        "operator_code": "555",
        "timezone": "UTC",
    }
