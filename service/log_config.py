"""Logging configuration for the service and uvicorn, applied in every worker. Kept apart from
service.logs so that the CLI can configure logging without importing prometheus_client before
it has chosen the metrics mode (see cmd_serve)."""

from typing import Any


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A dictConfig for the service and uvicorn, applied in every worker."""
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
        }
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "propagate": False},  # replaced by ours
        },
    }
