"""Stream tickets: EventSource cannot send an Authorization header, and a bearer token in a URL reaches access logs
and browser history. A ticket opens one stream path for NASFORGE_STREAM_TICKET_S seconds and nothing else.

Redis keeps only sha256(ticket) with the token it was made from, so revoking that token ends its tickets too. A
ticket may be reused on its path until it expires: EventSource reconnects by itself with the same URL.
"""
from __future__ import annotations

import hashlib
import json
import secrets

import redis

# Not "nf_": a ticket is no API token, and `grep nf_` over the logs must stay empty.
PREFIX = "st_"


def _key(ticket: str) -> str:
    return "nasforge:ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


def issue_ticket(client: redis.Redis, token_id: int, path: str, ttl_s: int) -> str:
    ticket = PREFIX + secrets.token_urlsafe(32)
    client.set(_key(ticket), json.dumps({"token_id": token_id, "path": path}), ex=ttl_s)
    return ticket


def redeem_ticket(client: redis.Redis, ticket: str, path: str) -> int | None:
    """The id of the token the ticket was made from, if the ticket is live and was made for `path`."""
    if not ticket.startswith(PREFIX) or len(ticket) > 100:
        return None
    raw = client.get(_key(ticket))
    if raw is None:
        return None
    held = json.loads(raw)
    return held["token_id"] if held["path"] == path else None
