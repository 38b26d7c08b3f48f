"""Supabase's keys, old and new: what the supabase transport authenticates and mints tokens with.

A Supabase project has two generations of keys, and a project migrating has both for a while:

- **current**: a *publishable* key (``sb_publishable_…``, RLS applies) and a *secret* key
  (``sb_secret_…``, server only): opaque strings, not JWTs, sent only as the ``apikey``
  header. Tokens are verified against the project's JWT *signing keys* (its JWKS): to mint the
  per-session tokens RLS relies on, import a private key of your own as a signing key (ES256 by
  default, RS256 too) and sign with it, its ``kid`` in the token's header.
  ``bevsession gen-signing-key`` (or ``supabase gen signing-key --algorithm ES256``) makes one.
- **legacy** (retired by the end of 2026): the ``anon`` and ``service_role`` keys, HS256 JWTs
  signed with the project's *JWT secret*, which also signs the per-session tokens.

:class:`SigningKey` loads such a private key from a JWK (what ``supabase gen signing-key``
prints) or PEM and signs with it; :class:`SupabaseKeys` resolves the environment variables into
what the transport needs, refusing a missing or misplaced piece with a message naming the
variable. Framework-free, and it imports neither supabase-py nor PostgREST's client.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = [
    "ALGORITHMS",
    "ENV",
    "PUBLISHABLE_KEY_PREFIX",
    "SECRET_KEY_PREFIX",
    "SigningKey",
    "SigningKeyError",
    "SupabaseKeys",
    "is_opaque_key",
]

Algorithm = Literal["ES256", "RS256"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("ES256", "RS256")
SECRET_KEY_PREFIX: Final = "sb_secret_"  # noqa: S105 (a prefix, not a secret)
PUBLISHABLE_KEY_PREFIX: Final = "sb_publishable_"
MIN_RSA_BITS: Final = 2048
_P256_BYTES: Final = 32

# The variables, under the names Supabase's documentation uses.
ENV: Final = {
    "url": "SUPABASE_URL",
    "secret_key": "SUPABASE_SECRET_KEY",
    "publishable_key": "SUPABASE_PUBLISHABLE_KEY",
    "signing_key": "SUPABASE_JWT_SIGNING_KEY",
    "signing_key_id": "SUPABASE_JWT_SIGNING_KEY_ID",
    "service_role_key": "SUPABASE_SERVICE_ROLE_KEY",
    "anon_key": "SUPABASE_ANON_KEY",
    "jwt_secret": "SUPABASE_JWT_SECRET",
}


def is_opaque_key(key: str) -> bool:
    """A current API key (``sb_publishable_…``, ``sb_secret_…``): an opaque string, never sent
    as a Bearer token (Supabase's gateway turns it into a JWT itself)."""
    return key.startswith("sb_")


class SigningKeyError(ValueError):
    """The signing key cannot be used; the message says why (never the key itself)."""


_FROM_URLSAFE = str.maketrans("-_+/", "+/-_")  # base64url to base64 (+ and / become invalid)


def _b64url_decode(text: object, what: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise SigningKeyError(f"the JWK has no usable {what!r}")
    standard = text.translate(_FROM_URLSAFE) + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(standard, validate=True)
    except ValueError:
        raise SigningKeyError(f"the JWK's {what!r} is not base64url") from None


def _b64url_int(text: object, what: str) -> int:
    return int.from_bytes(_b64url_decode(text, what), "big")


def _b64url(number: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (number.bit_length() + 7) // 8)
    return base64.urlsafe_b64encode(number.to_bytes(length, "big")).rstrip(b"=").decode("ascii")


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A private key imported into a Supabase project as a JWT signing key, with its ``kid``.

    Signs the per-session tokens; PostgREST verifies them with the public half from the
    project's JWKS, trying only the key the token's ``kid`` names.
    """

    algorithm: Algorithm
    key_id: str
    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not self.key_id:
            raise SigningKeyError("the signing key needs its key id (kid)")
        if self.algorithm == "ES256":
            if not isinstance(self.private_key, ec.EllipticCurvePrivateKey) or not isinstance(
                self.private_key.curve, ec.SECP256R1
            ):
                raise SigningKeyError("ES256 needs an EC private key on the P-256 curve")
        elif self.algorithm == "RS256":
            if not isinstance(self.private_key, rsa.RSAPrivateKey):
                raise SigningKeyError("RS256 needs an RSA private key")
            if self.private_key.key_size < MIN_RSA_BITS:
                raise SigningKeyError(f"RS256 needs an RSA key of at least {MIN_RSA_BITS} bits")
        else:
            raise SigningKeyError(f"unsupported algorithm {self.algorithm!r}: use ES256 or RS256")

    # --- making and loading ---------------------------------------------------------------
    @classmethod
    def generate(cls, algorithm: Algorithm = "ES256", key_id: str | None = None) -> SigningKey:
        """A new key, as ``supabase gen signing-key --algorithm …`` makes one (RSA: 2048 bits;
        ``kid``: a random UUID unless given)."""
        private_key: PrivateKey
        if algorithm == "ES256":
            private_key = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "RS256":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
        else:
            raise SigningKeyError(f"unsupported algorithm {algorithm!r}: use ES256 or RS256")
        return cls(algorithm, key_id or str(uuid.uuid4()), private_key)

    @classmethod
    def load(cls, text: str, key_id: str | None = None) -> SigningKey:
        """A key from the text of ``SUPABASE_JWT_SIGNING_KEY``: a private JWK as JSON (one key,
        a list of keys, or ``{"keys": [...]}``; then *key_id* picks one and must match its
        ``kid``), or a PEM private key (then *key_id* is required)."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            if not key_id:
                raise SigningKeyError("a PEM key carries no key id: give its kid as well")
            return cls.from_pem(text, key_id)
        try:
            parsed = json.loads(text)
        except ValueError:
            raise SigningKeyError("neither a JWK (JSON) nor a PEM private key") from None
        if isinstance(parsed, dict) and isinstance(parsed.get("keys"), list):
            parsed = parsed["keys"]
        if isinstance(parsed, list):
            keys = [k for k in parsed if isinstance(k, dict)]
            if key_id is not None:
                keys = [k for k in keys if k.get("kid") == key_id]
            if len(keys) != 1:
                raise SigningKeyError(
                    f"the JWK set holds {len(keys)} key(s)"
                    + (f" with kid {key_id!r}" if key_id is not None else "")
                    + ": give exactly one, or the kid of the one to use"
                )
            parsed = keys[0]
        if not isinstance(parsed, dict):
            raise SigningKeyError("the JWK must be a JSON object")
        return cls.from_jwk(parsed, key_id)

    @classmethod
    def from_pem(cls, pem: str | bytes, key_id: str) -> SigningKey:
        """A PEM private key (PKCS#8, SEC1 or PKCS#1, unencrypted); the algorithm follows the
        key: P-256 → ES256, RSA → RS256."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise SigningKeyError(
                "not a PEM private key (an unencrypted EC P-256 or RSA key is needed)"
            ) from None
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return cls("ES256", key_id, key)
        if isinstance(key, rsa.RSAPrivateKey):
            return cls("RS256", key_id, key)
        raise SigningKeyError("the PEM key is neither EC P-256 (ES256) nor RSA (RS256)")

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], key_id: str | None = None) -> SigningKey:
        """A private JWK: ``kty`` EC (``crv`` P-256) or RSA, with ``d``; ``kid`` from the JWK
        or *key_id* (both given: they must agree); ``alg``, if present, must fit the key."""
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise SigningKeyError("the JWK's kid must be a string")
        if key_id is not None and kid is not None and kid != key_id:
            raise SigningKeyError(f"the JWK's kid {kid!r} differs from the key id {key_id!r}")
        kid = kid or key_id
        if not kid:
            raise SigningKeyError("the JWK has no kid: give the key id as well")
        if "d" not in jwk:
            raise SigningKeyError("the JWK is a public key: the private key (with 'd') is needed")
        kty, alg = jwk.get("kty"), jwk.get("alg")
        try:
            if kty == "EC":
                if jwk.get("crv") != "P-256":
                    raise SigningKeyError("only EC keys on the P-256 curve (ES256) are supported")
                numbers = ec.EllipticCurvePrivateNumbers(
                    _b64url_int(jwk["d"], "d"),
                    ec.EllipticCurvePublicNumbers(
                        _b64url_int(jwk.get("x"), "x"), _b64url_int(jwk.get("y"), "y"),
                        ec.SECP256R1(),
                    ),
                )  # fmt: skip
                algorithm: Algorithm = "ES256"
                private_key: PrivateKey = numbers.private_key()
            elif kty == "RSA":
                n, e, d = (_b64url_int(jwk.get(k), k) for k in ("n", "e", "d"))
                if all(k in jwk for k in ("p", "q", "dp", "dq", "qi")):
                    p, q, dp, dq, qi = (
                        _b64url_int(jwk[k], k) for k in ("p", "q", "dp", "dq", "qi")
                    )
                else:  # only n, e, d: recover the rest
                    p, q = rsa.rsa_recover_prime_factors(n, e, d)
                    dp, dq = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q)
                    qi = rsa.rsa_crt_iqmp(p, q)
                rsa_numbers = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n))
                algorithm, private_key = "RS256", rsa_numbers.private_key()
            elif kty == "oct":
                raise SigningKeyError(
                    "a shared secret (kty oct) is not a signing key here: give it as "
                    "SUPABASE_JWT_SECRET"
                )
            else:
                raise SigningKeyError(f"unsupported key type {kty!r}: use EC P-256 or RSA")
        except SigningKeyError:
            raise
        except (ValueError, TypeError):  # cryptography refuses inconsistent numbers
            raise SigningKeyError("the JWK's numbers do not form a valid private key") from None
        if alg is not None and alg != algorithm:
            raise SigningKeyError(f"the JWK's alg {alg!r} does not fit its {kty} key")
        return cls(algorithm, kid, private_key)

    # --- what it gives --------------------------------------------------------------------
    def private_jwk(self) -> dict[str, Any]:
        """The private JWK, shaped as ``supabase gen signing-key`` prints it (what you import
        into the project and give as ``SUPABASE_JWT_SIGNING_KEY``)."""
        head: dict[str, Any] = {
            "kty": "EC" if self.algorithm == "ES256" else "RSA",
            "kid": self.key_id,
            "use": "sig",
            "key_ops": ["sign", "verify"],
            "alg": self.algorithm,
            "ext": True,
        }
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            numbers = self.private_key.private_numbers()
            return {
                **head,
                "d": _b64url(numbers.private_value, _P256_BYTES),
                **self._ec_public(numbers.public_numbers),
            }
        rsa_numbers = self.private_key.private_numbers()
        public = rsa_numbers.public_numbers
        return {
            **head,
            "n": _b64url(public.n),
            "e": _b64url(public.e),
            "d": _b64url(rsa_numbers.d),
            "p": _b64url(rsa_numbers.p),
            "q": _b64url(rsa_numbers.q),
            "dp": _b64url(rsa_numbers.dmp1),
            "dq": _b64url(rsa_numbers.dmq1),
            "qi": _b64url(rsa_numbers.iqmp),
        }

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK, as the project's JWKS publishes it (what PostgREST verifies with)."""
        head = {"kid": self.key_id, "use": "sig", "key_ops": ["verify"], "alg": self.algorithm}
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            public = self.private_key.public_key().public_numbers()
            return {"kty": "EC", **head, **self._ec_public(public)}
        rsa_public = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", **head, "n": _b64url(rsa_public.n), "e": _b64url(rsa_public.e)}

    @staticmethod
    def _ec_public(public: ec.EllipticCurvePublicNumbers) -> dict[str, str]:
        return {
            "crv": "P-256",
            "x": _b64url(public.x, _P256_BYTES),
            "y": _b64url(public.y, _P256_BYTES),
        }

    def private_pem(self) -> str:
        """The private key as unencrypted PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A JWT of *claims*, signed with this key, ``kid`` in its header."""
        return jwt.encode(
            dict(claims), self.private_key, algorithm=self.algorithm, headers={"kid": self.key_id}
        )

    def verify(self, token: str, **options: Any) -> dict[str, Any]:
        """Decode a token signed with this key (tests and diagnostics)."""
        decoded: dict[str, Any] = jwt.decode(
            token, self.private_key.public_key(), algorithms=[self.algorithm], **options
        )
        return decoded


@dataclass(frozen=True)
class SupabaseKeys:
    """What the supabase transport needs from a project, resolved from its variables.

    ``service_key`` (the secret key, or the legacy service_role key) authenticates admin calls;
    ``public_key`` (the publishable key, or the legacy anon key; None: the service key, legacy
    only) is the ``apikey`` of visitor calls, whose identity is a token minted with
    ``signing_key`` or, legacy, ``jwt_secret``.
    """

    service_key: str | None = field(repr=False)
    public_key: str | None = field(default=None, repr=False)
    jwt_secret: str | None = field(default=None, repr=False)
    signing_key: SigningKey | None = field(default=None, repr=False)

    @property
    def generation(self) -> Literal["current", "legacy", "mixed"]:
        """Which keys are in use (for logs): ``current``, ``legacy`` or ``mixed`` (migrating)."""
        new = [
            is_opaque_key(self.service_key or self.public_key or ""),
            self.signing_key is not None,
        ]
        return "current" if all(new) else "legacy" if not any(new) else "mixed"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str | None], *, service: bool = True, visitor: bool = True
    ) -> SupabaseKeys:
        """Resolve the variables of :data:`ENV` (empty means unset); a :class:`ValueError`
        names every missing or misplaced one. When both generations are given for one role,
        the current key wins. The public key (publishable, or legacy anon) is always required:
        visitor calls never carry the service key (*visitor* False: admin calls only, e.g.
        ``bevsession purge``). *service* False: the service key is not needed (the edge worker
        makes no admin call)."""
        get = {name: (env.get(var) or "").strip() or None for name, var in ENV.items()}
        problems: list[str] = []
        secret, service_role = get["secret_key"], get["service_role_key"]
        publishable, anon = get["publishable_key"], get["anon_key"]
        for name, value, prefix in (
            ("secret_key", secret, SECRET_KEY_PREFIX),
            ("publishable_key", publishable, PUBLISHABLE_KEY_PREFIX),
        ):
            if value is not None and not value.startswith(prefix):
                problems.append(f"{ENV[name]} must be a key starting with {prefix}")
        for name, value, instead in (
            ("service_role_key", service_role, "secret_key"),
            ("anon_key", anon, "publishable_key"),
        ):
            if value is not None and is_opaque_key(value):
                problems.append(f"{ENV[name]} holds a new-style key: set it as {ENV[instead]}")
        service_key = secret or service_role
        public_key = publishable or anon
        if service_key is None and service:
            problems.append(
                f"the supabase transport needs {ENV['secret_key']} (or the legacy "
                f"{ENV['service_role_key']})"
            )
        if public_key is None and visitor:
            if service_key is not None and is_opaque_key(service_key):
                problems.append(
                    f"{ENV['secret_key']} needs {ENV['publishable_key']}: visitor calls carry "
                    "the publishable key, never the secret one"
                )
            else:
                problems.append(
                    f"visitor calls need {ENV['publishable_key']} (or the legacy "
                    f"{ENV['anon_key']}): the service key is never sent for them"
                )
        signing_key = None
        if get["signing_key"] is not None:
            try:
                signing_key = SigningKey.load(get["signing_key"], get["signing_key_id"])
            except SigningKeyError as exc:
                hint = f" (set {ENV['signing_key_id']})" if "kid" in str(exc) else ""
                problems.append(f"{ENV['signing_key']}: {exc}{hint}")
        elif get["signing_key_id"] is not None:
            problems.append(f"{ENV['signing_key_id']} is set without {ENV['signing_key']}")
        if get["signing_key"] is None and get["jwt_secret"] is None:
            who = ENV["secret_key"] if secret else "the supabase transport"
            problems.append(
                f"{who} needs {ENV['signing_key']} (a private key imported into the project "
                f"as a JWT signing key, with {ENV['signing_key_id']} unless the JWK has its "
                "kid; `bevsession gen-signing-key` makes one) to mint the visitors' tokens, "
                f"or the legacy {ENV['jwt_secret']}"
            )
        secret_text = get["jwt_secret"]
        if signing_key is None and secret_text is not None and len(secret_text) < 32:
            problems.append(f"{ENV['jwt_secret']} must have at least 32 characters")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(
            service_key=service_key,
            public_key=public_key,
            jwt_secret=None if signing_key is not None else secret_text,
            signing_key=signing_key,
        )
