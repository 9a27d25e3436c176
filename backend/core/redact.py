"""Secrets never reach a log: a logging filter that blanks credential query parameters and bearer tokens.

The browser no longer puts a token in a URL (stream tickets), but an old client or a hand-typed URL may;
the access log prints every URL, so it is filtered whatever the client does.
"""
from __future__ import annotations

import logging
import re

_QUERY = re.compile(r"([?&](?:access_token|token|ticket)=)[^&\s\"']*", re.IGNORECASE)
_TOKEN = re.compile(r"\bnf_\d+_[A-Za-z0-9_\-]+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _TOKEN.sub(REDACTED, _QUERY.sub(r"\1" + REDACTED, text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(*logger_names: str) -> None:
    """Add the filter once to each named logger (uvicorn's access and error logs, ours)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
