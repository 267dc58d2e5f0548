"""Task templates over payloads: both brace styles, nested fields, lists, and missing fields as errors."""

from __future__ import annotations

import pytest

from herald.producers.triggers.payload import MissingField, fields, flatten_github, render

PAYLOAD = {"pr_number": 42, "pull_request": {"title": "Fix", "labels": [{"name": "bug"}]}, "ok": True}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Review PR #{pr_number}", "Review PR #42"),
        ("Review PR #{{pr_number}}", "Review PR #42"),
        ("{{ pull_request.title }} / {pull_request.title}", "Fix / Fix"),
        ("label {pull_request.labels.0.name}", "label bug"),
        ("flag {ok}", "flag True"),
        ("no fields at all", "no fields at all"),
        ('JSON stays {"a": 1}', 'JSON stays {"a": 1}'),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, PAYLOAD) == expected


@pytest.mark.parametrize("template", ["{missing}", "{{pull_request.author}}", "{pull_request.labels.5.name}"])
def test_missing_fields_name_themselves(template: str) -> None:
    with pytest.raises(MissingField, match="no field"):
        render(template, PAYLOAD)


def test_fields_and_github_flattening() -> None:
    assert fields("{a} {{b.c}}") == ["a", "b.c"]
    flat = flatten_github(
        {"number": 7, "pull_request": {"number": 7, "title": "T", "user": {"login": "ada"}}}
    )
    assert (flat["pr_number"], flat["pr_title"], flat["pr_author"]) == (7, "T", "ada")
