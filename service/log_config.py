"""Logging configuration for the service and uvicorn, applied in every worker. Kept apart from
service.logs so that the CLI can configure logging without importing prometheus_client before
it has chosen the metrics mode (see cmd_serve)."""

import logging
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

# The id of the request being served (service.logs.RequestLog sets it), so that what is logged
# while serving it, a 500's traceback or a 503's warning, can be found beside its request line.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Gives every record logged while a request is served that request's `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A dictConfig for the service and uvicorn, applied in every worker."""
    formatter: dict[str, Any] = (
        {
            # orjson: a request's line is written for every request, and encoding it with the
            # standard library cost twice as much (bench/RESULTS.md, issue 16).
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
            # uvicorn adds its message again with ANSI colour codes, for terminals only.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"request_id": {"()": "service.log_config.RequestIdFilter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "propagate": False},  # replaced by ours
            # httpx logs every webhook delivery at INFO; the delivery log has them, and the
            # dispatcher logs failures itself (roadmap.webhooks).
            "httpx": {"level": "WARNING"},
        },
    }
