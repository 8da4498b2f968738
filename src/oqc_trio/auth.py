"""Credentials for the QCaaS ``Authentication-Token`` scheme.

A :class:`Credentials` holds either a pre-issued token, or an email and password that the
transport exchanges for a token (``POST /admin/logout`` then
``POST /admin/login?include_auth_token=true``), or nothing at all (no header is sent, which
the official SDK also allows).

How we differ from the official SDK:

- With email+password, a 401 triggers exactly one fresh login and one resend of the request
  (single-flight: concurrent 401s share one login). The official SDK logs in once and never
  refreshes, so an expired session fails every later call.
- A pre-issued token is never refreshed either way: a 401 is final, as in the official SDK.
- ``repr`` never shows the token or the password.
- :class:`AuthenticationError` is re-exported from :mod:`oqc_trio.exceptions`, where it is
  also a ``ServerException``.
"""

from __future__ import annotations

import attrs

from .exceptions import AuthenticationError

__all__ = ["AuthenticationError", "Credentials", "TokenCredential"]

#: The header the service reads the token from.
TOKEN_HEADER = "Authentication-Token"


def _optional_str(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"credentials must be strings, got {type(value).__name__}")
    return value


@attrs.define(kw_only=True, repr=False, eq=False)
class Credentials:
    """A token, or an email+password pair, or nothing.

    ``Credentials(token=...)`` sends that token on every authenticated request and never logs
    in. ``Credentials(email=..., password=...)`` logs in lazily on the first authenticated
    request and again, once, after a 401. ``Credentials()`` sends no header. Email and
    password must come together, and a token excludes both (``ValueError``, as in the
    official SDK). Empty strings count as absent.
    """

    token: str | None = attrs.field(default=None, converter=_optional_str)
    email: str | None = attrs.field(default=None, converter=_optional_str)
    password: str | None = attrs.field(default=None, converter=_optional_str)
    _session_token: str | None = attrs.field(default=None, init=False)
    _header: dict[str, str] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        if (self.email is None) != (self.password is None):
            raise ValueError("Both email and password must be provided together.")
        if self.token is not None and self.email is not None:
            raise ValueError("authentication_token and email/password are mutually exclusive.")
        if self.token is not None:
            self._header = {TOKEN_HEADER: self.token}

    @property
    def can_relogin(self) -> bool:
        """True for email+password: a 401 may be answered by logging in again."""
        return self.email is not None

    @property
    def needs_login(self) -> bool:
        """True when a login must happen before the next authenticated request."""
        return self.email is not None and self._session_token is None

    @property
    def supports_silent_reauth(self) -> bool:
        """Official-compat name for :attr:`can_relogin` (always False in the official
        ``TokenCredential``; True here for email+password)."""
        return self.can_relogin

    def header(self) -> dict[str, str]:
        """The auth header to send now: ``{"Authentication-Token": ...}`` or ``{}``.

        The same dict is returned until the token changes; do not mutate it.
        """
        return self._header

    def secrets(self) -> tuple[str, ...]:
        """Every secret string this object knows, for redacting text before it is shown."""
        found = (self.token, self.password, self._session_token)
        return tuple(s for s in found if s)

    def accept_login_token(self, token: str) -> None:
        """Store the token a login returned (called by the transport, not by users)."""
        if not self.can_relogin:
            raise ValueError("only email+password credentials log in")
        self._session_token = token
        self._header = {TOKEN_HEADER: token}

    def __repr__(self) -> str:
        if self.token is not None:
            kind = "token=***"
        elif self.email is not None:
            kind = f"email={self.email!r}, password=***"
        else:
            kind = "anonymous"
        return f"{type(self).__name__}({kind})"


class TokenCredential(Credentials):
    """The official SDK's name and constructor: ``TokenCredential(*, authentication_token=None,
    email=None, password=None)``.

    Behaves as :class:`Credentials` (so it re-logs in on a 401 with email+password, unlike
    the official class). ``http_post_callback`` is accepted for signature compatibility and
    ignored: the transport performs the login itself.
    """

    __slots__ = ()

    def __init__(
        self,
        *,
        authentication_token: str | None = None,
        email: str | None = None,
        password: str | None = None,
        http_post_callback: object = None,
    ) -> None:
        del http_post_callback
        super().__init__(token=authentication_token, email=email, password=password)
