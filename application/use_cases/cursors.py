"""Opaque pagination cursors: a library position, encoded so clients treat it as a token."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from application.errors import InvalidCursor
from application.ports.unit_of_work import LibraryPosition
from domain.values import LibraryItemId

_PREFIX = "li1:"
_MAX_CURSOR_LENGTH = 256


def encode_cursor(position: LibraryPosition) -> str:
    raw = f"{_PREFIX}{position.added_at.isoformat()}|{position.item_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> LibraryPosition:
    """Raises InvalidCursor for anything `encode_cursor` did not produce."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR_LENGTH:
        raise InvalidCursor(str(cursor)[:64])
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        if not raw.startswith(_PREFIX):
            raise ValueError("unknown cursor version")
        added_at_text, item_id_text = raw[len(_PREFIX) :].split("|")
        added_at = datetime.fromisoformat(added_at_text)
        if added_at.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return LibraryPosition(added_at=added_at, item_id=LibraryItemId(uuid.UUID(item_id_text)))
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise InvalidCursor(cursor[:64]) from error
