"""A second, deliberately plain Fe26.2 implementation, for the tests only.

Written from the format description with ``cryptography``'s high-level objects (PBKDF2HMAC,
HMAC, the PKCS7 padder) and none of ``bevsession.sealing``'s code, so a test that agrees with it
checks the format, not the implementation against itself. It can also forge: build a seal with
any components and a valid MAC, to reach the checks that sit behind the MAC.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

ENC_SALT = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
MAC_SALT = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
IV = bytes(i * 17 for i in range(16))


def derive(password: str, salt: str) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA1(), length=32, salt=salt.encode(), iterations=1)  # noqa: S303 (iron's choice)
    return kdf.derive(password.encode())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(password: str, salt: str, base: str) -> str:
    h = HMAC(derive(password, salt), hashes.SHA256())
    h.update(base.encode("utf-8", "surrogatepass"))
    return b64url(h.finalize())


def pkcs7(data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    return padder.update(data) + padder.finalize()


def encrypt_raw(password: str, salt: str, iv: bytes, padded: bytes) -> bytes:
    """AES-256-CBC without adding padding: the caller chooses the exact blocks."""
    encryptor = Cipher(algorithms.AES(derive(password, salt)), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt(password: str, seal: str) -> bytes:
    """The plaintext of a well-formed seal (no MAC check): for looking inside our own seals."""
    parts = seal.removesuffix("~2").split("*")
    decryptor = Cipher(
        algorithms.AES(derive(password, parts[2])), modes.CBC(b64url_decode(parts[3]))
    ).decryptor()
    padded = decryptor.update(b64url_decode(parts[4])) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


@dataclass
class Forge:
    """Components of a seal; ``seal()`` writes it with a valid MAC unless ``mac`` is given."""

    password: str
    plaintext: bytes = b"{}"
    pad: bool = True
    id: str = "1"
    prefix: str = "Fe26.2"
    enc_salt: str = ENC_SALT
    iv: bytes = IV
    iv_b64: str | None = None
    ct_b64: str | None = None
    expiration: str = ""
    mac_salt: str = MAC_SALT
    mac: str | None = None
    suffix: str = "~2"
    mac_password: str | None = None

    def base(self) -> str:
        padded = pkcs7(self.plaintext) if self.pad else self.plaintext
        ct_b64 = self.ct_b64
        if ct_b64 is None:
            ct_b64 = b64url(encrypt_raw(self.password, self.enc_salt, self.iv, padded))
        iv_b64 = self.iv_b64 if self.iv_b64 is not None else b64url(self.iv)
        return f"{self.prefix}*{self.id}*{self.enc_salt}*{iv_b64}*{ct_b64}*{self.expiration}"

    def seal(self) -> str:
        base = self.base()
        digest = self.mac
        if digest is None:
            digest = mac(self.mac_password or self.password, self.mac_salt, base)
        return f"{base}*{self.mac_salt}*{digest}{self.suffix}"
