"""Errors of accounts and sign-in; messages are one line meant for the user."""

from __future__ import annotations

from camsight.errors import CamsightError


class AuthError(CamsightError):
    """Base class of account, password and sign-in errors."""


class PasswordPolicyError(AuthError):
    """A new password does not meet the policy (too short, the user's name, ...)."""


class AccountError(AuthError):
    """An account change is not possible (bad name or role, unknown camera, last admin...)."""


class AccountConflict(AccountError):
    """A change refused for what it would leave behind: no enabled admin, or an admin locked out by
    their own hand (disabling, demoting or removing oneself). An HTTP layer answers 409."""


class InvalidCredentials(AuthError):
    """Wrong user name or password, or a disabled account: deliberately one message for all."""

    def __init__(self, message: str = "wrong user name or password") -> None:
        super().__init__(message)


class RateLimited(AuthError):
    """Too many failed sign-ins; ``retry_after`` is whole seconds until one more is allowed.

    An HTTP layer answers 429 with a ``Retry-After: <retry_after>`` header.
    """

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
