"""Logs as the service configures them (service.log_config): one JSON object a line, without
uvicorn's coloured copy of the message, and what is logged while a request is served — a
500's traceback, a 503's warning — carries that request's id."""

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI

from service.log_config import logging_config

CONFIGURED = ("", "uvicorn", "uvicorn.access")  # the loggers logging_config sets up


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The service's JSON logging, written to a buffer; the previous set-up restored after."""
    saved = [
        (logger, logger.handlers[:], logger.level, logger.propagate)
        for logger in map(logging.getLogger, CONFIGURED)
    ]
    buffer = io.StringIO()
    config = logging_config("json", "info")
    config["handlers"]["stdout"]["stream"] = buffer
    logging.config.dictConfig(config)
    try:
        yield buffer
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_uvicorns_coloured_message_is_left_out(json_log: io.StringIO) -> None:
    # As uvicorn logs it: the plain message, and a copy with ANSI colours for terminals.
    coloured = "Started server process [\x1b[36m%d\x1b[0m]"
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 42, extra={"color_message": coloured}
    )
    (line,) = lines(json_log)
    assert line["message"] == "Started server process [42]"
    assert "color_message" not in line
    assert "\x1b" not in json_log.getvalue()


async def test_a_500_and_a_503_are_logged_with_their_request_id(
    app: FastAPI, json_log: io.StringIO
) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/busy")
    async def busy() -> None:
        raise sqlalchemy.exc.TimeoutError("QueuePool limit reached")  # no connection came free

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/busy", headers={"X-Request-ID": "req-503"})).status_code == 503
        anonymous = await http.get("/busy")  # an id the service made up
        logging.getLogger("service").info("between requests")
        assert (await http.get("/boom", headers={"X-Request-ID": "req-500"})).status_code == 500
    logged = lines(json_log)
    between = next(line for line in logged if line["message"] == "between requests")
    assert "request_id" not in between
    crash = next(line for line in logged if line["message"].startswith("unhandled error"))
    assert (crash["level"], crash["request_id"]) == ("ERROR", "req-500")
    assert "RuntimeError: a bug" in crash["exc_info"]
    outages = [line for line in logged if line["message"].startswith("database busy")]
    assert [(line["level"], line["request_id"]) for line in outages] == [
        ("WARNING", "req-503"),
        ("WARNING", anonymous.headers["x-request-id"]),
    ]
