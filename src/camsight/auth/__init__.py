"""Accounts, roles, sessions, API tokens, login rate limiting and the tamper-evident audit log.

The web API is a thin layer over these modules; the CLI (``camsight users``,
``camsight tokens``, ``camsight audit``) uses the same functions. Every change
of a user or token writes its audit entry in the same transaction, so no
change is stored without its entry.

- :mod:`camsight.auth.passwords`: argon2id hashing and the password policy.
- :mod:`camsight.auth.users`: users, the first admin, :class:`~camsight.auth.users.Principal`.
- :mod:`camsight.auth.tokens`: API tokens (``cs_<prefix>_<secret>``).
- :mod:`camsight.auth.sessions`: browser sessions (sliding expiry).
- :mod:`camsight.auth.ratelimit`: failed sign-ins per name and per address.
- :mod:`camsight.auth.login`: sign-in and sign-out, tying the above together.
- :mod:`camsight.auth.roles`: roles, permissions and per-camera access.
- :mod:`camsight.auth.audit`: the hash-chained audit log.
"""
