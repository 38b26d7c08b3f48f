"""Supabase's keys: signing keys as JWK or PEM (the shape ``supabase gen signing-key`` prints),
their tokens, and the resolution of the SUPABASE_* variables with a message naming what is
missing. Real crypto throughout (cryptography, PyJWT)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bevsession.supabase_keys import SigningKey, SigningKeyError, SupabaseKeys
from bevsession.tokens import Claims, TokenMinter

# What `supabase gen signing-key` prints (supabase/cli internal/gen/signingkeys, its JWK
# struct): these members, in this order.
CLI_EC_MEMBERS = ["kty", "kid", "use", "key_ops", "alg", "ext", "d", "crv", "x", "y"]
CLI_RSA_MEMBERS = ["kty", "kid", "use", "key_ops", "alg", "ext", "n", "e", "d", "p", "q",
                   "dp", "dq", "qi"]  # fmt: skip


@pytest.fixture(scope="module")
def es256() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def rs256() -> SigningKey:
    return SigningKey.generate("RS256")


def _unpadded(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def test_generated_keys_have_the_cli_shape(es256: SigningKey, rs256: SigningKey) -> None:
    ec_jwk, rsa_jwk = es256.private_jwk(), rs256.private_jwk()
    assert list(ec_jwk) == CLI_EC_MEMBERS
    assert list(rsa_jwk) == CLI_RSA_MEMBERS
    for jwk, alg in ((ec_jwk, "ES256"), (rsa_jwk, "RS256")):
        assert jwk["alg"] == alg and jwk["use"] == "sig" and jwk["ext"] is True
        assert jwk["key_ops"] == ["sign", "verify"]
        assert uuid.UUID(jwk["kid"])  # a random UUID, as the CLI's
    assert ec_jwk["crv"] == "P-256"
    assert all(len(_unpadded(ec_jwk[k])) == 32 for k in ("d", "x", "y"))
    assert rs256.private_key.key_size == 2048  # type: ignore[union-attr]
    public = es256.public_jwk()
    assert "d" not in public and public["key_ops"] == ["verify"]
    assert public["kid"] == es256.key_id


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_a_key_round_trips_through_jwk_and_pem(
    es256: SigningKey, rs256: SigningKey, algorithm: str
) -> None:
    key = es256 if algorithm == "ES256" else rs256
    from_jwk = SigningKey.load(json.dumps(key.private_jwk()))
    from_pem = SigningKey.load(key.private_pem(), key.key_id)
    for loaded in (from_jwk, from_pem):
        assert (loaded.algorithm, loaded.key_id) == (key.algorithm, key.key_id)
        assert loaded.private_jwk() == key.private_jwk()
        token = loaded.sign({"role": "session_visitor"})
        assert jwt.get_unverified_header(token) == {
            "alg": algorithm, "kid": key.key_id, "typ": "JWT"
        }  # fmt: skip
        public = jwt.PyJWK(key.public_jwk()).key  # verified by the public JWK alone
        assert jwt.decode(token, public, algorithms=[algorithm]) == {"role": "session_visitor"}


def test_jwk_sets_and_lists_pick_the_key_by_kid(es256: SigningKey, rs256: SigningKey) -> None:
    both = [es256.private_jwk(), rs256.private_jwk()]
    assert SigningKey.load(json.dumps(both), rs256.key_id).algorithm == "RS256"
    assert SigningKey.load(json.dumps({"keys": both}), es256.key_id).algorithm == "ES256"
    assert SigningKey.load(json.dumps([both[0]])).key_id == es256.key_id  # the CLI's file
    with pytest.raises(SigningKeyError, match="2 key"):
        SigningKey.load(json.dumps(both))
    with pytest.raises(SigningKeyError, match="0 key"):
        SigningKey.load(json.dumps(both), "another-kid")


def test_keys_written_by_go_with_short_numbers_load() -> None:
    """The CLI writes ``big.Int.Bytes()``: a coordinate with a leading zero byte is 31 bytes
    long (RFC 7518 wants 32). Such keys must load all the same."""
    for _ in range(5000):
        key = SigningKey.generate("ES256")
        jwk = key.private_jwk()
        short = {k: base64.urlsafe_b64encode(_unpadded(jwk[k]).lstrip(b"\0")).rstrip(b"=")
                 .decode() for k in ("d", "x", "y")}  # fmt: skip
        if any(short[k] != jwk[k] for k in short):
            break
    else:
        pytest.fail("no key with a leading zero byte in 5000 tries")
    loaded = SigningKey.from_jwk({**jwk, **short})
    assert loaded.private_jwk() == jwk


def test_an_rsa_jwk_with_only_n_e_d_loads(rs256: SigningKey) -> None:
    jwk = rs256.private_jwk()
    minimal = {k: jwk[k] for k in ("kty", "kid", "n", "e", "d")}
    assert SigningKey.from_jwk(minimal).private_jwk() == jwk


def _pem(key: Any, fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, fmt, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    ("text", "key_id", "message"),
    [
        ("not a key", None, "neither a JWK"),
        ("[]", None, "0 key"),
        ('"a string"', None, "JSON object"),
        ('{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k"}', None, "public key"),
        ('{"kty": "oct", "k": "c2VjcmV0", "d": "x", "kid": "k"}', None, "SUPABASE_JWT_SECRET"),
        ('{"kty": "OKP", "crv": "Ed25519", "d": "x", "kid": "k"}', None, "unsupported key type"),
        ('{"kty": "EC", "crv": "P-384", "d": "AA", "x": "AA", "y": "AA", "kid": "k"}', None,
         "P-256"),
        ('{"kty": "EC", "crv": "P-256", "d": "AQ", "x": "AQ", "y": "AQ", "kid": "k"}', None,
         "valid private key"),
        ('{"kty": "EC", "crv": "P-256", "d": "!!", "x": "AQ", "y": "AQ", "kid": "k"}', None,
         "base64url"),
    ],
)  # fmt: skip
def test_unusable_keys_are_refused_with_the_reason(
    text: str, key_id: str | None, message: str
) -> None:
    with pytest.raises(SigningKeyError, match=message):
        SigningKey.load(text, key_id)


def test_key_ids_and_algorithms_must_agree(es256: SigningKey) -> None:
    jwk = es256.private_jwk()
    without_kid = {k: v for k, v in jwk.items() if k != "kid"}
    with pytest.raises(SigningKeyError, match="kid"):
        SigningKey.from_jwk(without_kid)
    assert SigningKey.from_jwk(without_kid, "given").key_id == "given"
    with pytest.raises(SigningKeyError, match="differs"):
        SigningKey.from_jwk(jwk, "another")
    with pytest.raises(SigningKeyError, match="does not fit"):
        SigningKey.from_jwk({**jwk, "alg": "RS256"})
    with pytest.raises(SigningKeyError, match="kid"):
        SigningKey.load(es256.private_pem())  # a PEM key carries no kid
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    with pytest.raises(SigningKeyError, match="2048"):
        SigningKey.load(_pem(small, serialization.PrivateFormat.PKCS8), "k")
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(SigningKeyError, match="P-256"):
        SigningKey.load(_pem(p384, serialization.PrivateFormat.PKCS8), "k")
    sec1 = _pem(es256.private_key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert SigningKey.load(sec1, "k").algorithm == "ES256"  # `openssl ecparam -genkey` output


def test_repr_never_shows_the_key(es256: SigningKey) -> None:
    text = repr(es256) + repr(TokenMinter(signing_key=es256))
    assert es256.private_jwk()["d"] not in text and "PRIVATE" not in text


def test_the_minter_signs_with_the_signing_key(es256: SigningKey, rs256: SigningKey) -> None:
    session_id = uuid.uuid4()
    for key in (es256, rs256):
        minter = TokenMinter(signing_key=key, claims=Claims(ttl=120))
        assert (minter.algorithm, minter.key_id) == (key.algorithm, key.key_id)
        token = minter.visitor_token(session_id)
        decoded = minter.decode(token)
        assert decoded["session_id"] == str(session_id) and decoded["exp"] - decoded["iat"] == 120
        impostor = SigningKey.generate(key.algorithm, key.key_id)  # same kid, another key
        with pytest.raises(jwt.InvalidSignatureError):
            TokenMinter(signing_key=impostor).decode(token)
    with pytest.raises(ValueError, match="one of them"):
        TokenMinter()
    with pytest.raises(ValueError, match="one of them"):
        TokenMinter("s" * 40, signing_key=es256)
    with pytest.raises(ValueError, match="kid"):
        TokenMinter(signing_key=es256, key_id="another")


# --- the SUPABASE_* variables ---------------------------------------------------------------
def legacy_env() -> dict[str, str]:
    return {
        "SUPABASE_SERVICE_ROLE_KEY": "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.x",
        "SUPABASE_ANON_KEY": "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.x",
        "SUPABASE_JWT_SECRET": "s" * 40,
    }


def current_env(key: SigningKey) -> dict[str, str]:
    return {
        "SUPABASE_SECRET_KEY": "sb_secret_abc",
        "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_abc",
        "SUPABASE_JWT_SIGNING_KEY": json.dumps(key.private_jwk()),
    }


def test_current_and_legacy_keys_resolve(es256: SigningKey, rs256: SigningKey) -> None:
    current = SupabaseKeys.from_env(current_env(es256))
    assert current.generation == "current"
    assert (current.service_key, current.public_key) == ("sb_secret_abc", "sb_publishable_abc")
    assert current.signing_key is not None and current.signing_key.key_id == es256.key_id
    assert current.jwt_secret is None
    pem = {**current_env(rs256), "SUPABASE_JWT_SIGNING_KEY": rs256.private_pem(),
           "SUPABASE_JWT_SIGNING_KEY_ID": rs256.key_id}  # fmt: skip
    assert SupabaseKeys.from_env(pem).signing_key.algorithm == "RS256"  # type: ignore[union-attr]
    legacy = SupabaseKeys.from_env(legacy_env())
    assert legacy.generation == "legacy" and legacy.jwt_secret == "s" * 40
    assert legacy.signing_key is None
    # a project migrating: both given, the current key wins for each role
    both = SupabaseKeys.from_env({**legacy_env(), **current_env(es256)})
    assert both.generation == "current" and both.service_key == "sb_secret_abc"
    mixed = SupabaseKeys.from_env({**legacy_env(), "SUPABASE_JWT_SIGNING_KEY":
                                   current_env(es256)["SUPABASE_JWT_SIGNING_KEY"]})  # fmt: skip
    assert mixed.generation == "mixed"
    assert "sb_secret" not in repr(current) and "s" * 40 not in repr(legacy)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SUPABASE_JWT_SIGNING_KEY": None}, ["SUPABASE_SECRET_KEY needs SUPABASE_JWT_SIGNING_KEY",
                                              "SUPABASE_JWT_SECRET"]),
        ({"SUPABASE_PUBLISHABLE_KEY": None},
         ["SUPABASE_SECRET_KEY needs SUPABASE_PUBLISHABLE_KEY"]),
        ({"SUPABASE_SECRET_KEY": None}, ["SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY"]),
        ({"SUPABASE_SECRET_KEY": "eyJhbGciOi.x.y"}, ["SUPABASE_SECRET_KEY must be a key starting "
                                                     "with sb_secret_"]),
        ({"SUPABASE_PUBLISHABLE_KEY": "sb_secret_abc"}, ["SUPABASE_PUBLISHABLE_KEY must be"]),
        ({"SUPABASE_SECRET_KEY": None, "SUPABASE_SERVICE_ROLE_KEY": "sb_secret_abc"},
         ["SUPABASE_SERVICE_ROLE_KEY holds a new-style key: set it as SUPABASE_SECRET_KEY"]),
        ({"SUPABASE_JWT_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----"},
         ["SUPABASE_JWT_SIGNING_KEY: a PEM key carries no key id", "SUPABASE_JWT_SIGNING_KEY_ID"]),
        ({"SUPABASE_JWT_SIGNING_KEY": '{"kty": "EC"}'}, ["SUPABASE_JWT_SIGNING_KEY: "]),
        ({"SUPABASE_JWT_SIGNING_KEY_ID": "another"}, ["differs from the key id 'another'"]),
    ],
    ids=["secret-without-signing-key", "secret-without-publishable", "no-service-key",
         "jwt-in-secret-key", "secret-as-publishable", "new-key-in-legacy-variable",
         "pem-without-kid", "broken-jwk", "kid-mismatch"],
)  # fmt: skip
def test_a_missing_or_misplaced_piece_is_named(
    es256: SigningKey, change: dict[str, str | None], named: list[str]
) -> None:
    env: dict[str, str | None] = {**current_env(es256), **change}
    with pytest.raises(ValueError) as info:
        SupabaseKeys.from_env(env)
    for words in named:
        assert words in str(info.value), str(info.value)
    assert es256.private_jwk()["d"] not in str(info.value)


def test_legacy_pieces_are_named_too() -> None:
    for missing, named in (("SUPABASE_JWT_SECRET", "SUPABASE_JWT_SIGNING_KEY"),
                           ("SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SERVICE_ROLE_KEY")):  # fmt: skip
        env = {k: v for k, v in legacy_env().items() if k != missing}
        with pytest.raises(ValueError, match=named):
            SupabaseKeys.from_env(env)
    with pytest.raises(ValueError, match="at least 32"):
        SupabaseKeys.from_env({**legacy_env(), "SUPABASE_JWT_SECRET": "short"})
    with pytest.raises(ValueError, match="SUPABASE_ANON_KEY"):
        SupabaseKeys.from_env(  # no anon key: visitor calls never carry the service key instead
            {k: v for k, v in legacy_env().items() if k != "SUPABASE_ANON_KEY"}
        )
