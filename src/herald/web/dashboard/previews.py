"""What a form shows before it is saved: a schedule's next five runs, a monitor's "Test now", the monitor presets.

A preview is the API's own judgement, never the dashboard's guess: a natural-language rule goes through the
API's parser (``POST /api/v1/messaging/schedule/parse-nl``), a cron rule through the functions the API answers
``next_runs`` with (:func:`herald.core.natural.next_runs`), an unsaved monitor through the API's
``POST /api/v1/monitoring/condition/test`` (checked as a create is, evaluated as a saved monitor's test is,
stored nowhere). The same functions serve the "Preview" button (no JavaScript) and the live JSON preview that
``static/dashboard.js`` asks for while a rule is typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request

from herald.core.natural import describe_cron, next_runs
from herald.core.timezones import zone_problem
from herald.storage.types import utcnow
from herald.web.dashboard import api, forms
from herald.web.dashboard.session import DashboardUser

RUNS = 5
BOTH = "give cron_expression or natural_language_schedule, not both"
NEITHER = "write a rule: a cron expression or a phrase such as 'every weekday at 9am'"


@dataclass
class Preview:
    """What a form shows above its buttons: a title, a sentence, and lines (the runs, the test's figures)."""

    title: str
    description: str = ""
    lines: list[str] = field(default_factory=list)
    times: list[str] = field(default_factory=list)  # ISO 8601, for <time datetime>
    good: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "lines": self.lines,
            "times": self.times,
        }


def shown_time(moment: datetime, timezone: str) -> str:
    """A run as the preview lists it: the zone's wall time, weekday first."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


def _runs_preview(description: str, runs: list[datetime], timezone: str) -> Preview:
    return Preview(
        title=f"Next {len(runs)} run{'s' if len(runs) != 1 else ''} ({timezone})",
        description=description,
        lines=[shown_time(t, timezone) for t in runs],
        times=[t.isoformat() for t in runs],
    )


async def schedule(
    request: Request, user: DashboardUser, fields: tuple[forms.Field, ...], body: dict[str, Any],
    state: forms.FormState,
) -> Preview | None:  # fmt: skip
    """A schedule rule's meaning and next five runs in its time zone; a wrong rule is an error beside its field."""
    cron = str(body.get("cron_expression") or "").strip()
    text = str(body.get("natural_language_schedule") or "").strip()
    timezone = str(body.get("timezone") or "UTC").strip()
    problem = zone_problem(timezone)
    if problem:
        state.add_error("timezone", problem)
    elif cron and text:
        state.add_error("cron_expression", BOTH)
    elif cron:
        try:
            return _runs_preview(
                describe_cron(cron), next_runs(cron, timezone=timezone, after=utcnow(), count=RUNS), timezone
            )
        except ValueError as exc:
            state.add_error("cron_expression", str(exc))
    elif text:
        return await _natural(request, user, text, timezone, state)
    elif body.get("run_at") or body.get("scheduled_for"):
        return None  # a one-time schedule at a given time: nothing to work out
    else:
        state.add_error("", NEITHER)
    return None


async def _natural(
    request: Request, user: DashboardUser, text: str, timezone: str, state: forms.FormState
) -> Preview | None:
    answer = await api.call(
        request, user.principal, "POST", "/api/v1/messaging/schedule/parse-nl",
        {"schedule": text, "timezone": timezone},
    )  # fmt: skip
    if not answer.ok:
        errors = answer.field_errors or [("schedule", answer.detail)]
        for where, message in errors:
            state.add_error("timezone" if "timezone" in where else "natural_language_schedule", message)
        return None
    body = answer.body if isinstance(answer.body, dict) else {}
    description = str(body.get("description") or "")
    if body.get("cron_expression"):
        description += f" (cron {body['cron_expression']})"
        times = [datetime.fromisoformat(t) for t in body.get("next_runs") or []]
    else:
        times = [datetime.fromisoformat(str(body["run_at"]))]
    return _runs_preview(description, times, timezone)


async def monitor_test(
    request: Request, user: DashboardUser, fields: tuple[forms.Field, ...], body: dict[str, Any],
    state: forms.FormState,
) -> Preview | None:  # fmt: skip
    """ "Test now" on a monitor not yet saved: the API evaluates it with no side effects; refusals go beside the
    fields they name."""
    answer = await api.call(request, user.principal, "POST", "/api/v1/monitoring/condition/test", body)
    if not answer.ok:
        if answer.status == 422 and answer.field_errors:
            forms.place_errors(fields, answer.field_errors, state)
        else:
            state.add_error("", answer.detail)
        return None
    result = answer.body if isinstance(answer.body, dict) else {}
    triggered = bool(result.get("triggered"))
    lines = [
        f"State: {result.get('state')}",
        f"Current value: {forms_value(result.get('current_value'))}",
        f"Threshold: {forms_value(result.get('threshold'))}",
    ]
    if result.get("error"):
        lines.append(f"Error: {result['error']}")
    return Preview(
        title="Test: it would fire now" if triggered else "Test: it would not fire now",
        description="Evaluated now without saving anything; no notice was sent.",
        lines=lines,
        good=not triggered and not result.get("error"),
    )


def forms_value(value: Any) -> str:
    """A test's value as one line."""
    if value is None:
        return "no data"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


async def monitor_presets(request: Request, user: DashboardUser) -> dict[str, Any]:
    """The presets a new monitor can start from, as the API lists them."""
    answer = await api.call(request, user.principal, "GET", "/api/v1/monitoring/presets")
    presets = answer.body.get("presets") if answer.ok and isinstance(answer.body, dict) else None
    return {"presets": [p for p in presets or [] if isinstance(p, dict)]}
