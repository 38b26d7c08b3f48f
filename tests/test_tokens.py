"""Visitor claims and their HS256 JWT: what PostgREST verifies and what SQL reads."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from bevsession.tokens import SERVICE_ROLE, VISITOR_ROLE, Claims, TokenMinter

SECRET = "s" * 40


def test_visitor_claims() -> None:
    session_id = uuid.uuid4()
    claims = Claims(ttl=300).visitor(session_id, now=1000)
    assert claims == {"role": VISITOR_ROLE, "session_id": str(session_id), "iat": 1000,
                      "exp": 1300, "iss": "bevsession"}  # fmt: skip
    assert Claims(audience="bevgenie").visitor(session_id)["aud"] == "bevgenie"
    assert Claims().service() == {"role": SERVICE_ROLE, "iss": "bevsession"}


def test_the_linked_account_is_a_claim_of_the_link_call_only() -> None:
    session_id, account = uuid.uuid4(), uuid.uuid4()
    claims = Claims().visitor(session_id, linked_user_id=account, now=1000)
    assert claims["linked_user_id"] == str(account)
    assert claims["session_id"] == str(session_id) and claims["role"] == VISITOR_ROLE
    assert "linked_user_id" not in Claims().visitor(session_id, now=1000)
    minter = TokenMinter(SECRET)
    assert minter.decode(minter.visitor_token(session_id, linked_user_id=account))[
        "linked_user_id"
    ] == str(account)
    assert "linked_user_id" not in minter.decode(minter.visitor_token(session_id))


def test_token_round_trip() -> None:
    minter = TokenMinter(SECRET)
    session_id = uuid.uuid4()
    token = minter.visitor_token(session_id)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    decoded = minter.decode(token)
    assert decoded["session_id"] == str(session_id)
    assert decoded["role"] == "session_visitor"
    assert decoded["exp"] - decoded["iat"] == 300
    assert abs(decoded["iat"] - time.time()) < 5


def test_expired_and_foreign_tokens_are_refused() -> None:
    old = TokenMinter(SECRET, Claims(clock=lambda: 1000.0)).visitor_token(uuid.uuid4())
    with pytest.raises(jwt.ExpiredSignatureError):
        TokenMinter(SECRET).decode(old)
    other = TokenMinter("o" * 40).visitor_token(uuid.uuid4())
    with pytest.raises(jwt.InvalidSignatureError):
        TokenMinter(SECRET).decode(other)


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        TokenMinter("short")
    with pytest.raises(ValueError, match="ttl"):
        Claims(ttl=5)
    assert "s" * 40 not in repr(TokenMinter(SECRET))


def test_tokens_are_distinct_per_session() -> None:
    minter = TokenMinter(SECRET)
    a, b = uuid.uuid4(), uuid.uuid4()
    assert minter.decode(minter.visitor_token(a))["session_id"] == str(a)
    assert minter.decode(minter.visitor_token(b))["session_id"] == str(b)


def test_key_id_goes_into_the_header() -> None:
    token = TokenMinter(SECRET, key_id="imported-1").visitor_token(uuid.uuid4())
    assert jwt.get_unverified_header(token)["kid"] == "imported-1"
    assert "kid" not in jwt.get_unverified_header(TokenMinter(SECRET).visitor_token(uuid.uuid4()))
