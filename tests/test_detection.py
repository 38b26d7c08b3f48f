"""The keyword detector: its fast path for ASCII messages finds exactly what ``re.I`` finds."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bevsession_edge import detection
from bevsession_edge.detection import KeywordSignalDetector

PAIRS = (detection._SELF_PAIR, *detection._VECTOR_PAIRS, *detection._PAIN_PAIRS)
# Phrases the rules look for, plus characters that case-fold onto ASCII letters under re.I
# (long s, Kelvin sign, dotted capital I) and word characters next to the phrases.
WORDS = sorted(
    {w for pattern, _ in PAIRS for w in re.findall(r"[a-z][a-z '\-]*", pattern.pattern)}
    | {"\u017fales", "\u212araft", "\u0130pa", "é", "_", "1", "x"}
)
PIECES = st.sampled_from(WORDS) | st.sampled_from([" ", "-", ", ", "\n", "!"])


def shuffled_case(text: str, flips: list[bool]) -> str:
    flips = (flips + [False] * len(text))[: len(text)]
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


def test_every_rule_has_a_case_sensitive_twin() -> None:
    assert all(twin is not None for _, twin in PAIRS)


@given(st.lists(PIECES, max_size=16), st.lists(st.booleans(), max_size=200))
def test_fast_path_matches_what_re_i_matches(pieces: list[str], flips: list[bool]) -> None:
    message = shuffled_case("".join(pieces), flips)
    lowered = message.lower() if message.isascii() else None
    for pair in PAIRS:
        found = detection._search(pair, message, lowered)
        expected = pair[0].search(message)
        assert (found and found.span()) == (expected and expected.span()), (pair[0], message)


def test_detect_on_mixed_case_ascii_and_non_ascii() -> None:
    detector = KeywordSignalDetector()
    ascii_signals = detector.detect("WE are a Craft BREWERY; our Distributors hide Depletions")
    assert {s.vector_value for s in ascii_signals if s.vector} == {
        "supplier", "distributor", "craft"
    }  # fmt: skip
    assert all(s.signal_strength == "strong" for s in ascii_signals)
    assert [s.pain_points_inferred for s in ascii_signals if not s.vector] == [
        ["distributor_management"]
    ]
    # non-ASCII: the re.I patterns, where the long s matches "s" (sales)
    other = detector.detect("\u017fales team, caf\u00e9")
    assert [s.vector_value for s in other] == ["sales"]
    assert other[0].signal_text == "\u017fales team, caf\u00e9"
