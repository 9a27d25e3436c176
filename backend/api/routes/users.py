"""Users and their API tokens: who am I, admins create users, writers manage their own tokens (admins anyone's)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from sqlmodel import Session, col, select

from backend.api.deps import Admin, AnyToken, Id, SessionDep, SettingsDep, Writer
from backend.core.security import covers, create_user, is_live, issue_token
from backend.models import (ApiToken, ErrorResponse, Me, TokenCreate, TokenPublic, TokenSecret, User, UserCreate, UserPublic,
                            UserWithToken)

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


def _live_count(session: Session, user_id: int) -> int:
    rows = session.exec(select(ApiToken).where(ApiToken.user_id == user_id, col(ApiToken.revoked).is_(False))).all()
    return sum(is_live(t) for t in rows)


@router.post("/tokens", status_code=201, response_model=TokenSecret,
             responses={429: {"model": ErrorResponse, "description": "The user holds NASFORGE_MAX_TOKENS_PER_USER live tokens."}})
def create_token(body: TokenCreate, session: SessionDep, who: Writer, settings: SettingsDep) -> TokenSecret:
    """A new token for the caller, with at most the caller's own scopes; `expires_in` seconds bound its life."""
    if who.user_id is None:
        raise HTTPException(403, "only a user's token can create tokens")
    if not covers(who, body.scopes):
        raise HTTPException(403, f"scopes {sorted(body.scopes)} exceed this token's scopes {sorted(who.scopes)}")
    if "\x00" in body.name:
        raise HTTPException(422, "body.name: must not contain NUL characters")
    if _live_count(session, who.user_id) >= settings.max_tokens_per_user:
        raise HTTPException(429, f"this user already holds {settings.max_tokens_per_user} live tokens "
                                 "(NASFORGE_MAX_TOKENS_PER_USER); revoke one first")
    _, token = issue_token(session, scopes=list(body.scopes), user_id=who.user_id, name=body.name, expires_in=body.expires_in)
    return token_secret(session, token)


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(session: SessionDep, who: Writer) -> list[TokenPublic]:
    """The caller's tokens (all tokens for an admin), expired and revoked ones included; secrets are never shown again."""
    q = select(ApiToken).order_by(col(ApiToken.id))
    if not who.has("admin"):
        q = q.where(ApiToken.user_id == who.user_id)
    return [_token_public(t) for t in session.exec(q).all()]


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
def revoke_token(token_id: Id, session: SessionDep, who: Writer) -> Response:
    """Another user's token needs admin (404 otherwise: its existence is not told); a token with more scopes than
    the caller's is refused (403), so a lesser token cannot lock out a greater one."""
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != who.user_id and not who.has("admin")):
        raise HTTPException(404, f"token {token_id} not found")
    if not covers(who, row.scopes.split()):
        raise HTTPException(403, f"token {token_id} has scopes beyond this token's {sorted(who.scopes)}")
    row.revoked = True
    session.add(row)
    session.commit()
    return Response(status_code=204)
