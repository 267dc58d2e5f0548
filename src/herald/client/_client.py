"""The two clients: the same calls (from :mod:`herald.client._calls`), run blocking or with asyncio.

Each client is a thin executor: it sends a spec's requests through its httpx client, turns an error answer into
the typed exception for its status, and hands the decoded JSON back to the spec. Methods are attached from the
specs by :func:`_blocking` and :func:`_asynchronous`, so the two clients cannot drift apart.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import httpx

from herald.client import _calls as calls
from herald.client._calls import Call, Defaults, Flow
from herald.client._errors import APIConnectionError, error_for

P = ParamSpec("P")
T = TypeVar("T")
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 60.0  # a 10,000-message bulk request takes a second or two; leave room


def _headers(api_key: str | None) -> dict[str, str]:
    key = api_key if api_key is not None else os.environ.get("HERALD_API_KEY")
    headers = {"accept": "application/json", "user-agent": "herald-client/0.1"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return headers


def _decode(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise error_for(response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def _blocking(spec: Callable[Concatenate[Defaults, P], Flow[T]]) -> Callable[Concatenate[Herald, P], T]:
    @functools.wraps(spec)
    def method(self: Herald, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._drive(spec(self.defaults, *args, **kwargs))

    return method


def _asynchronous(
    spec: Callable[Concatenate[Defaults, P], Flow[T]],
) -> Callable[Concatenate[AsyncHerald, P], Coroutine[Any, Any, T]]:
    @functools.wraps(spec)
    async def method(self: AsyncHerald, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._drive(spec(self.defaults, *args, **kwargs))

    return method


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def _stale_connection(exc: httpx.TransportError) -> bool:
    """The server closed a kept-alive connection just as the request went out ("Server disconnected without
    sending a response"): a race every keep-alive client meets when a server's idle timeout runs out."""
    return isinstance(exc, httpx.RemoteProtocolError)


def _replayable(call: Call[Any]) -> bool:
    """Whether sending ``call`` again cannot do anything twice: an idempotent method, or a request with an
    ``Idempotency-Key`` (Herald answers a replay with the first answer). Other requests are not replayed: the
    server may have acted on them before the connection closed."""
    return call.method in _SAFE_METHODS or "Idempotency-Key" in (call.headers or {})


class Herald:
    """Blocking client. ``api_key`` defaults to ``$HERALD_API_KEY``; ``agent_id`` is used when a call names none.

    Use it as a context manager, or call :meth:`close`. Pass ``transport`` (say ``httpx.MockTransport``) to
    test code that uses it without a server."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        agent_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.defaults = Defaults(agent_id=agent_id)
        self._http = httpx.Client(
            base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Herald:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, call: Call[Any]) -> Any:
        for attempt in (1, 2):
            try:
                response = self._http.request(
                    call.method, call.path, json=call.json, params=call.params, headers=call.headers
                )
            except httpx.TransportError as exc:
                if attempt == 1 and _stale_connection(exc) and _replayable(call):
                    continue
                raise APIConnectionError(f"{call.method} {call.path}: {type(exc).__name__}: {exc}") from exc
            return _decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _drive(self, flow: Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(self._request(call))
        except StopIteration as done:
            return cast(T, done.value)
        finally:
            flow.close()

    # messages
    send_message = _blocking(calls.send_message)
    get_message = _blocking(calls.get_message)
    list_messages = _blocking(calls.list_messages)
    cancel_message = _blocking(calls.cancel_message)
    get_delivery_report = _blocking(calls.get_delivery_report)
    send_bulk_messages = _blocking(calls.send_bulk_messages)
    load_messages_from_json = _blocking(calls.load_messages_from_json)
    # approvals
    list_pending_approvals = _blocking(calls.list_pending_approvals)
    approve_message = _blocking(calls.approve_message)
    reject_message = _blocking(calls.reject_message)
    # humans in the loop: approvers, policies, approval requests, questions
    create_approver = _blocking(calls.create_approver)
    list_approvers = _blocking(calls.list_approvers)
    get_approver = _blocking(calls.get_approver)
    update_approver = _blocking(calls.update_approver)
    delete_approver = _blocking(calls.delete_approver)
    create_approval_policy = _blocking(calls.create_approval_policy)
    list_approval_policies = _blocking(calls.list_approval_policies)
    get_approval_policy = _blocking(calls.get_approval_policy)
    update_approval_policy = _blocking(calls.update_approval_policy)
    delete_approval_policy = _blocking(calls.delete_approval_policy)
    list_approval_requests = _blocking(calls.list_approval_requests)
    get_approval_request = _blocking(calls.get_approval_request)
    approve_request = _blocking(calls.approve_request)
    reject_request = _blocking(calls.reject_request)
    ask = _blocking(calls.ask)
    get_question = _blocking(calls.get_question)
    list_questions = _blocking(calls.list_questions)
    # campaigns
    create_campaign = _blocking(calls.create_campaign)
    list_campaigns = _blocking(calls.list_campaigns)
    get_campaign = _blocking(calls.get_campaign)
    update_campaign = _blocking(calls.update_campaign)
    delete_campaign = _blocking(calls.delete_campaign)
    pause_campaign = _blocking(calls.pause_campaign)
    resume_campaign = _blocking(calls.resume_campaign)
    run_campaign = _blocking(calls.run_campaign)
    preview_campaign = _blocking(calls.preview_campaign)
    campaign_runs = _blocking(calls.campaign_runs)
    get_campaign_run = _blocking(calls.get_campaign_run)
    approve_campaign_run = _blocking(calls.approve_campaign_run)
    reject_campaign_run = _blocking(calls.reject_campaign_run)
    # schedules
    create_schedule = _blocking(calls.create_schedule)
    list_schedules = _blocking(calls.list_schedules)
    get_schedule = _blocking(calls.get_schedule)
    pause_schedule = _blocking(calls.pause_schedule)
    resume_schedule = _blocking(calls.resume_schedule)
    delete_schedule = _blocking(calls.delete_schedule)
    schedule_executions = _blocking(calls.schedule_executions)
    parse_schedule = _blocking(calls.parse_schedule)
    # monitors
    create_monitor = _blocking(calls.create_monitor)
    list_monitors = _blocking(calls.list_monitors)
    pause_monitor = _blocking(calls.pause_monitor)
    resume_monitor = _blocking(calls.resume_monitor)
    test_monitor = _blocking(calls.test_monitor)
    list_alerts = _blocking(calls.list_alerts)
    push_metric = _blocking(calls.push_metric)
    # triggers
    create_trigger = _blocking(calls.create_trigger)
    list_triggers = _blocking(calls.list_triggers)
    delete_trigger = _blocking(calls.delete_trigger)
    fire_trigger = _blocking(calls.fire_trigger)
    trigger_history = _blocking(calls.trigger_history)
    # OTP, metrics, agents, health
    send_otp = _blocking(calls.send_otp)
    verify_otp = _blocking(calls.verify_otp)
    get_otp = _blocking(calls.get_otp)
    cancel_otp = _blocking(calls.cancel_otp)
    get_metrics = _blocking(calls.get_metrics)
    create_agent = _blocking(calls.create_agent)
    get_agent = _blocking(calls.get_agent)
    start_run = _blocking(calls.start_run)
    get_run = _blocking(calls.get_run)
    list_runs = _blocking(calls.list_runs)
    list_agents = _blocking(calls.list_agents)
    health = _blocking(calls.health)


class AsyncHerald:
    """The asyncio client: the same methods as :class:`Herald`, each a coroutine. Use ``async with``, or call
    :meth:`aclose`."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        agent_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.defaults = Defaults(agent_id=agent_id)
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncHerald:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, call: Call[Any]) -> Any:
        for attempt in (1, 2):
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params, headers=call.headers
                )
            except httpx.TransportError as exc:
                if attempt == 1 and _stale_connection(exc) and _replayable(call):
                    continue
                raise APIConnectionError(f"{call.method} {call.path}: {type(exc).__name__}: {exc}") from exc
            return _decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _drive(self, flow: Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(await self._request(call))
        except StopIteration as done:
            return cast(T, done.value)
        finally:
            flow.close()

    # messages
    send_message = _asynchronous(calls.send_message)
    get_message = _asynchronous(calls.get_message)
    list_messages = _asynchronous(calls.list_messages)
    cancel_message = _asynchronous(calls.cancel_message)
    get_delivery_report = _asynchronous(calls.get_delivery_report)
    send_bulk_messages = _asynchronous(calls.send_bulk_messages)
    load_messages_from_json = _asynchronous(calls.load_messages_from_json)
    # approvals
    list_pending_approvals = _asynchronous(calls.list_pending_approvals)
    approve_message = _asynchronous(calls.approve_message)
    reject_message = _asynchronous(calls.reject_message)
    # humans in the loop: approvers, policies, approval requests, questions
    create_approver = _asynchronous(calls.create_approver)
    list_approvers = _asynchronous(calls.list_approvers)
    get_approver = _asynchronous(calls.get_approver)
    update_approver = _asynchronous(calls.update_approver)
    delete_approver = _asynchronous(calls.delete_approver)
    create_approval_policy = _asynchronous(calls.create_approval_policy)
    list_approval_policies = _asynchronous(calls.list_approval_policies)
    get_approval_policy = _asynchronous(calls.get_approval_policy)
    update_approval_policy = _asynchronous(calls.update_approval_policy)
    delete_approval_policy = _asynchronous(calls.delete_approval_policy)
    list_approval_requests = _asynchronous(calls.list_approval_requests)
    get_approval_request = _asynchronous(calls.get_approval_request)
    approve_request = _asynchronous(calls.approve_request)
    reject_request = _asynchronous(calls.reject_request)
    ask = _asynchronous(calls.ask)
    get_question = _asynchronous(calls.get_question)
    list_questions = _asynchronous(calls.list_questions)
    # campaigns
    create_campaign = _asynchronous(calls.create_campaign)
    list_campaigns = _asynchronous(calls.list_campaigns)
    get_campaign = _asynchronous(calls.get_campaign)
    update_campaign = _asynchronous(calls.update_campaign)
    delete_campaign = _asynchronous(calls.delete_campaign)
    pause_campaign = _asynchronous(calls.pause_campaign)
    resume_campaign = _asynchronous(calls.resume_campaign)
    run_campaign = _asynchronous(calls.run_campaign)
    preview_campaign = _asynchronous(calls.preview_campaign)
    campaign_runs = _asynchronous(calls.campaign_runs)
    get_campaign_run = _asynchronous(calls.get_campaign_run)
    approve_campaign_run = _asynchronous(calls.approve_campaign_run)
    reject_campaign_run = _asynchronous(calls.reject_campaign_run)
    # schedules
    create_schedule = _asynchronous(calls.create_schedule)
    list_schedules = _asynchronous(calls.list_schedules)
    get_schedule = _asynchronous(calls.get_schedule)
    pause_schedule = _asynchronous(calls.pause_schedule)
    resume_schedule = _asynchronous(calls.resume_schedule)
    delete_schedule = _asynchronous(calls.delete_schedule)
    schedule_executions = _asynchronous(calls.schedule_executions)
    parse_schedule = _asynchronous(calls.parse_schedule)
    # monitors
    create_monitor = _asynchronous(calls.create_monitor)
    list_monitors = _asynchronous(calls.list_monitors)
    pause_monitor = _asynchronous(calls.pause_monitor)
    resume_monitor = _asynchronous(calls.resume_monitor)
    test_monitor = _asynchronous(calls.test_monitor)
    list_alerts = _asynchronous(calls.list_alerts)
    push_metric = _asynchronous(calls.push_metric)
    # triggers
    create_trigger = _asynchronous(calls.create_trigger)
    list_triggers = _asynchronous(calls.list_triggers)
    delete_trigger = _asynchronous(calls.delete_trigger)
    fire_trigger = _asynchronous(calls.fire_trigger)
    trigger_history = _asynchronous(calls.trigger_history)
    # OTP, metrics, agents, health
    send_otp = _asynchronous(calls.send_otp)
    verify_otp = _asynchronous(calls.verify_otp)
    get_otp = _asynchronous(calls.get_otp)
    cancel_otp = _asynchronous(calls.cancel_otp)
    get_metrics = _asynchronous(calls.get_metrics)
    create_agent = _asynchronous(calls.create_agent)
    get_agent = _asynchronous(calls.get_agent)
    start_run = _asynchronous(calls.start_run)
    get_run = _asynchronous(calls.get_run)
    list_runs = _asynchronous(calls.list_runs)
    list_agents = _asynchronous(calls.list_agents)
    health = _asynchronous(calls.health)
