"""A graphql-transport-ws client for tests, over a real WebSocket (the `websockets` library),
speaking the protocol as github.com/enisdenjo/graphql-ws PROTOCOL.md describes it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")


class GraphQLWebSocket:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, within: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), within)
        message: dict[str, Any] = json.loads(raw)
        return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Sends connection_init and answers the server's reply (connection_ack)."""
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(
        self, operation_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        await self.send(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )

    async def close_code(self, within: float = 10.0) -> int | None:
        """Waits for the server to close the socket; answers its close code."""
        try:
            while True:
                await asyncio.wait_for(self.connection.recv(), within)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


@asynccontextmanager
async def graphql_ws(base_url: str, path: str = "/graphql") -> AsyncIterator[GraphQLWebSocket]:
    url = base_url.replace("http://", "ws://", 1) + path
    async with connect(url, subprotocols=[PROTOCOL], open_timeout=10) as connection:
        assert connection.subprotocol == PROTOCOL
        yield GraphQLWebSocket(connection)


@asynccontextmanager
async def signed_in(base_url: str, token: str) -> AsyncIterator[GraphQLWebSocket]:
    """A connection whose connection_init carried `token` and was acknowledged."""
    async with graphql_ws(base_url) as socket:
        reply = await socket.init({"authorization": f"Bearer {token}"})
        assert reply == {"type": "connection_ack"}, reply
        yield socket
