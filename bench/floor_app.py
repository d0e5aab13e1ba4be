"""The floor: the add's transaction with nothing around it (no GraphQL, no auth, no ORM).

    DATABASE_URL=postgresql://... .venv/bin/python -m uvicorn bench.floor_app:app --port 8001

Not part of the product. `POST /add` runs what `addTrackToLibrary` must run at the least, in one
transaction: insert the item (ON CONFLICT DO NOTHING RETURNING), insert its job, pg_notify.
`POST /insert` is a bare INSERT + COMMIT. Both read the same GraphQL request body the bench sends
the product (the catalogue id is `variables.id`) and answer with a body the load generator
counts as a success. The tables mirror `library_items` and `scheduling_jobs` (created with
`LIKE ... INCLUDING ALL`, so the same indexes and the same unique constraint), under other names
so that the product's relay never sees these rows.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import Response

USER_ID = "floor-user"
CHANNEL = "bench_floor"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_floor_items (LIKE library_items INCLUDING ALL);
CREATE TABLE IF NOT EXISTS bench_floor_jobs (
    LIKE scheduling_jobs INCLUDING ALL,
    FOREIGN KEY (library_item_id) REFERENCES bench_floor_items (id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS bench_floor_bare (LIKE library_items INCLUDING ALL);
"""
_INSERT_ITEM = """
INSERT INTO bench_floor_items (id, user_id, kind, catalog_id, added_at, title, artist_names)
VALUES ($1, $2, 'track', $3, $4, NULL, '{}')
ON CONFLICT (user_id, kind, catalog_id) DO NOTHING
RETURNING id
"""
_INSERT_JOB = """
INSERT INTO bench_floor_jobs
    (library_item_id, status, attempts, run_after, created_at, updated_at)
VALUES ($1, 'pending', 0, $2, $2, $2)
ON CONFLICT (library_item_id) DO NOTHING
"""
_INSERT_BARE = """
INSERT INTO bench_floor_bare (id, user_id, kind, catalog_id, added_at, title, artist_names)
VALUES ($1, $2, 'track', $3, $4, NULL, '{}')
ON CONFLICT DO NOTHING
"""


def _dsn() -> str:
    url = os.environ["DATABASE_URL"]
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The product's engine: pool_size 10 + overflow 10.
    pool = await asyncpg.create_pool(_dsn(), min_size=10, max_size=20)
    async with pool.acquire() as connection:
        await connection.execute(_SCHEMA)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


async def _catalog_id(request: Request) -> str:
    return str(json.loads(await request.body())["variables"]["id"])


def _answer(item_id: uuid.UUID | None) -> Response:
    body = {"data": {"add": {"__typename": "AddToLibrarySuccess", "id": str(item_id)}}}
    return Response(json.dumps(body), media_type="application/json")


@app.post("/add")
async def add(request: Request) -> Response:
    catalog_id = await _catalog_id(request)
    pool: asyncpg.Pool = request.app.state.pool
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        created = await connection.fetchval(_INSERT_ITEM, uuid.uuid4(), USER_ID, catalog_id, now)
        if created is not None:
            await connection.execute(_INSERT_JOB, created, now)
            await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, str(created))
    return _answer(created)


@app.post("/insert")
async def insert(request: Request) -> Response:
    catalog_id = await _catalog_id(request)
    pool: asyncpg.Pool = request.app.state.pool
    item_id = uuid.uuid4()
    async with pool.acquire() as connection:
        # Outside a transaction block: the INSERT commits on its own.
        await connection.execute(_INSERT_BARE, item_id, USER_ID, catalog_id, datetime.now(UTC))
    return _answer(item_id)
