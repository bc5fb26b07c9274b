"""Liveness and readiness, for orchestrators and load balancers."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import problem_response, problem_responses
from service.schema_setup import current_revision

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    schema_revision: str | None


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up. Touches no database, so a slow database never restarts a healthy pod."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
async def readyz(request: Request) -> Readiness | JSONResponse:
    """The database answers and its schema is the one this code expects."""
    engine: AsyncEngine = request.app.state.engine
    expected: str | None = request.app.state.head_revision
    try:
        async with engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
    except Exception:  # any failure to reach the database means "not ready"
        return problem_response(503, "The database cannot be reached.")
    if revision != expected:
        return problem_response(
            503, f"The database schema is at {revision!r}, this service expects {expected!r}."
        )
    return Readiness(status="ready", schema_revision=revision)
