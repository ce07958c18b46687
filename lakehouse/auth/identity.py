"""Who is calling: roles, the caller, and the rules for names of users and tenants."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from lakehouse.errors import Forbidden, InvalidInput

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


class Role(enum.StrEnum):
    ADMIN = "admin"  # the platform's operator: every tenant, every operation
    TENANT_ADMIN = "tenant_admin"  # a writer of its own tenant who also manages its users
    WRITER = "writer"  # read and write its own tenant
    READER = "reader"  # read its own tenant

    @property
    def rank(self) -> int:
        return {Role.READER: 0, Role.WRITER: 1, Role.TENANT_ADMIN: 2, Role.ADMIN: 3}[self]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal of one request, with the tenant it acts on."""

    user: str
    tenant: str
    role: Role
    token_id: str
    expires_at: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require(self, role: Role) -> None:
        if self.role.rank < role.rank:
            raise Forbidden(
                f"this needs the {role.value} role; you are {self.role.value}",
                details={"required_role": role.value, "role": self.role.value},
            )

    def acting_on(self, requested_tenant: str | None) -> Caller:
        """The caller acting on `requested_tenant` (an X-Tenant-Id header), if it may."""
        if requested_tenant is None or requested_tenant == self.tenant:
            return self
        if not self.is_admin:
            raise Forbidden(
                "X-Tenant-Id names another tenant than your token's",
                details={"token_tenant": self.tenant, "requested_tenant": requested_tenant},
            )
        check_tenant_name(requested_tenant)
        return Caller(self.user, requested_tenant, self.role, self.token_id, self.expires_at)


def check_tenant_name(name: str) -> str:
    if not TENANT_NAME.fullmatch(name):
        raise InvalidInput(
            "tenant names are 1-63 characters: lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit",
            details={"tenant": name[:100]},
        )
    return name


def check_username(name: str) -> str:
    if not USERNAME.fullmatch(name):
        raise InvalidInput(
            "user names are 1-128 characters: letters, digits, '_', '.', '@' and '-', "
            "starting with a letter or digit",
            details={"username": name[:140]},
        )
    return name
