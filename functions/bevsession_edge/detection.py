"""Persona signal detection: a pluggable interface and a keyword-rule detector that ships.

A detector turns one visitor message into persona signals; the database applies them (weights,
clamping, confidence) so every detector gets the same, atomic arithmetic. The shipped
``KeywordSignalDetector`` needs no network: it matches beverage-industry phrases for the four
detection vectors and the pain points. An LLM-backed detector implements the same protocol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from bevsession.models import PersonaScores, PersonaSignal

# Self-identification makes a mention a strong signal ("we are a brewery" vs "breweries").
_SELF = re.compile(r"\b(i am|i'm|im|we are|we're|our|my|i work|i run|i lead|i manage)\b", re.I)


@dataclass(frozen=True)
class Rule:
    """One phrase family: which vector value it implies and which scores it nudges."""

    vector: str
    value: str
    pattern: re.Pattern[str]
    score: str | None


def _rx(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(words) + r")\b", re.I)


VECTOR_RULES: tuple[Rule, ...] = (
    Rule("functional_role", "sales", _rx("sales", "account manager", "territory", "reps?",
         "sell[- ]through", "placements?", "buyers?"), "sales_focus_score"),
    Rule("functional_role", "marketing", _rx("marketing", "brand manager", "campaigns?",
         "promotions?", "social media", "brand awareness"), "marketing_focus_score"),
    Rule("functional_role", "operations", _rx("operations", "logistics", "supply chain",
         "inventory", "production", "warehouse", "fulfil?lment"), "operations_focus_score"),
    Rule("functional_role", "compliance", _rx("compliance", "regulations?", "regulatory", "ttb",
         "label approvals?", "licen[cs]e", "licensing", "excise"), "compliance_focus_score"),
    Rule("org_type", "supplier", _rx("brewery", "breweries", "winery", "wineries", "distillery",
         "distilleries", "brand owner", "supplier", "producer", "we brew", "we make"),
         "supplier_score"),
    Rule("org_type", "distributor", _rx("distributor", "distributors", "wholesaler",
         "wholesale", "distribution company", "three[- ]tier"), "distributor_score"),
    Rule("org_size", "craft", _rx("craft", "small", "independent", "taproom", "startup",
         "family[- ]owned"), "craft_score"),
    Rule("org_size", "mid_sized", _rx("regional", "mid[- ]sized?", "growing", "multi[- ]state"),
         "mid_sized_score"),
    Rule("org_size", "large", _rx("national", "enterprise", "global", "multinational",
         "large", "fortune 500"), "large_score"),
    Rule("product_focus", "beer", _rx("beer", "ipa", "lager", "ale", "brewing"), None),
    Rule("product_focus", "wine", _rx("wine", "wines", "vineyard", "winemaking"), None),
    Rule("product_focus", "spirits", _rx("spirits", "whiskey", "whisky", "vodka", "gin",
         "tequila", "rum", "bourbon"), None),
    Rule("product_focus", "rtd", _rx("rtd", "ready[- ]to[- ]drink", "seltzers?",
         "canned cocktails?"), None),
    Rule("product_focus", "non_alcoholic", _rx("non[- ]alcoholic", "na beer", "alcohol[- ]free",
         "kombucha"), None),
)  # fmt: skip

PAIN_POINT_RULES: dict[str, re.Pattern[str]] = {
    "execution_blind_spot": _rx("visibility", "blind spot", "what happens in (the )?stores?",
                                "execution", "out of stocks?", "shelf"),
    "roi_proof": _rx("roi", "prove (the )?(value|return)", "return on investment", "justify"),
    "distributor_management": _rx("depletions?", "distributor (performance|reps?)",
                                  "chase (my|our) distributors?"),
    "data_fragmentation": _rx("spreadsheets?", "excel", "manual reports?", "data (is )?everywhere",
                              "too many (tools|systems)"),
    "compliance_burden": _rx("label approvals?", "state registrations?", "paperwork", "cola"),
    "sales_velocity": _rx("velocity", "turns", "slow[- ]moving", "rate of sale"),
}  # fmt: skip

SCORE_DELTA = {"weak": 0.05, "medium": 0.1, "strong": 0.2}


def _case_sensitive(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """*pattern* without ``re.I``, for lowercased ASCII text; None if the pattern is not all
    lowercase (then only the ``re.I`` original is right).

    On an ASCII message, ``re.I`` matching equals case-sensitive matching of the lowercased
    message at the very same positions (``lower()`` keeps an ASCII string's length and its word
    boundaries), in about half the time: ``re.I`` folds both sides at every comparison.
    """
    text = pattern.pattern
    return re.compile(text) if text == text.lower() else None


# (the re.I pattern, its case-sensitive twin or None), in rule order
_SELF_PAIR = (_SELF, _case_sensitive(_SELF))
_VECTOR_PAIRS = tuple((r.pattern, _case_sensitive(r.pattern)) for r in VECTOR_RULES)
_PAIN_PAIRS = tuple((rx, _case_sensitive(rx)) for rx in PAIN_POINT_RULES.values())


def _search(
    pair: tuple[re.Pattern[str], re.Pattern[str] | None], message: str, lowered: str | None
) -> re.Match[str] | None:
    """``pair[0].search(message)``, through the faster twin when *lowered* (ASCII) allows."""
    if lowered is not None and pair[1] is not None:
        return pair[1].search(lowered)
    return pair[0].search(message)


class SignalDetector(Protocol):
    """Anything that turns a message (and the persona so far) into persona signals."""

    def detect(self, message: str, persona: PersonaScores | None) -> list[PersonaSignal]: ...


class KeywordSignalDetector:
    """Keyword rules for the four vectors and the pain points; no network, deterministic."""

    def detect(self, message: str, persona: PersonaScores | None = None) -> list[PersonaSignal]:
        lowered = message.lower() if message.isascii() else None
        strength = "strong" if _search(_SELF_PAIR, message, lowered) else "medium"
        signals: list[PersonaSignal] = []
        for rule, pair in zip(VECTOR_RULES, _VECTOR_PAIRS, strict=True):
            match = _search(pair, message, lowered)
            if not match:
                continue
            signals.append(
                PersonaSignal(
                    signal_type=f"{rule.vector}_mention",
                    signal_text=_evidence(message, match),
                    signal_strength=strength,
                    vector=rule.vector,
                    vector_value=rule.value,
                    score_updates={rule.score: SCORE_DELTA[strength]} if rule.score else {},
                )
            )
        pains = [
            name
            for name, pair in zip(PAIN_POINT_RULES, _PAIN_PAIRS, strict=True)
            if _search(pair, message, lowered)
        ]
        if pains:
            signals.append(
                PersonaSignal(
                    signal_type="pain_point_mention",
                    signal_text=message[:200],
                    signal_strength=strength,
                    pain_points_inferred=pains,
                )
            )
        return signals


def _evidence(message: str, match: re.Match[str], radius: int = 60) -> str:
    """The words around a match: enough to audit the signal, not the whole message."""
    start, end = max(0, match.start() - radius), min(len(message), match.end() + radius)
    return message[start:end].strip()
