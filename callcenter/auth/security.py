"""Password hashing (argon2id) and random tokens, of which only SHA-256 digests are stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from callcenter.config import get_settings


def _hasher() -> PasswordHasher:
    settings = get_settings()
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


_HASHER = _hasher()
"""Built once from the settings (defaults: RFC 9106 low-memory profile); read-only after."""


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The outcome of a password check; `new_hash` is set when the stored hash is outdated."""

    ok: bool
    new_hash: str | None = None


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> PasswordCheck:
    """Whether `password` matches `password_hash`, and a fresh hash if the parameters changed."""
    try:
        _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return PasswordCheck(ok=False)
    if _HASHER.check_needs_rehash(password_hash):
        return PasswordCheck(ok=True, new_hash=_HASHER.hash(password))
    return PasswordCheck(ok=True)


def burn_password_check(password: str) -> None:
    """Spend as long as a real check, so unknown logins cannot be told apart by timing."""
    verify_password(_dummy_hash(), password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def new_token() -> str:
    """A fresh random token for a cookie, an API key or a CSRF check (256 bits)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two tokens; missing ones never match."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
