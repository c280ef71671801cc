"""Who owns a stored object, and who may see it: every file, batch and pipeline run carries the
fingerprint of the API key that made it; a key sees only its own, an admin key sees all.

A server without keys has one anonymous owner (NULL in the tables), so everything it stores
belongs to everyone who can reach it. An object that is not the caller's answers 404, the
same as one that does not exist, so ids do not leak.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ANONYMOUS = None  # the owner of what a keyless server (or a database from before owners) stores


@dataclass(frozen=True)
class Tenant:
    """The caller as an owner: its key's fingerprint (None: anonymous) and whether it may see
    every owner's objects (``admin = true`` on its ``[[api_key]]``)."""

    owner: str | None
    admin: bool = False

    @property
    def namespace(self) -> str | None:
        """Whose *names* it works with (classifiers, extractors): None for the operator's shared
        ones (an admin, or everyone on a server without keys), else its key's own."""
        return None if self.admin else self.owner

    def sees(self, owner: str | None) -> bool:
        return self.admin or owner == self.owner

    def where(self, column: Any) -> Any:
        """A SQL condition keeping this tenant's rows (None: no condition, an admin)."""
        if self.admin:
            return None
        return column.is_(None) if self.owner is None else column == self.owner


# the operator's own code (the CLI, the pipelines' workers, the batch runner): sees everything
OPERATOR = Tenant(ANONYMOUS, admin=True)

# the tenant of the request being answered: set once the key is checked (the server's key
# dependency), read where a request reaches stored objects through shared code (a file_id in a
# chat message or a task's files)
_current: contextvars.ContextVar[Tenant] = contextvars.ContextVar("litegate_tenant", default=OPERATOR)


def current() -> Tenant:
    return _current.get()


def set_current(tenant: Tenant) -> None:
    _current.set(tenant)


@contextlib.contextmanager
def acting_as(tenant: Tenant) -> Iterator[None]:
    """Work done for ``tenant`` outside a request (a pipeline run, a batch job's prefetch)."""
    token = _current.set(tenant)
    try:
        yield
    finally:
        _current.reset(token)


def filtered(query: Any, column: Any, tenant: Tenant) -> Any:
    condition = tenant.where(column)
    return query if condition is None else query.where(condition)
