"""The floor: bare FastAPI + psycopg pool + PyJWT serving GET /api/tokens/balance, no middleware.

What a Python function could approach; the side-by-side row serves it in its own uvicorn process.
`DATABASE_URL` and `SUPABASE_JWT_SECRET` from the environment.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
from fastapi import FastAPI, Header, HTTPException
from psycopg_pool import AsyncConnectionPool

SECRET = os.environ["SUPABASE_JWT_SECRET"]
pool = AsyncConnectionPool(
    os.environ["DATABASE_URL"], min_size=1, max_size=4, open=False, kwargs={"prepare_threshold": None}
)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    await pool.open()
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/api/tokens/balance")
async def balance(authorization: str = Header("")) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            authorization.removeprefix("Bearer "), SECRET, algorithms=["HS256"], audience="authenticated"
        )
    except jwt.PyJWTError as exc:
        raise HTTPException(401, "Invalid token") from exc
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT token_balance FROM users WHERE id = %s", (claims["sub"],))
        row = await cur.fetchone()
    return {"balance": int(row[0]) if row else 0}
