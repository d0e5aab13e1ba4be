"""HS256 JSON Web Tokens (PyJWT): `sub` is the user id, `exp` is required, `iss` and `aud` are
checked when configured. Every failure is one AuthenticationFailed whose reason never includes the
token or the secret.

Stricter than PyJWT where PyJWT is lenient (ADR 0022): the time claims must be JSON numbers (PyJWT
takes the string "9999999999" too, by calling int() on it), the subject must be written exactly
as the user id (no blank, no surrounding whitespace that would make " alice" a second alice),
and a request must carry one Authorization header, not two that proxies may read differently."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt

from domain.errors import InvalidUserId
from domain.values import UserId, parse_user_id

_ALGORITHM = "HS256"
# Tokens are not accepted from further away than this; it bounds the work of a hostile header.
_MAX_TOKEN_LENGTH = 4096
_SECRET_FILE = "jwt-secret"
# Verified tokens remembered (oldest forgotten first): a client sends the same token with every
# request, and checking its signature again was a tenth of an add's CPU (bench/).
_VERIFIED_CACHE_SIZE = 10_000
# RFC 7519 §2: NumericDate claims are JSON numbers.
_TIME_CLAIMS = ("exp", "iat", "nbf")


class AuthenticationFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class JwtSettings:
    secret: str
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 10


class JwtAuthenticator:
    def __init__(self, settings: JwtSettings, *, clock: Callable[[], float] = time.time) -> None:
        # RFC 7518 §3.2: an HS256 key at least as long as the hash (32 bytes).
        if len(settings.secret.encode()) < 32:
            raise ValueError("AUTH_JWT_SECRET must be at least 32 bytes long")
        self._settings = settings
        self._clock = clock
        # token -> (user, exp). Only tokens that passed every check get here; what can change
        # afterwards is the time alone, so a hit checks `exp` again, exactly as PyJWT does.
        # (`nbf`/`iat` cannot fail later once they passed.)
        self._verified: dict[str, tuple[UserId, int]] = {}

    def authenticate_request(self, authorization_headers: Sequence[str]) -> UserId:
        """The user behind a request's `Authorization` headers, of which there must be at most
        one: which of two counts differs between proxies and frameworks, so neither is chosen."""
        if len(authorization_headers) > 1:
            raise AuthenticationFailed("more than one Authorization header")
        return self.authenticate(authorization_headers[0] if authorization_headers else None)

    def authenticate(self, authorization: str | None) -> UserId:
        """The user behind an `Authorization: Bearer <JWT>` header value."""
        if not authorization:
            raise AuthenticationFailed("missing Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("the Authorization header must be 'Bearer <token>'")
        if len(token) > _MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("token too long")
        remembered = self._verified.get(token)
        if remembered is not None:
            user, expires = remembered
            if expires <= self._clock() - self._settings.leeway_seconds:
                raise AuthenticationFailed("token expired")
            return user
        user, expires = self._verify(token)
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (user, expires)
        return user

    def _verify(self, token: str) -> tuple[UserId, int]:
        try:
            claims = jwt.decode(
                token,
                self._settings.secret,
                algorithms=[_ALGORITHM],  # a fixed list: `alg: none` and others are refused
                issuer=self._settings.issuer,
                audience=self._settings.audience,
                leeway=self._settings.leeway_seconds,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._settings.audience is not None,
                    "verify_iss": self._settings.issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationFailed("token expired") from error
        except jwt.InvalidTokenError as error:
            # PyJWT's messages name the failed check (signature, claim), never the token.
            raise AuthenticationFailed(f"invalid token: {type(error).__name__}") from error
        for name in _TIME_CLAIMS:
            if name in claims and not _is_numeric_date(claims[name]):
                raise AuthenticationFailed(f"invalid token: {name} is not a number")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip() or subject != subject.strip():
            raise AuthenticationFailed("invalid token: bad subject")
        try:
            user = parse_user_id(subject)
        except InvalidUserId as error:
            raise AuthenticationFailed("invalid token: bad subject") from error
        return user, int(claims["exp"])

    def issue(self, user_id: str, *, lifetime: timedelta = timedelta(days=7)) -> str:
        owner = parse_user_id(user_id)
        now = datetime.now(UTC)
        claims: dict[str, object] = {"sub": owner, "iat": now, "exp": now + lifetime}
        if self._settings.issuer:
            claims["iss"] = self._settings.issuer
        if self._settings.audience:
            claims["aud"] = self._settings.audience
        return jwt.encode(claims, self._settings.secret, algorithm=_ALGORITHM)


def _is_numeric_date(value: object) -> bool:
    # bool is an int to Python, and `true` is not a date.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_or_create_secret(configured: str | None, data_dir: Path) -> str:
    """The configured secret, else one generated once and kept (mode 0600) in the data dir."""
    if configured:
        return configured
    path = data_dir / _SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once agree on whichever secret was written first.
    try:
        with path.open("x") as handle:
            handle.write(secret)
        path.chmod(0o600)
    except FileExistsError:
        return path.read_text().strip()
    return secret
