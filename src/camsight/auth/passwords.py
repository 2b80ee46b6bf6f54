"""Password hashing (argon2id) and the password policy.

>>> h = hash_password("correct horse battery")
>>> h.startswith("$argon2id$")
True
>>> verify_password(h, "correct horse battery"), verify_password(h, "wrong")
(True, False)
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from camsight.auth.errors import PasswordPolicyError

MIN_LENGTH = 10
#: Hashing a megabyte-long "password" would be a cheap way to burn CPU on the server.
MAX_LENGTH = 1024

# argon2-cffi's defaults are RFC 9106's low-memory argon2id profile (t=3, 64 MiB, p=4):
# about 50 ms per hash on one core. Parameters live in each hash, so raising them
# later only needs needs_rehash() at sign-in.
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` in PHC string form (salt and parameters included)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches; a malformed stored hash counts as no match."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (re-hash at the next sign-in)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return hash_password("camsight-timing-equaliser")


def burn_verify_time(password: str) -> None:
    """Spend the time a real verification takes, so an unknown user name answers no faster."""
    verify_password(_dummy_hash(), password)


def check_policy(password: str, name: str | None = None) -> None:
    """Raise :class:`PasswordPolicyError` unless ``password`` is acceptable.

    The rules: at least 10 characters, at most 1024, not only spaces, not the
    user name. Length matters more than character classes (NIST SP 800-63B).

    >>> check_policy("short")
    Traceback (most recent call last):
    ...
    camsight.auth.errors.PasswordPolicyError: password too short: use at least 10 characters
    """
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"password too short: use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"password too long: use at most {MAX_LENGTH} characters")
    if not password.strip():
        raise PasswordPolicyError("password must not be only spaces")
    if name is not None and password.strip().lower() == name.strip().lower():
        raise PasswordPolicyError("password must not be the user name")
    if len(set(password)) < 3:
        raise PasswordPolicyError("password too simple: use more than two different characters")
