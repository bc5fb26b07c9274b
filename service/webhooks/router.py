from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.dependencies import AdminDep
from service.config import Settings
from service.db import SessionDep
from service.errors import SecretShownOnce, problem_responses
from service.models.webhooks import Webhook
from service.pagination import DEFAULT_LIMIT, LimitQuery
from service.schemas import Text
from service.unit_of_work import UnitOfWorkDep
from service.webhooks import service
from service.webhooks.schemas import (
    DeliveryPage,
    Redelivery,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookRead,
    WebhookUpdate,
)
from service.webhooks.service import delivery_read, webhook_read

router = APIRouter(
    prefix="/webhooks", tags=["webhooks"], responses=problem_responses(401, 403, 404)
)

WebhookId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The subscription's id")]
# The secret is in the answer: no copy of it in any cache.
NO_STORE = {"Cache-Control": "no-store"}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _created(webhook_and_secret: tuple[Webhook, str]) -> WebhookCreated:
    webhook, secret = webhook_and_secret
    return WebhookCreated(**webhook_read(webhook).model_dump(), secret=secret)


def _secret_not_replayed(created: WebhookCreated) -> SecretShownOnce:
    return SecretShownOnce(
        f"Webhook {created.id} was answered to the first request with this Idempotency-Key; "
        "its secret was in that answer only. If that answer was lost, rotate the secret.",
        id=created.id,
    )


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
)
async def create_webhook(
    data: WebhookCreate, request: Request, _admin: AdminDep, uow: UnitOfWorkDep
) -> Response:
    """Subscribe a URL to the feed's events, one POST per event, signed per the Standard
    Webhooks specification with the `secret` of this answer (shown once). Delivery starts at
    the current end of the feed, or after `after` to replay history."""

    async def work(session: AsyncSession) -> tuple[WebhookCreated, dict[str, str]]:
        created = _created(await service.create_webhook(session, data, _settings(request)))
        return created, {**NO_STORE, "Location": f"/api/v1/webhooks/{created.id}"}

    return await uow.answer(
        work, status_code=status.HTTP_201_CREATED, replay_instead=_secret_not_replayed
    )


@router.get("", response_model=WebhookList)
async def list_webhooks(_admin: AdminDep, session: SessionDep) -> WebhookList:
    """Every subscription with its state and position; never a secret."""
    return WebhookList(items=[webhook_read(w) for w in await service.list_webhooks(session)])


@router.get("/{webhook_id}", response_model=WebhookRead)
async def get_webhook(webhook_id: WebhookId, _admin: AdminDep, session: SessionDep) -> WebhookRead:
    return webhook_read(await service.get_webhook(session, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookRead, responses=problem_responses(422))
async def update_webhook(
    webhook_id: WebhookId,
    data: WebhookUpdate,
    request: Request,
    _admin: AdminDep,
    uow: UnitOfWorkDep,
) -> Response:
    """Change the target or the filters, pause (`active: false`) or resume (`active: true`,
    also for a `failing` subscription: from where it stopped, at once)."""

    async def work(session: AsyncSession) -> tuple[WebhookRead, dict[str, str]]:
        webhook = await service.update_webhook(session, webhook_id, data, _settings(request))
        return webhook_read(webhook), {}

    return await uow.answer(work, status_code=status.HTTP_200_OK)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: WebhookId, _admin: AdminDep, uow: UnitOfWorkDep) -> Response:
    """Remove the subscription and its delivery log; nothing more is sent to it."""

    async def work(session: AsyncSession) -> tuple[None, dict[str, str]]:
        await service.delete_webhook(session, webhook_id)
        return None, {}

    return await uow.answer(work, status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/rotate-secret", response_model=WebhookCreated, responses=problem_responses(409)
)
async def rotate_webhook_secret(
    webhook_id: WebhookId, request: Request, _admin: AdminDep, uow: UnitOfWorkDep
) -> Response:
    """A new signing secret, shown in this answer only; deliveries from now on are signed
    with it (the old one stops working at once)."""

    async def work(session: AsyncSession) -> tuple[WebhookCreated, dict[str, str]]:
        rotated = await service.rotate_secret(session, webhook_id, _settings(request))
        return _created(rotated), NO_STORE

    return await uow.answer(
        work, status_code=status.HTTP_200_OK, replay_instead=_secret_not_replayed
    )


@router.post(
    "/{webhook_id}/redeliver",
    response_model=WebhookRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(422),
)
async def redeliver_webhook(
    webhook_id: WebhookId, data: Redelivery, _admin: AdminDep, uow: UnitOfWorkDep
) -> Response:
    """Deliver again from the event at `event` (a cursor from the delivery log) on: that
    event and every matching one after it, in order, with their original webhook-ids."""

    async def work(session: AsyncSession) -> tuple[WebhookRead, dict[str, str]]:
        return webhook_read(await service.redeliver(session, webhook_id, data.event)), {}

    return await uow.answer(work, status_code=status.HTTP_202_ACCEPTED)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage)
async def list_webhook_deliveries(
    webhook_id: WebhookId,
    _admin: AdminDep,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
) -> DeliveryPage:
    """Delivery attempts, newest first: when, which event, the status code or the error, and
    how long it took. Kept for ROADMAP_WEBHOOK_DELIVERY_RETENTION_DAYS."""
    rows, next_cursor = await service.list_deliveries(
        session, webhook_id, before=cursor, limit=limit
    )
    return DeliveryPage(items=[delivery_read(row) for row in rows], next_cursor=next_cursor)
