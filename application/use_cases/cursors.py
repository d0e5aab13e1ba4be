"""Opaque pagination cursors: a library position, encoded so clients treat it as a token.

Validated, not signed. A position carries no authority: every page query filters by the
caller, so a position made up by hand shows nothing a client could not reach by paging, and
another user's cursor only says where to start in the caller's own library. What a forged
cursor could do is carry a value the database refuses (a time whose UTC form falls before year
1, issue 11), and validation is enough against that: a cursor is accepted only in exactly the
form `encode_cursor` writes, its time in UTC. A signature would add a secret that every replica
must share and rotate, and would make cursors die with it, for no protection beyond this."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime, timedelta

from application.errors import InvalidCursor
from application.ports.unit_of_work import LibraryPosition
from domain.values import LibraryItemId

_PREFIX = "li1:"
_MAX_CURSOR_LENGTH = 256


def encode_cursor(position: LibraryPosition) -> str:
    added_at = position.added_at.astimezone(UTC).isoformat()
    raw = f"{_PREFIX}{added_at}|{position.item_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> LibraryPosition:
    """Raises InvalidCursor for anything `encode_cursor` did not produce: the text must be what
    encoding its own position gives back, character for character."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR_LENGTH:
        raise InvalidCursor(str(cursor)[:64])
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        if not raw.startswith(_PREFIX):
            raise ValueError("unknown cursor version")
        added_at_text, item_id_text = raw[len(_PREFIX) :].split("|")
        added_at = datetime.fromisoformat(added_at_text)
        # Only UTC: an offset could move the time out of the range of either side (a year-1
        # time at +01:00 is year 0 in UTC, which Python cannot represent to the driver).
        if added_at.utcoffset() != timedelta(0):
            raise ValueError("cursor time not in UTC")
        position = LibraryPosition(
            added_at=added_at, item_id=LibraryItemId(uuid.UUID(item_id_text))
        )
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise InvalidCursor(cursor[:64]) from error
    if encode_cursor(position) != cursor:
        # Other spellings of the same position (padding, another time format, an id in capitals).
        raise InvalidCursor(cursor[:64])
    return position
