"""What an inbound message says to a request, the signed email links, and which policy a held message meets."""

from __future__ import annotations

import time
from typing import Any

import pytest

from herald.core.errors import Unauthorized
from herald.humans import decisions, directory, links
from herald.storage.models import ApprovalPolicy
from herald.storage.models import InboundMessage as InboundRow

SECRET = "a-secret-key-that-is-long-enough-for-herald-0123456789"


def row(body: str = "", **context: Any) -> InboundRow:
    return InboundRow(body=body, reply_context=context)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("YES 4821", ("4821", decisions.APPROVE, None, "")),
        ("yes 4821", ("4821", decisions.APPROVE, None, "")),
        ("No 4821 wrong tone, too pushy", ("4821", decisions.REJECT, None, "wrong tone, too pushy")),
        ("reject 482193 not now", ("482193", decisions.REJECT, None, "not now")),
        ("4821 2", ("4821", None, 2, "2")),
        ("4821 ship it on Monday", ("4821", None, None, "ship it on Monday")),
    ],
)
def test_coded_replies_name_the_request_and_the_decision(body: str, expected: tuple[Any, ...]) -> None:
    reading = decisions.read(row(body))
    assert reading is not None
    assert (reading.code, reading.decision, reading.option, reading.text) == expected
    assert not reading.by_button


@pytest.mark.parametrize(
    "body", ["Where is my order?", "yes please", "call me at 12", "maybe 4821", "123 main st"]
)
def test_ordinary_messages_say_nothing_to_a_request(body: str) -> None:
    assert decisions.read(row(body)) is None


def test_button_presses_carry_the_request_and_the_choice() -> None:
    approve = decisions.read(row(action="hl:req_1:a"))
    assert approve is not None
    assert (approve.request_id, approve.decision, approve.by_button) == ("req_1", decisions.APPROVE, True)
    option = decisions.read(row(action="hl:qst_9:o3"))
    assert option is not None
    assert (option.request_id, option.option) == ("qst_9", 3)
    assert decisions.read(row(action="hl:req_1:zz")) is None
    assert (
        decisions.read(row("YES 4821", action="someone-elses-button")) is not None
    )  # not ours: read the text


def test_a_link_names_its_delivery_until_it_expires_and_refuses_forgery() -> None:
    token = links.sign(SECRET, "hdl_123", time.time() + 60)
    assert links.verify(SECRET, token) == "hdl_123"
    with pytest.raises(Unauthorized, match="signature"):
        links.verify(SECRET, token.replace("hdl_123", "hdl_124"))
    with pytest.raises(Unauthorized, match="signature"):
        links.verify("another-secret-key-that-is-long-enough-0123456789", token)
    with pytest.raises(Unauthorized, match="expired"):
        links.verify(SECRET, links.sign(SECRET, "hdl_123", time.time() - 1))
    with pytest.raises(Unauthorized):
        links.verify(SECRET, "not-a-link")


def test_the_first_policy_matching_agent_and_priority_applies() -> None:
    urgent = ApprovalPolicy(id="p1", name="urgent", agent_ids=[], priorities=["CRITICAL", "HIGH"])
    writer = ApprovalPolicy(id="p2", name="writer", agent_ids=["writer"], priorities=[])
    anyone = ApprovalPolicy(id="p3", name="anyone", agent_ids=[], priorities=[])
    policies = [urgent, writer, anyone]
    assert directory.matching(policies, "writer", 0) is urgent
    assert directory.matching(policies, "writer", 2) is writer
    assert directory.matching(policies, "other", 3) is anyone
    assert directory.matching([urgent, writer], "other", 3) is None


def test_only_messages_that_could_answer_a_request_are_looked_up() -> None:
    assert not decisions.could_answer(row("Where is my order?"), "telegram")
    assert decisions.could_answer(row("Where is my order?", in_reply_to="42:7"), "telegram")
    assert decisions.could_answer(row("YES 4821"), "whatsapp")
    assert decisions.could_answer(row(action="hl:req_1:a"), "slack")
    assert decisions.could_answer(row("eu-west please"), "sms")  # SMS cannot thread: any message may answer
