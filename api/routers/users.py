"""Auth Gateway: managing users over HTTP.

The platform's operator (role `admin`) manages every user; a tenant admin (`tenant_admin`) the
users of its own tenant, up to its own role: it cannot create or change an operator, and another
tenant's users are as unknown to it as users that do not exist (404). Disabling a user or
revoking its sessions ends its access within the validation cache time (AuthService.cache_ttl_s).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, Strict
from starlette.status import HTTP_201_CREATED

from api.deps import CoreDep, require_role
from lakehouse.auth.identity import TENANT_NAME, USERNAME, Caller, Role, check_tenant_name
from lakehouse.auth.passwords import MAX_PASSWORD_BYTES
from lakehouse.auth.service import AuthService
from lakehouse.auth.store import User
from lakehouse.errors import Forbidden, NotFound

router = APIRouter(prefix="/auth/users", tags=["users"])
Manager = Annotated[Caller, Depends(require_role(Role.TENANT_ADMIN))]
MIN_PASSWORD = 12
# The auth store takes at most MAX_PASSWORD_BYTES of UTF-8; so many characters fit in any case.
MAX_PASSWORD_CHARS = MAX_PASSWORD_BYTES // 4


# What the auth store takes (it answers 404 for a name it does not have, whatever the name).
UsernamePath = Annotated[str, Path(max_length=128, examples=["ada"])]


class NewUser(BaseModel):
    model_config = ConfigDict(strict=True, json_schema_extra={"examples": [
        {"username": "ada", "password": "correct-horse-battery", "role": "writer"}]})

    # The patterns are the ones the auth store checks (and answers 400 `invalid_input` for).
    username: str = Field(min_length=1, max_length=128,
                          json_schema_extra={"pattern": USERNAME.pattern})
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD_CHARS)
    role: Annotated[Role, Strict(False)] = Role.READER  # its value's text, as JSON has it
    tenant: str | None = Field(default=None, min_length=1, max_length=63,
                               json_schema_extra={"pattern": TENANT_NAME.pattern},
                               description="An operator's choice; a tenant admin's own tenant")


class NewPassword(BaseModel):
    model_config = ConfigDict(strict=True, json_schema_extra={
        "examples": [{"password": "staple-battery-horse"}]})

    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD_CHARS)


def _shown(user: User) -> dict[str, Any]:
    return {"username": user.username, "tenant": user.tenant, "role": user.role.value,
            "created_at": user.created_at, "disabled": user.disabled}


def _may_grant(caller: Caller, role: Role) -> None:
    if not caller.is_admin and role.rank > caller.role.rank:
        raise Forbidden(f"a {caller.role.value} cannot manage {role.value} users",
                        details={"role": role.value})


def _managed(auth: AuthService, caller: Caller, username: str) -> User:
    """The user `caller` may manage; another tenant's is not found."""
    user = auth.store.get_user(username[:128])
    if user is None or (not caller.is_admin and user.tenant != caller.tenant):
        raise NotFound(f"no user {username[:128]!r}", code="user_not_found",
                       details={"username": username[:128]})
    _may_grant(caller, user.role)
    return user


@router.get("")
async def list_users(
    core: CoreDep, caller: Manager,
    tenant: Annotated[str | None, Query(max_length=63, pattern=TENANT_NAME.pattern,
                                        description="An operator's filter")] = None,
) -> dict[str, Any]:
    """Users of the caller's tenant (an operator: every tenant, or `tenant`)."""
    scope = (check_tenant_name(tenant) if tenant else None) if caller.is_admin else caller.tenant
    users = await run_in_threadpool(core.auth.store.list_users, scope)
    return {"count": len(users), "users": [_shown(u) for u in users]}


@router.post("", status_code=HTTP_201_CREATED)
async def create_user(body: NewUser, core: CoreDep, caller: Manager) -> dict[str, Any]:
    """Create a user; a tenant admin creates them in its own tenant."""
    _may_grant(caller, body.role)
    tenant = (body.tenant or caller.tenant) if caller.is_admin else caller.tenant
    if body.tenant is not None and body.tenant != tenant:
        raise Forbidden("a tenant admin creates users of its own tenant only",
                        details={"tenant": body.tenant})
    user = await run_in_threadpool(core.auth.create_user, body.username, body.password,
                                   tenant, body.role)
    return _shown(user)


@router.get("/{username}")
async def get_user(username: UsernamePath, core: CoreDep, caller: Manager) -> dict[str, Any]:
    return _shown(await run_in_threadpool(_managed, core.auth, caller, username))


async def _set_disabled(core: CoreDep, caller: Caller, username: str,
                        disabled: bool) -> dict[str, Any]:
    user = await run_in_threadpool(_managed, core.auth, caller, username)
    if user.username == caller.user and disabled:
        raise Forbidden("you cannot disable yourself", code="forbidden")
    await run_in_threadpool(core.auth.set_disabled, user.username, disabled)
    return _shown(replace(user, disabled=disabled))


@router.post("/{username}/disable")
async def disable_user(username: UsernamePath, core: CoreDep, caller: Manager) -> dict[str, Any]:
    """The user can no longer log in; its tokens stop working within seconds."""
    return await _set_disabled(core, caller, username, True)


@router.post("/{username}/enable")
async def enable_user(username: UsernamePath, core: CoreDep, caller: Manager) -> dict[str, Any]:
    return await _set_disabled(core, caller, username, False)


@router.post("/{username}/password")
async def reset_password(username: UsernamePath, body: NewPassword, core: CoreDep,
                         caller: Manager) -> dict[str, Any]:
    """A new password; every session the user had ends."""
    user = await run_in_threadpool(_managed, core.auth, caller, username)
    await run_in_threadpool(core.auth.reset_password, user.username, body.password)
    return {**_shown(user), "sessions_revoked": True}


@router.post("/{username}/revoke-sessions")
async def revoke_sessions(username: UsernamePath, core: CoreDep, caller: Manager) -> dict[str, Any]:
    """End every session of the user (its refresh tokens and the access tokens they gave)."""
    user = await run_in_threadpool(_managed, core.auth, caller, username)
    revoked = await run_in_threadpool(core.auth.revoke_sessions, user.username)
    return {**_shown(user), "refresh_tokens_revoked": revoked}
