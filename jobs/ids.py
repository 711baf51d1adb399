"""Job ids as clients send them."""

from __future__ import annotations

from typing import Any
from uuid import UUID


def parse_uuid(value: Any) -> UUID | None:
    """A UUID, or None for anything that is not one (the API answers 404 for those)."""
    try:
        return UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
