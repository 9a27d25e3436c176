"""API tokens: `nf_<id>_<secret>` bearer strings stored as sha256(secret), scopes read/write/admin, per-run ingest,
an optional expiry and the last time each was used.

`python -m backend.core.security create-admin-token` (what `make run` calls) prints a first admin token once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import sys

from sqlmodel import Session, select

from backend.models import ApiToken, User, utcnow

_USE_RESOLUTION = dt.timedelta(seconds=60)
# admin implies write implies read; an ingest token holds only "ingest" and its run_id.
_IMPLIED = {"admin": {"admin", "write", "read"}, "write": {"write", "read"}, "read": {"read"}, "ingest": {"ingest"}}


@dataclasses.dataclass(frozen=True)
class Principal:
    token_id: int
    user_id: int | None
    scopes: frozenset[str]
    run_id: int | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def _hash(secret: str) -> str:
    # The secret is 256 random bits, so a plain sha256 is as good as a slow KDF here.
    return hashlib.sha256(secret.encode()).hexdigest()


def expand_scopes(scopes: list[str] | set[str]) -> frozenset[str]:
    out: set[str] = set()
    for s in scopes:
        out |= _IMPLIED.get(s, set())
    return frozenset(out)


def covers(principal: Principal, scopes: list[str] | set[str] | frozenset[str]) -> bool:
    """Whether the caller holds everything `scopes` grants: what it may give to a new token, or take from one.
    An admin covers every token, ingest tokens included."""
    return principal.has("admin") or expand_scopes(scopes) <= principal.scopes


def issue_token(session: Session, *, scopes: list[str], user_id: int | None = None, run_id: int | None = None,
                name: str = "", expires_in: int | None = None) -> tuple[ApiToken, str]:
    """Store a new token and return (row, the bearer string); the string is not kept anywhere."""
    secret = secrets.token_urlsafe(32)
    expires_at = utcnow() + dt.timedelta(seconds=expires_in) if expires_in else None
    row = ApiToken(user_id=user_id, run_id=run_id, name=name, scopes=" ".join(sorted(set(scopes))), secret_hash=_hash(secret),
                   expires_at=expires_at)
    session.add(row)
    session.commit()
    session.refresh(row)
    return row, f"nf_{row.id}_{secret}"


def create_user(session: Session, name: str) -> User:
    user = User(name=name)
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def create_admin_token(session: Session, name: str = "admin") -> str:
    """Create (or reuse) the user `name` and give it a fresh admin token; returns the bearer string."""
    user = session.exec(select(User).where(User.name == name)).first() or create_user(session, name)
    _, token = issue_token(session, scopes=["admin"], user_id=user.id, name="first admin token")
    return token


def create_ingest_token(session: Session, run_id: int) -> str:
    """A token that can only append events to run `run_id` (handed to the run's watcher)."""
    _, token = issue_token(session, scopes=["ingest"], run_id=run_id, name=f"ingest run {run_id}")
    return token


def authenticate(session: Session, bearer: str) -> Principal | None:
    parts = bearer.split("_", 2)
    if len(parts) != 3 or parts[0] != "nf" or not parts[1].isdigit() or len(parts[1]) > 18:
        return None
    row = session.get(ApiToken, int(parts[1]))
    if row is None or not secrets.compare_digest(row.secret_hash, _hash(parts[2])):
        return None
    return principal_of(session, row)


def is_live(row: ApiToken, now: dt.datetime | None = None) -> bool:
    return not row.revoked and (row.expires_at is None or row.expires_at > (now or utcnow()))


def principal_of(session: Session, row: ApiToken) -> Principal | None:
    """The caller a (secret-checked) token row stands for, or None once revoked or expired; records its use."""
    now = utcnow()
    if not is_live(row, now):
        return None
    # At most one write a minute per token: recording every request would make each read a database write.
    if row.last_used_at is None or now - row.last_used_at > _USE_RESOLUTION:
        row.last_used_at = now
        session.add(row)
        session.commit()
    return Principal(token_id=row.id, user_id=row.user_id, scopes=expand_scopes(row.scopes.split()), run_id=row.run_id)


def _main(argv: list[str]) -> int:
    if argv[:1] != ["create-admin-token"]:
        print("usage: python -m backend.core.security create-admin-token [NAME]", file=sys.stderr)
        return 2
    from backend.core.db import get_engine, run_migrations

    engine = get_engine()
    run_migrations(engine)
    with Session(engine) as session:
        print(create_admin_token(session, *(argv[1:2] or ["admin"])))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
