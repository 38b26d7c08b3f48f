"""bevsession: the Python RPC layer of bevgenie-session (models, cookie sealing, transports)."""

from .cookies import (
    MAX_COOKIE_LENGTH,
    CookieOptions,
    CookieTooLarge,
    destroy_cookie_header,
    set_cookie_header,
)
from .sealing import (
    Password,
    SealConfigError,
    Sealer,
    SealError,
    SealReason,
    seal_data,
    unseal_data,
)

__all__ = [
    "MAX_COOKIE_LENGTH",
    "CookieOptions",
    "CookieTooLarge",
    "Password",
    "SealConfigError",
    "SealError",
    "SealReason",
    "Sealer",
    "destroy_cookie_header",
    "seal_data",
    "set_cookie_header",
    "unseal_data",
]
