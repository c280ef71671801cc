"""Fallback, once: a tier that is down hands the call to its ``fallback`` tier (and that one to
its own), for every entry point — the task runner, the chat service, the relay, sync or async.

The config check refuses fallback cycles, so a chain always ends; the first tier that was down
and why are reported with the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from litegate.errors import TierDown
from litegate.tiers.base import Tier

log = logging.getLogger("litegate.tiers")
T = TypeVar("T")
Resolve = Callable[[str], Tier]


@dataclass(frozen=True)
class FellBack:
    """The tier that was down first, and why."""

    tier: str
    reason: str


def _next(tier: Tier, error: TierDown, resolve: Resolve) -> Tier:
    """The tier to try after ``tier`` went down; re-raises when it has no fallback."""
    if not tier.config.fallback:
        raise error
    log.warning("%s; falling back to %s", error.message, tier.config.fallback)
    return resolve(tier.config.fallback)


def call_with_fallback(first: Tier, attempt: Callable[[Tier], T], resolve: Resolve) -> tuple[T, FellBack | None]:
    """``attempt(tier)`` on ``first``, then on its fallbacks while each is down."""
    tier, fell = first, None
    while True:
        try:
            return attempt(tier), fell
        except TierDown as e:
            fell = fell or FellBack(tier.name, e.reason)
            tier = _next(tier, e, resolve)


async def acall_with_fallback(first: Tier, attempt: Callable[[Tier], Awaitable[T]],
                              resolve: Resolve) -> tuple[T, FellBack | None]:
    """The same, for async attempts."""
    tier, fell = first, None
    while True:
        try:
            return await attempt(tier), fell
        except TierDown as e:
            fell = fell or FellBack(tier.name, e.reason)
            tier = _next(tier, e, resolve)
