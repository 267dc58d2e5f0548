"""Message templates: variables, built-ins in the message's time zone, errors named on the field, the sandbox."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import make_agent, send_body

PROACTIVE = "/api/v1/messaging/proactive"
SEND = f"{PROACTIVE}/send"
SCHEDULE = f"{PROACTIVE}/schedule"
AGENT = "agent_tpl"

# What a Python object's repr looks like when it escapes into rendered text.
PYTHON_INTERNALS = re.compile(
    r"<(class|function|built-in|bound method|method|module|jinja2|TemplateReference)|\bat 0x[0-9a-f]+|__\w+__"
)


@pytest.fixture(autouse=True)
async def agent(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, AGENT, "AUTONOMOUS")


async def send(
    client: httpx.AsyncClient, auth: dict[str, str], endpoint: str = SEND, **overrides: Any
) -> httpx.Response:
    return await client.post(endpoint, json=send_body(AGENT, **overrides), headers=auth)


async def rendered(
    client: httpx.AsyncClient, auth: dict[str, str], endpoint: str = SEND, **overrides: Any
) -> str:
    """Accept a message and return its content as stored (checked through GET, not only the 201 body)."""
    response = await send(client, auth, endpoint, **overrides)
    assert response.status_code == 201, response.text
    detail = await client.get(f"/api/v1/messages/{response.json()['id']}", headers=auth)
    assert detail.status_code == 200, detail.text
    content: str = detail.json()["content"]
    assert content == response.json()["content"]
    return content


def assert_problem(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    assert field in [e["field"] for e in problem["errors"]], problem
    return problem


async def history(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get(f"{PROACTIVE}/history", headers=auth)).json()["items"]
    return items


# --- variables ---------------------------------------------------------------------------------------------


async def test_variables_render_in_content_and_subject(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await send(
        client,
        auth,
        platform="email",
        recipient_id="ada@example.com",
        subject="Hi {{ name }}",
        content="Hello {{name}}, you have {{ count }} new {{ 'item' if count == 1 else 'items' }}.",
        template_variables={"name": "Ada", "count": 3},
    )
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["subject"] == "Hi Ada"
    assert message["content"] == "Hello Ada, you have 3 new items."


async def test_content_without_template_syntax_is_kept_verbatim(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    text = "Costs {50%} and {name} with { braces } and }} stray"
    assert await rendered(client, auth, content=text, template_variables={"name": "unused"}) == text


async def test_missing_variable_is_422_naming_it(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await send(
        client, auth, content="Hello {{ name }}, your code is {{ code }}", template_variables={"name": "Ada"}
    )
    problem = assert_problem(response, 422, "content")
    assert "code" in problem["detail"]
    assert "code" in problem["errors"][0]["message"]
    assert "name" not in problem["detail"].split(":", 1)[1].split("(")[0]
    assert await history(client, auth) == []


async def test_missing_variable_in_subject_is_422_on_subject(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await send(
        client,
        auth,
        platform="email",
        recipient_id="ada@example.com",
        subject="Re: {{ ticket }}",
        content="plain",
    )
    problem = assert_problem(response, 422, "subject")
    assert "ticket" in problem["detail"]
    assert await history(client, auth) == []


async def test_syntax_error_is_422_on_content(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for content in (
        "Hello {{ name ",
        "Hello {{ name }",
        "{% if name %}open",
        "{{ name | }}",
        "{% endfor %}",
        "{{ }}",
    ):
        response = await send(client, auth, content=content, template_variables={"name": "Ada"})
        problem = assert_problem(response, 422, "content")
        assert "syntax" in problem["detail"], content
    assert await history(client, auth) == []


async def test_unknown_filter_is_422_on_content(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await send(client, auth, content="{{ name | shout }}", template_variables={"name": "Ada"})
    problem = assert_problem(response, 422, "content")
    assert "shout" in problem["detail"]


async def test_undefined_attribute_of_a_supplied_variable_is_422(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await send(
        client, auth, content="{{ user.email }}", template_variables={"user": {"name": "Ada"}}
    )
    problem = assert_problem(response, 422, "content")
    assert "email" in problem["detail"]


# --- built-ins ---------------------------------------------------------------------------------------------


BUILTIN_CASES = [
    (
        "2030-01-01T02:00:00Z",
        "America/New_York",
        "2029-12-31|21:00:00|2029-12-31T21:00:00-05:00|America/New_York",
    ),
    (
        "2030-07-01T02:00:00Z",
        "America/New_York",
        "2030-06-30|22:00:00|2030-06-30T22:00:00-04:00|America/New_York",
    ),
    ("2030-01-01T02:00:00Z", "Asia/Kolkata", "2030-01-01|07:30:00|2030-01-01T07:30:00+05:30|Asia/Kolkata"),
    ("2030-01-01T02:00:00+14:00", "UTC", "2029-12-31|12:00:00|2029-12-31T12:00:00+00:00|UTC"),
    ("2030-01-01T02:00:00", "Europe/London", "2030-01-01|02:00:00|2030-01-01T02:00:00+00:00|Europe/London"),
]


@pytest.mark.parametrize("endpoint", [SEND, SCHEDULE])
async def test_builtins_render_at_the_scheduled_time_in_the_message_zone(
    client: httpx.AsyncClient, auth: dict[str, str], endpoint: str
) -> None:
    for scheduled_for, timezone, expected in BUILTIN_CASES:
        content = await rendered(
            client,
            auth,
            endpoint,
            content="{{date}}|{{ time }}|{{datetime}}|{{ timezone }}",
            scheduled_for=scheduled_for,
            timezone=timezone,
        )
        assert content == expected, (scheduled_for, timezone)


CALENDAR_CASES = [
    # 1 January 2027 is a Friday in ISO week 53 of 2026: the ISO year, not the calendar year, leads the week.
    ("2027-01-01T12:00:00Z", "UTC", "2026-W53|Friday|1|January|2027"),
    # Monday 4 February 2030 at 03:00 UTC is still Sunday the 3rd, and the previous ISO week, in New York.
    ("2030-02-04T03:00:00Z", "America/New_York", "2030-W05|Sunday|3|February|2030"),
    ("2030-02-04T15:00:00Z", "America/New_York", "2030-W06|Monday|4|February|2030"),
    ("2029-12-31T20:00:00Z", "Asia/Tokyo", "2030-W01|Tuesday|1|January|2030"),
]


@pytest.mark.parametrize("endpoint", [SEND, SCHEDULE])
async def test_calendar_builtins_render_in_the_message_zone(
    client: httpx.AsyncClient, auth: dict[str, str], endpoint: str
) -> None:
    for scheduled_for, timezone, expected in CALENDAR_CASES:
        content = await rendered(
            client,
            auth,
            endpoint,
            content="{{week}}|{{ weekday }}|{{day}}|{{month}}|{{ year }}",
            scheduled_for=scheduled_for,
            timezone=timezone,
        )
        assert content == expected, (scheduled_for, timezone)


async def test_builtins_render_now_in_the_message_zone_when_not_scheduled(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    zone = ZoneInfo("Pacific/Kiritimati")  # UTC+14: its date differs from UTC's for ten hours a day
    before = datetime.now(UTC).astimezone(zone)
    content = await rendered(client, auth, content="{{ date }} {{ timezone }}", timezone="Pacific/Kiritimati")
    after = datetime.now(UTC).astimezone(zone)
    allowed = {f"{d.strftime('%Y-%m-%d')} Pacific/Kiritimati" for d in (before, after)}
    assert content in allowed


async def test_the_default_zone_is_utc(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    content = await rendered(
        client, auth, content="{{ datetime }} {{ timezone }}", scheduled_for="2030-03-04T05:06:07Z"
    )
    assert content == "2030-03-04T05:06:07+00:00 UTC"


async def test_supplied_variable_overrides_a_builtin(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    content = await rendered(
        client, auth, content="{{ date }} / {{ time }}", template_variables={"date": "someday"},
        scheduled_for="2030-01-01T02:00:00Z", timezone="America/New_York",
    )  # fmt: skip
    assert content == "someday / 21:00:00"


async def test_builtins_of_an_intern_message_are_rendered_when_accepted(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_tpl_intern", "INTERN")
    response = await client.post(
        SCHEDULE,
        json=send_body(
            "agent_tpl_intern",
            content="On {{ date }}",
            scheduled_for="2030-01-01T02:00:00Z",
            timezone="Asia/Tokyo",
        ),
        headers=auth,
    )
    assert response.status_code == 201, response.text
    queue = (await client.get(f"{PROACTIVE}/queue", headers=auth)).json()["items"]
    assert [(m["id"], m["content"]) for m in queue] == [(response.json()["id"], "On 2030-01-01")]


async def test_builtins_at_the_end_of_time_are_not_a_500(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await send(
        client,
        auth,
        content="{{ date }}",
        scheduled_for="9999-12-31T23:00:00Z",
        timezone="Pacific/Kiritimati",
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert {e["field"] for e in problem["errors"]} & {"scheduled_for", "content"}, problem
    assert await history(client, auth) == []


# --- the sandbox -------------------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ name.__class__.__base__.__subclasses__() }}",
    "{{ name|attr('__class__') }}",
    "{{ '{0.__class__}'.format(name) }}",
    "{% set c = name.__class__ %}{{ c }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ date.upper.__self__ }}",
    "{{ {}.__class__ }}",
    "{{ name.__len__() }}",
    "{{ config }}",
    "{{ request }}",
    "{{ os.system('id') }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os }}",
    "{% extends '/etc/passwd' %}",
]


async def test_sandbox_escape_is_refused(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for content in ESCAPES:
        response = await send(client, auth, content=content, template_variables={"name": "Ada"})
        problem = assert_problem(response, 422, "content")
        assert "root:" not in response.text
        assert "<class" not in problem["detail"], content
    assert await history(client, auth) == []


LEAKS = [
    "{{ lipsum }}",
    "{{ range }}",
    "{{ cycler }}",
    "{{ date.upper }}",
    "{{ self }}",
    "{{ joiner() }}",
]


async def test_python_objects_never_render_into_content(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for content in LEAKS:
        response = await send(client, auth, content=content)
        assert response.status_code in (201, 422), response.text
        if response.status_code == 201:
            assert not PYTHON_INTERNALS.search(response.json()["content"]), response.json()["content"]
        else:
            assert_problem(response, 422, "content")


RUNTIME_ERRORS = [
    "{{ 1 / 0 }}",
    "{{ 7 // 0 }}",
    "{{ 7 % 0 }}",
    "{{ range(1000000) | list | length }}",
    "{{ [1, 2] | slice(0) | list }}",
    "{{ {'a': 1} | dictsort(by='colour') }}",
    "{{ date | truncate(-1) }}",
]


async def test_runtime_error_in_template_is_422_not_500(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for content in RUNTIME_ERRORS:
        assert_problem(await send(client, auth, content=content), 422, "content")


async def test_runtime_errors_never_store_a_message(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """Whatever the status, a template that cannot render never yields a stored message."""
    for content in RUNTIME_ERRORS:
        response = await send(client, auth, content=content)
        assert response.status_code >= 400, (content, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert await history(client, auth) == []


async def test_harmless_expressions_render(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    content = await rendered(
        client,
        auth,
        content="{{ name|upper }} {{ items|join(', ') }} {% for i in items %}[{{ loop.index }}]{% endfor %} {{ 2 * 3 }}",
        template_variables={"name": "ada", "items": ["a", "b"]},
    )
    assert content == "ADA a, b [1][2] 6"
    assert not PYTHON_INTERNALS.search(content)
