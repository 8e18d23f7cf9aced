"""The reference for bench_reference: a minimal FastAPI + asyncpg app doing gridsvc's point
lookup (the same SQL, the same JWT check with the same secret), and nothing else.

Run by bench_reference under uvicorn (one worker); configured by environment variables
REF_DATABASE_URL, REF_JWT_SECRET, REF_JWT_ALGORITHM, REF_SQL_CELL and REF_SQL_COMMUNITY (the
two statements of gridsvc's ``lookup_point``, with $1 = lon, $2 = lat, $3 = kind)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import jwt
from fastapi import FastAPI, HTTPException, Query, Request

SQL_CELL = os.environ.get("REF_SQL_CELL", "")
SQL_COMMUNITY = os.environ.get("REF_SQL_COMMUNITY", "")
SECRET = os.environ.get("REF_JWT_SECRET", "")
ALGORITHM = os.environ.get("REF_JWT_ALGORITHM", "HS256")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["REF_DATABASE_URL"], max_size=20)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=_lifespan)


@app.get("/api/v1/lookup")
async def lookup(
    request: Request, lon: float = Query(ge=-180, le=180), lat: float = Query(ge=-90, le=90)
) -> dict[str, Any]:
    """Which cell holds the point (bearer JWT required)."""
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        raise HTTPException(401, "sign in first")
    try:
        jwt.decode(
            auth[7:], SECRET, algorithms=[ALGORITHM], options={"require": ["sub", "ver", "exp"]}
        )
    except jwt.PyJWTError as exc:
        raise HTTPException(401, "invalid access token") from exc
    async with request.app.state.pool.acquire() as conn:
        row = await conn.fetchrow(SQL_CELL, lon, lat, "general")
        if row is not None:
            return {
                "lon": lon,
                "lat": lat,
                "cell_code": row[1],
                "cell_name": row[2],
                "community_code": row[-1],
            }
        row = await conn.fetchrow(SQL_COMMUNITY, lon, lat)
    return {
        "lon": lon,
        "lat": lat,
        "cell_code": None,
        "cell_name": None,
        "community_code": row[1] if row else None,
    }
