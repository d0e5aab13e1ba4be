"""The Inngest endpoint (`INNGEST_SERVE_PATH`, `/api/inngest` by default): the SDK's own GET, POST
and PUT handlers, and in cloud mode a guard in front of them.

The SDK (0.5.19) lets an unsigned PUT trigger a sync, registers the URL the request's Host header
names unless a serve origin is configured, and never looks at the signature's timestamp. So in
cloud mode the guard admits only requests signed with the signing key (or the fallback key) whose
timestamp `t` is within five minutes of our clock, as Inngest's SDK specification (§4.1.3) asks,
and refuses every sync while no serve origin is configured. The SDK then checks the signature
again and answers as usual. Dev mode (the Dev Server signs nothing) passes straight through."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

import inngest
import inngest.fast_api
import jcs
import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("libingest.inngest")

# How far a signature's timestamp may be from our clock, either way (SDK spec §4.1.3: "within the
# last 5 minutes"); the future side tolerates clock skew between Inngest and this host.
MAX_SIGNATURE_AGE_S = 300

_SIGNATURE_HEADER = b"x-inngest-signature"
_SIGNING_KEY_PREFIX = re.compile(r"^signkey-\w+-")
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNAUTHORIZED = {"message": "Unauthorized"}  # the SDK's own body for a signature failure


def mount_inngest_endpoint(
    app: FastAPI,
    client: inngest.Inngest,
    functions: list[inngest.Function[Any]],
    *,
    serve_origin: str | None,
    serve_path: str,
) -> None:
    """Serves `functions` at `serve_path` on `app`. The SDK's routes live on an app of their
    own, reached only through the guard (in cloud mode)."""
    sdk_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    inngest.fast_api.serve(
        sdk_app,
        client,
        functions,
        serve_origin=serve_origin,
        serve_path=serve_path,
        # Belt and braces behind the guard: the SDK itself refuses unsigned out-of-band syncs.
        enable_unauthed_sync=False,
    )
    endpoint: ASGIApp = sdk_app
    if client.is_production:
        keys = [key for key in (client.signing_key, client.signing_key_fallback) if key]
        endpoint = SignedRequestsOnly(sdk_app, signing_keys=keys, syncs=serve_origin is not None)
        if serve_origin is None:
            log.warning(
                "inngest.serve_origin_missing",
                consequence="syncs are refused until INNGEST_SERVE_ORIGIN is set",
            )
    # Starlette routes straight to an ASGI app given as the endpoint (its types only name
    # request handlers); any other method on the path answers 405.
    app.router.add_route(serve_path, endpoint, methods=["GET", "POST", "PUT"])  # type: ignore[arg-type]


class SignedRequestsOnly:
    """ASGI guard: every request must carry one `X-Inngest-Signature: t=<unix s>&s=<hex>` that
    is an HMAC-SHA256, keyed by one of `signing_keys` (without their `signkey-<env>-` prefix),
    of the JCS-canonical body followed by `t`, with `t` within `max_age_s` of now. Anything else
    answers 401 as the SDK does, without reaching it. A PUT (sync) answers 500 when `syncs` is
    off: without a configured serve origin the SDK would register the Host header's URL."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        signing_keys: Sequence[str],
        syncs: bool,
        max_age_s: float = MAX_SIGNATURE_AGE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not signing_keys:
            raise ValueError("cloud mode needs a signing key (INNGEST_SIGNING_KEY)")
        self._app = app
        self._keys = [_SIGNING_KEY_PREFIX.sub("", key, count=1).encode() for key in signing_keys]
        self._syncs = syncs
        self._max_age_s = max_age_s
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        body = await _whole_body(receive)
        if body is None:
            return  # the client went away before its request was whole: nothing to answer
        headers = [value for name, value in scope["headers"] if name == _SIGNATURE_HEADER]
        refusal = self.refusal(headers, body)
        if refusal is not None:
            log.warning("inngest.request_refused", method=scope["method"], reason=refusal)
            await _answer(send, 401, _UNAUTHORIZED)
            return
        if scope["method"] == "PUT" and not self._syncs:
            log.error(
                "inngest.sync_refused",
                reason="INNGEST_SERVE_ORIGIN is not set; the request's Host is not trusted",
            )
            await _answer(
                send, 500, {"message": "sync refused: INNGEST_SERVE_ORIGIN is not configured"}
            )
            return
        await self._app(scope, _replaying(body, receive), send)

    def refusal(self, signature_headers: Sequence[bytes], body: bytes) -> str | None:
        """Why a request with these `X-Inngest-Signature` values and this body is refused, or
        None when it is signed and fresh."""
        if not signature_headers:
            return "unsigned"
        if len(signature_headers) > 1:
            return "more than one signature header"
        fields = parse_qs(signature_headers[0].decode("latin-1"), keep_blank_values=True)
        # Exactly one of each: the SDK reads the first value, so two `t`s could let it check a
        # timestamp other than the one judged fresh here.
        stamps, signatures = fields.get("t", []), fields.get("s", [])
        if len(stamps) != 1 or len(signatures) != 1:
            return "malformed signature header"
        stamp, signature = stamps[0], signatures[0]
        if not (stamp.isascii() and stamp.isdigit()) or not _HEX_SHA256.match(signature):
            return "malformed signature header"
        age_s = self._clock() - int(stamp)
        if age_s > self._max_age_s:
            return "signature older than five minutes"
        if age_s < -self._max_age_s:
            return "signature dated in the future"
        # The SDK signs and checks str(int(t)); so does this, whatever zeros lead `t`.
        suffix = str(int(stamp)).encode()
        # The bytes as sent first: an executor that sends canonical JSON (Inngest signs the
        # canonical form) costs no canonicalisation, which for a step's memoised vector is
        # about a millisecond of CPU, and the SDK spends another checking it again.
        if self._signed_by_a_key(body + suffix, signature):
            return None
        canonical = _canonical(body)
        if canonical is None:
            return "body is not JSON"
        if canonical != body and self._signed_by_a_key(canonical + suffix, signature):
            return None
        return "bad signature"

    def _signed_by_a_key(self, message: bytes, signature: str) -> bool:
        return any(
            hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), signature)
            for key in self._keys
        )


def _canonical(body: bytes) -> bytes | None:
    """The body as Inngest signs it: JSON in RFC 8785 (JCS) form; an empty body as is."""
    if not body:
        return body
    try:
        canonical: bytes = jcs.canonicalize(json.loads(body))
    except (ValueError, TypeError):
        return None
    return canonical


async def _whole_body(receive: Receive) -> bytes | None:
    """The request's body, or None if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then defers to the server."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(send: Send, status: int, document: dict[str, str]) -> None:
    body = json.dumps(document).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
