"""What a contact-form enquiry wants: ``buying``, ``service``, ``repair`` or ``other`` (seed 004's "buying vs.
repairing", its sales and service auto-responses).

Keyword rules decide by default: the intent with the most keyword hits in the subject and message wins (whole
words or phrases, any case); a tie goes to the earlier of ``repair``, ``service``, ``buying`` (a broken machine
is the more pressing reading); no hit is ``other``. A form may replace the keyword lists per intent. A form
that names an LLM agent (``classifier_agent_id``) asks that agent's model instead, and falls back to the
keywords on any failure of the model: an error, a timeout, or an answer that is not one of the intents. The
result says which decided: ``keywords``, ``llm`` or ``fallback`` (with the model's failure).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from herald.core import logs
from herald.core.errors import HeraldError
from herald.pipeline import llm
from herald.storage.models import Agent

if TYPE_CHECKING:
    from herald.runtime import Runtime

INTENTS = ("buying", "service", "repair", "other")
# Other names people (and seed 004) use for the same intents.
ALIASES = {"sales": "buying", "sale": "buying", "buy": "buying", "purchase": "buying", "repairing": "repair",
           "repairs": "repair", "maintenance": "service", "none": "other", "unknown": "other"}  # fmt: skip
TIE_ORDER = ("repair", "service", "buying")
DEFAULT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "buying": ("buy", "buying", "purchase", "price", "pricing", "quote", "cost", "financing", "finance",
               "for sale", "in stock", "availability", "available", "interested in", "demo", "trade-in",
               "trade in", "new mower", "looking for", "order"),
    "service": ("service", "servicing", "tune-up", "tune up", "maintenance", "oil change", "sharpen",
                "sharpening", "winterize", "winterization", "inspection", "appointment", "check-up",
                "annual service", "blade"),
    "repair": ("repair", "broken", "won't start", "will not start", "wont start", "doesn't start",
               "not working", "doesn't work", "does not work", "stopped working", "leak", "leaking", "fix",
               "smoke", "smoking", "noise", "stalls", "stalling", "overheating", "warranty claim", "damaged"),
}  # fmt: skip
CLASSIFY_SECONDS = 15.0
Source = Literal["keywords", "llm", "fallback"]


@dataclass(frozen=True)
class Classification:
    """The intent, who decided (``source``), and why: the keywords that matched, or the model and its failure."""

    intent: str
    source: Source
    matched: tuple[str, ...] = ()
    model: str | None = None
    reason: str | None = None
    scores: dict[str, int] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """What the inbound message's details and the audit entry keep."""
        record: dict[str, Any] = {"name": self.intent, "source": self.source}
        if self.matched:
            record["matched"] = list(self.matched)
        if self.model:
            record["model"] = self.model
        if self.reason:
            record["reason"] = self.reason
        return record


def canonical(name: str) -> str | None:
    """``name`` as one of :data:`INTENTS` (aliases such as ``sales`` mapped), or None."""
    word = name.strip().lower()
    word = ALIASES.get(word, word)
    return word if word in INTENTS else None


def keywords_for(overrides: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    """The keyword lists in force: the defaults, each replaced by the form's own list for that intent."""
    lists = dict(DEFAULT_KEYWORDS)
    for name, words in (overrides or {}).items():
        intent = canonical(name)
        if intent is not None and intent != "other":
            lists[intent] = tuple(w.strip().lower() for w in words if w.strip())
    return lists


def by_keywords(text: str, keywords: Mapping[str, Sequence[str]]) -> Classification:
    """The keyword rules (see the module): most hits wins, ties in :data:`TIE_ORDER`, none is ``other``."""
    lowered = text.lower()
    hits: dict[str, list[str]] = {}
    for intent, words in keywords.items():
        hits[intent] = [w for w in words if re.search(rf"(?<![\w]){re.escape(w)}(?![\w])", lowered)]
    scores = {intent: len(found) for intent, found in hits.items()}
    best = max(scores.values(), default=0)
    if best == 0:
        return Classification("other", "keywords", scores=scores)
    ranked = [*TIE_ORDER, *(i for i in scores if i not in TIE_ORDER)]
    winner = next(i for i in ranked if scores.get(i) == best)
    return Classification(winner, "keywords", tuple(hits[winner]), scores=scores)


async def classify(
    rt: Runtime,
    *,
    tenant_id: str,
    text: str,
    keywords: Mapping[str, Sequence[str]] | None,
    classifier_agent_id: str | None,
) -> Classification:
    """The intent of ``text``: by the classifier agent's model when one is named, else (and on its failure) by
    keywords. Never raises for the model's sake."""
    rules = by_keywords(text, keywords_for(keywords))
    if classifier_agent_id is None:
        return rules
    model: str | None = None
    try:
        settings, api_key = await _model_of(rt, tenant_id, classifier_agent_id)
        model = settings.model
        intent = await _ask_model(rt, settings, api_key, text)
    except (llm.LLMFailed, TimeoutError, _Unusable) as exc:
        reason = exc.reason if isinstance(exc, llm.LLMFailed | _Unusable) else "model timed out"
    except Exception as exc:  # whatever the transport does, the enquiry is still classified
        reason = f"model call failed: {type(exc).__name__}"
    else:
        return Classification(intent, "llm", model=model)
    logs.get_logger(__name__).warning(
        "intent classification fell back to keywords", model=model, reason=reason
    )
    return Classification(rules.intent, "fallback", rules.matched, model, reason, rules.scores)


class _Unusable(HeraldError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _model_of(rt: Runtime, tenant_id: str, agent_id: str) -> tuple[llm.LLMEndpoint, str]:
    async with rt.sessions() as session:
        agent = await session.get(Agent, (tenant_id, agent_id))
    if agent is None or agent.kind != "llm" or not agent.llm:
        raise _Unusable(f"agent {agent_id!r} is not an LLM agent")
    api_key = str(rt.credentials.open(agent.llm_api_key).get("api_key", "")) if agent.llm_api_key else ""
    return llm.LLMEndpoint.model_validate(agent.llm), api_key


async def _ask_model(rt: Runtime, settings: llm.LLMEndpoint, api_key: str, text: str) -> str:
    system = (
        "You classify enquiries sent through a business's website contact form. Answer with exactly one word: "
        "buying (they want to buy, a price, a quote, financing), service (maintenance, a tune-up, an "
        "appointment), repair (something is broken or not working) or other."
    )
    messages = [{"role": "system", "content": system}, {"role": "user", "content": text[:4000]}]
    deadline = asyncio.get_running_loop().time() + CLASSIFY_SECONDS
    turn = await llm.complete(rt.http, settings, api_key, messages, [], deadline=deadline, max_tokens=16)
    answer = re.sub(r"[^a-z_ ]", " ", (turn.content or "").lower()).split()
    intent = canonical(answer[0]) if answer else None
    if intent is None:
        raise _Unusable(f"answer is not an intent: {(turn.content or '')[:60]!r}")
    return intent
