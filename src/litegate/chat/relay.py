"""A remote's server-sent events passed through as bytes: whole events only, the usage-only
event noted for the ledger and dropped unless the client asked for usage."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

_SSE_EVENT_END = re.compile(rb"\r?\n\r?\n")


async def relay_events(first: bytes, rest: AsyncIterator[bytes], wants_usage: bool,
                       seen: dict[str, Any]) -> AsyncIterator[bytes]:
    """The stream's bytes regrouped into whole events; ``seen`` collects its id and usage."""
    buffer = first
    async for piece in rest:
        buffer += piece
        *events, buffer = _SSE_EVENT_END.split(buffer)
        out = [e for e in events if _note_usage(e, seen) or wants_usage]
        if out:
            yield b"\n\n".join(out) + b"\n\n"
    *events, buffer = _SSE_EVENT_END.split(buffer)
    out = [e for e in events if _note_usage(e, seen) or wants_usage]
    if out:
        yield b"\n\n".join(out) + b"\n\n"
    if buffer:
        yield buffer


def _note_usage(event: bytes, seen: dict[str, Any]) -> bool:
    """Remember a relayed SSE event's id and usage; False for the usage-only event (the
    relay drops it unless the client asked for usage)."""
    if not event.startswith(b"data: {"):
        return True
    try:
        chunk = json.loads(event[6:])
    except ValueError:
        return True
    seen.setdefault("id", chunk.get("id"))
    if chunk.get("usage"):
        seen["usage"] = chunk["usage"]
        return bool(chunk.get("choices"))
    return True
