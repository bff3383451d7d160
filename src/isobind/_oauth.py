"""OAuth 2.0 client credentials for HTTP MCP servers, obtained and refreshed by the host.

The host requests an access token from the token endpoint (RFC 6749, section 4.4)
with the client id and secret in HTTP Basic authentication, sends it as
``Authorization: Bearer`` on every request to the server, and requests a new one
shortly before it expires or when the server responds with 401. Each token is added to
the host's redactor before it is first used, so it is scrubbed like any secret.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

import httpx2

__all__ = ["ClientCredentials", "ClientCredentialsAuth", "TokenError"]

logger = logging.getLogger(__name__)

# A token is renewed when less than this share of its lifetime remains, and at
# most this many seconds early, so that a request never starts with a token that
# expires on the way.
_RENEW_SHARE = 0.1
_RENEW_MAX_SECONDS = 30.0
_TOKEN_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The settings of the client credentials grant; every field but the URL may be secret."""

    token_url: str = field(repr=False)
    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    scope: str | None = field(default=None, repr=False)
    audience: str | None = field(default=None, repr=False)


class TokenError(Exception):
    """Raised when the token endpoint does not return a usable access token."""


class ClientCredentialsAuth(httpx2.Auth):
    """An httpx2 auth flow that adds a bearer token from the client credentials grant.

    `on_token` receives each new access token before it is used, so that the
    caller can add it to its redactor.
    """

    def __init__(
        self,
        credentials: ClientCredentials,
        on_token: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._on_token = on_token
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.tokens_issued = 0

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = await self._current_token(rejected=None)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        # The server may have revoked the token before its expiry, so renew it once
        # and retry. The client reads and closes the 401 response itself.
        token = await self._current_token(rejected=token)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def _current_token(self, *, rejected: str | None) -> str:
        async with self._lock:
            expired = self._clock() >= self._renew_at
            if self._token is None or expired or self._token == rejected:
                await self._request_token()
            assert self._token is not None
            return self._token

    async def _request_token(self) -> None:
        credentials = self._credentials
        form = {"grant_type": "client_credentials"}
        if credentials.scope:
            form["scope"] = credentials.scope
        if credentials.audience:
            form["audience"] = credentials.audience
        async with httpx2.AsyncClient(timeout=_TOKEN_TIMEOUT) as client:
            try:
                response = await client.post(
                    credentials.token_url,
                    data=form,
                    auth=(credentials.client_id, credentials.client_secret),
                    headers={"Accept": "application/json"},
                )
            except httpx2.HTTPError as error:
                raise TokenError(f"the token request failed: {type(error).__name__}") from None
        if response.status_code != 200:
            # The body is not quoted, because a token endpoint may echo the secret.
            raise TokenError(f"the token endpoint returned HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise TokenError("the token endpoint returned a body that is not JSON") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError("the token endpoint returned no access_token")

        self._on_token(token)
        lifetime = body.get("expires_in")
        now = self._clock()
        if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
            early = min(lifetime * _RENEW_SHARE, _RENEW_MAX_SECONDS)
            self._renew_at = now + lifetime - early
        else:
            # Without expires_in the token is kept until the server rejects it.
            self._renew_at = float("inf")
        self._token = token
        self.tokens_issued += 1
        logger.info("obtained an OAuth access token (number %d)", self.tokens_issued)
