"""Users and their API tokens: who am I, admins create users, everyone manages their own tokens."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from sqlmodel import Session, col, select

from backend.api.deps import Admin, AnyToken, Id, Reader, SessionDep
from backend.core.security import create_user, issue_token
from backend.models import ApiToken, Me, TokenCreate, TokenPublic, TokenSecret, User, UserCreate, UserPublic, UserWithToken

router = APIRouter(tags=["users"])


def _token_public(row: ApiToken) -> TokenPublic:
    return TokenPublic.model_validate(row, update={"scopes": row.scopes.split()})


def token_secret(session: Session, token: str) -> TokenSecret:
    row = session.get(ApiToken, int(token.split("_")[1]))
    return TokenSecret(**_token_public(row).model_dump(), token=token)


@router.get("/users/me", response_model=Me)
def me(session: SessionDep, who: AnyToken) -> Me:
    user = session.get(User, who.user_id) if who.user_id else None
    return Me(user=UserPublic.model_validate(user) if user else None, scopes=sorted(who.scopes), run_id=who.run_id)


@router.post("/users", status_code=201, response_model=UserWithToken)
def create_user_with_token(body: UserCreate, session: SessionDep, _: Admin) -> UserWithToken:
    """Create a user and its first token (shown once)."""
    if session.exec(select(User).where(User.name == body.name)).first():
        raise HTTPException(409, f"user {body.name!r} already exists")
    user = create_user(session, body.name)
    _, token = issue_token(session, scopes=list(body.scopes), user_id=user.id, name="first token")
    return UserWithToken(user=UserPublic.model_validate(user), token=token_secret(session, token))


@router.get("/users", response_model=list[UserPublic])
def list_users(session: SessionDep, _: Admin) -> list[UserPublic]:
    return [UserPublic.model_validate(u) for u in session.exec(select(User).order_by(col(User.id))).all()]


@router.post("/tokens", status_code=201, response_model=TokenSecret)
def create_token(body: TokenCreate, session: SessionDep, who: Reader) -> TokenSecret:
    """A new token for the caller, with at most the caller's own scopes."""
    if who.user_id is None:
        raise HTTPException(403, "only a user's token can create tokens")
    missing = set(body.scopes) - who.scopes
    if missing:
        raise HTTPException(403, f"scopes {sorted(missing)} exceed this token's scopes {sorted(who.scopes)}")
    if "\x00" in body.name:
        raise HTTPException(422, "body.name: must not contain NUL characters")
    _, token = issue_token(session, scopes=list(body.scopes), user_id=who.user_id, name=body.name)
    return token_secret(session, token)


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(session: SessionDep, who: Reader) -> list[TokenPublic]:
    """The caller's tokens (all tokens for an admin); secrets are never shown again."""
    q = select(ApiToken).order_by(col(ApiToken.id))
    if not who.has("admin"):
        q = q.where(ApiToken.user_id == who.user_id)
    return [_token_public(t) for t in session.exec(q).all()]


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
def revoke_token(token_id: Id, session: SessionDep, who: Reader) -> Response:
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != who.user_id and not who.has("admin")):
        raise HTTPException(404, f"token {token_id} not found")
    row.revoked = True
    session.add(row)
    session.commit()
    return Response(status_code=204)
