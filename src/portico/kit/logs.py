"""Log records never carry a key or a token, and a failure is logged once.

`RedactSecrets` rewrites a record's message, arguments, traceback and stack before any handler
sees it: our prefixed secrets (`ptk_` link keys, `pts_` session tokens, `pto_` API tokens, `pti_`
team invitations), any `Bearer ...` credential, and upstream API keys in the `sk-...` style. It is
installed at start-up on Portico's loggers and uvicorn's (`install_redaction`), so the exception of
a failed chore or request can be logged whole without leaking what was in it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SECRET = re.compile(r"\b(?P<prefix>pt[ksoi]_|sk-)[A-Za-z0-9_\-]{6,}|\b(?P<scheme>Bearer)\s+[^\s'\",;]+")
REDACTED = "[redacted]"
# Loggers the filter is installed on, with every child of theirs that exists at start-up (Portico's
# are made at import): a logger's filters see only the records logged on it, not its children's.
LOGGERS = ("portico", "uvicorn", "uvicorn.error", "uvicorn.access")
# Set on an exception once it has been logged with its traceback (exceptions take no weak references).
_LOGGED = "_portico_logged"


def redact(text: str) -> str:
    return SECRET.sub(lambda m: (m["prefix"] or m["scheme"] + " ") + REDACTED, text)


def mark_logged(exc: BaseException) -> None:
    """Say that `exc` has been logged with its traceback, so that a later record of it is dropped."""
    setattr(exc, _LOGGED, True)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and getattr(exc, _LOGGED, False):
            # Starlette re-raises a request's error after our handler has logged it, so that the
            # server can log it too (uvicorn: "Exception in ASGI application"): once is enough.
            return False
        record.msg = _redact_value(record.msg)
        record.args = _redact_args(record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Handlers append exc_text as it is; with exc_info gone, none can format the original again.
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(_redact_value(arg) for arg in args)
    if isinstance(args, dict):
        return {key: _redact_value(value) for key, value in args.items()}
    return args


def _redact_value(value: Any) -> Any:
    # Other types keep their type (uvicorn's access log formats its arguments with %d) unless
    # their text holds a secret.
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    redacted = redact(text)
    return value if redacted == text else redacted


def install_redaction() -> None:
    """Put one `RedactSecrets` on each of Portico's and uvicorn's loggers; calling it again adds none."""
    children = [name for name in list(logging.Logger.manager.loggerDict) if name.startswith(LOGGERS)]
    for name in {*LOGGERS, *children}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
