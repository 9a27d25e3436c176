"""API tokens: `nf_<id>_<secret>` bearer strings stored as sha256(secret), scopes read/write/admin, per-run ingest.

`python -m backend.core.security create-admin-token` (what `make run` calls) prints a first admin token once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import secrets
import sys

from sqlmodel import Session, select

from backend.models import ApiToken, User

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


def issue_token(session: Session, *, scopes: list[str], user_id: int | None = None, run_id: int | None = None,
                name: str = "") -> tuple[ApiToken, str]:
    """Store a new token and return (row, the bearer string); the string is not kept anywhere."""
    secret = secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, run_id=run_id, name=name, scopes=" ".join(sorted(set(scopes))), secret_hash=_hash(secret))
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
    if row is None or row.revoked:
        return None
    if not secrets.compare_digest(row.secret_hash, _hash(parts[2])):
        return None
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
