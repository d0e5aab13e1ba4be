"""OAuth2 client credentials for TIDAL: one access token shared by every concurrent request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import structlog

logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """A TIDAL developer app's id and secret. The secret never appears in a repr or a log."""

    client_id: str
    client_secret: str = field(repr=False)


class TokenRequestFailed(Exception):
    """The token endpoint did not give a token. `transient` says whether trying again may help
    (5xx, timeouts, network) or not (4xx: the credentials are wrong)."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    renew_at: float  # monotonic seconds


class ClientCredentialsTokens:
    """The current access token, fetched on first use and cached until `refresh_margin` seconds
    before its `expires_in`. Concurrent callers share one token request: the first one fetches
    under the lock, the others wait for it and reuse its token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        auth_url: str,
        credentials: ClientCredentials,
        *,
        timeout: float,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._auth_url = auth_url
        self._credentials = credentials
        self._timeout = timeout
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def current(self) -> str:
        """A token that has not reached its renewal time; fetches one if needed."""
        token = self._token
        if token is not None and self._clock() < token.renew_at:
            return token.value
        async with self._lock:
            # Another caller may have fetched it while this one waited for the lock.
            token = self._token
            if token is None or self._clock() >= token.renew_at:
                token = await self._fetch()
                self._token = token
            return token.value

    async def renew(self, rejected: str) -> str:
        """A new token after the API answered 401 to `rejected`. When several requests got a
        401 with the same token, only the first renews; the others take its result."""
        async with self._lock:
            if self._token is None or self._token.value == rejected:
                self._token = await self._fetch()
            return self._token.value

    async def _fetch(self) -> _Token:
        started = self._clock()
        try:
            # Form-body client authentication, as TIDAL's own web SDK sends it; no scope is
            # needed for catalogue reads.
            response = await self._http.post(
                self._auth_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._credentials.client_id,
                    "client_secret": self._credentials.client_secret,
                },
                timeout=self._timeout,
            )
        except httpx.TimeoutException as error:
            raise TokenRequestFailed("token request timed out", transient=True) from error
        except httpx.HTTPError as error:
            raise TokenRequestFailed(
                f"token request failed: {type(error).__name__}", transient=True
            ) from error
        elapsed_ms = round((self._clock() - started) * 1000, 1)
        logger.info("tidal.token", status=response.status_code, elapsed_ms=elapsed_ms)
        if response.status_code != 200:
            raise TokenRequestFailed(
                f"token endpoint answered {response.status_code}",
                transient=response.status_code >= 500 or response.status_code == 429,
            )
        try:
            body = response.json()
            value = body["access_token"]
            expires_in = float(body.get("expires_in", 0))
        except (ValueError, KeyError, TypeError) as error:
            raise TokenRequestFailed("token response is not a token", transient=True) from error
        if not isinstance(value, str) or not value:
            raise TokenRequestFailed("token response has no access_token", transient=True)
        # A short-lived token is renewed at half its life rather than never being cached.
        margin = min(self._refresh_margin, expires_in / 2)
        return _Token(value=value, renew_at=self._clock() + expires_in - margin)
