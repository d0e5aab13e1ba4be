"""The JWT authenticator, including its memory of tokens it has already verified."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest

from adapters.auth import jwt_tokens
from adapters.auth.jwt_tokens import AuthenticationFailed, JwtAuthenticator, JwtSettings
from tests.unit.fakes import FakeSeconds

SECRET = "a-test-secret-of-at-least-32-bytes-long"


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_verified_token_is_answered_again_from_memory_with_the_same_user() -> None:
    authenticator = JwtAuthenticator(JwtSettings(secret=SECRET))
    token = authenticator.issue("alice")

    assert authenticator.authenticate(_bearer(token)) == "alice"
    assert authenticator.authenticate(_bearer(token)) == "alice"


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    clock = FakeSeconds(time.time())
    authenticator = JwtAuthenticator(JwtSettings(secret=SECRET, leeway_seconds=10), clock=clock)
    token = authenticator.issue("alice", lifetime=timedelta(minutes=5))
    assert authenticator.authenticate(_bearer(token)) == "alice"

    clock.now += 5 * 60 + 5  # past `exp`, within the leeway
    assert authenticator.authenticate(_bearer(token)) == "alice"
    clock.now += 10
    with pytest.raises(AuthenticationFailed, match="token expired"):
        authenticator.authenticate(_bearer(token))
    with pytest.raises(AuthenticationFailed, match="token expired"):
        authenticator.authenticate(_bearer(token))


def test_remembering_one_token_lets_no_altered_copy_of_it_in() -> None:
    authenticator = JwtAuthenticator(JwtSettings(secret=SECRET))
    token = authenticator.issue("alice")
    authenticator.authenticate(_bearer(token))
    header, payload, signature = token.split(".")
    altered = ".".join(
        [header, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")]
    )
    other_secret = JwtAuthenticator(JwtSettings(secret=SECRET + "-other")).issue("alice")

    for refused in (altered, other_secret, token + "x"):
        with pytest.raises(AuthenticationFailed, match="invalid token"):
            authenticator.authenticate(_bearer(refused))


def test_the_memory_of_verified_tokens_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwt_tokens, "_VERIFIED_CACHE_SIZE", 3)
    authenticator = JwtAuthenticator(JwtSettings(secret=SECRET))
    tokens = [authenticator.issue(f"user-{n}") for n in range(5)]

    for n, token in enumerate(tokens):
        assert authenticator.authenticate(_bearer(token)) == f"user-{n}"

    assert len(authenticator._verified) == 3
    assert authenticator.authenticate(_bearer(tokens[0])) == "user-0"  # verified afresh


def test_a_request_with_two_authorization_headers_is_refused_whatever_they_hold() -> None:
    authenticator = JwtAuthenticator(JwtSettings(secret=SECRET))
    token = _bearer(authenticator.issue("alice"))

    assert authenticator.authenticate_request([token]) == "alice"
    with pytest.raises(AuthenticationFailed, match="missing"):
        authenticator.authenticate_request([])
    with pytest.raises(AuthenticationFailed, match="more than one"):
        authenticator.authenticate_request([token, token])


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": " "},
        {"sub": " alice"},
        {"sub": "alice\n"},
        {"sub": 42},
        {"exp": "9999999999"},
        {"iat": "1"},
        {"nbf": "1"},
    ],
    ids=repr,
)
def test_claims_pyjwt_lets_through_are_refused(claims: dict[str, object]) -> None:
    authenticator = JwtAuthenticator(JwtSettings(secret=SECRET))
    token = jwt.encode(
        {"sub": "alice", "exp": int(time.time()) + 3600} | claims, SECRET, algorithm="HS256"
    )

    with pytest.raises(AuthenticationFailed, match="invalid token"):
        authenticator.authenticate(_bearer(token))
