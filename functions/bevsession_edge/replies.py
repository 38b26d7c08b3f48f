"""Reply generation: a pluggable interface and a template generator that needs no network.

The chat route hands a generator the visitor's message, the persona after this turn's signals
and the recent history (newest last) as ``PromptMessage``: role, content, ``created_at``,
generation mode and token count of each message (no ids, no persona snapshots). The shipped
``TemplateReplyGenerator`` answers from the persona: what it has understood so far and the one
question that would teach it most. An LLM client plugs in by implementing ``ReplyGenerator``
(``history`` is already the newest-N window).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bevsession.models import PersonaScores, PromptMessage


@dataclass(frozen=True)
class Reply:
    """What the assistant says, plus the optional UI specification stored with it."""

    content: str
    ui_specification: dict[str, Any] | None = None
    generation_mode: str | None = None
    estimated_read_time: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ReplyGenerator(Protocol):
    async def reply(
        self, message: str, persona: PersonaScores, history: Sequence[PromptMessage]
    ) -> Reply: ...


LABELS = {
    "functional_role": {"sales": "sales", "marketing": "marketing", "operations": "operations",
                        "compliance": "compliance"},
    "org_type": {"supplier": "a supplier", "distributor": "a distributor"},
    "org_size": {"craft": "a craft-sized team", "mid_sized": "a mid-sized business",
                 "large": "a large organisation"},
    "product_focus": {"beer": "beer", "wine": "wine", "spirits": "spirits",
                      "rtd": "ready-to-drink", "non_alcoholic": "non-alcoholic drinks"},
}  # fmt: skip

QUESTIONS = {
    "functional_role": (
        "Which part of the business do you own: sales, marketing, operations or compliance?"
    ),
    "org_type": "Are you a supplier (brewery, winery, distillery) or a distributor?",
    "org_size": "Roughly how big is the team: craft, regional, or national?",
    "product_focus": "What do you mainly sell: beer, wine, spirits or ready-to-drink?",
}  # fmt: skip

PAIN_ANSWERS = {
    "execution_blind_spot": "we can show what actually happens on shelf, store by store",
    "roi_proof": "we tie programmes to depletions so you can prove the return",
    "distributor_management": "we surface distributor performance without chasing reps",
    "data_fragmentation": "we pull scattered reports into one view",
    "compliance_burden": "we keep label approvals and state registrations in one place",
    "sales_velocity": "we track rate of sale so slow movers show up early",
}


class TemplateReplyGenerator:
    """Deterministic replies from the persona; good enough to demo and to test the loop."""

    async def reply(
        self, message: str, persona: PersonaScores, history: Sequence[PromptMessage]
    ) -> Reply:
        vectors = persona.detection_vectors
        known = []
        for vector, labels in LABELS.items():
            value = getattr(vectors, vector)
            if value:
                known.append(labels.get(value, value))
        parts = []
        if known:
            parts.append("Thanks, so far I understand you work with " + ", ".join(known) + ".")
        else:
            parts.append("Thanks for reaching out to BevGenie.")
        pains = [PAIN_ANSWERS[p] for p in persona.pain_points_detected if p in PAIN_ANSWERS]
        if pains:
            parts.append("On what you mentioned: " + "; ".join(pains[:2]) + ".")
        missing = [v for v in QUESTIONS if not getattr(vectors, v)]
        if missing:
            parts.append(QUESTIONS[missing[0]])
        else:
            parts.append("Would a short brochure tailored to your team help?")
        mode = "returning" if len(history) > 1 else "fresh"
        return Reply(content=" ".join(parts), generation_mode=mode)
