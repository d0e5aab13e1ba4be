"""Pagination cursors: every position round-trips, and nothing but what encoding writes decodes."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.errors import InvalidCursor
from application.ports.unit_of_work import LibraryPosition
from application.use_cases.cursors import decode_cursor, encode_cursor
from domain.values import LibraryItemId

ITEM = "0b4c7e1e-8f7a-4a55-9d7e-0c1f4c4b9a11"
# Zones whose offset keeps every time of the range inside it once converted to UTC.
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7))])
POSITIONS = st.builds(
    LibraryPosition,
    added_at=st.datetimes(
        min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES
    ),
    item_id=st.uuids().map(LibraryItemId),
)


def _forged(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@given(position=POSITIONS)
def test_every_position_comes_back_from_its_cursor_as_the_same_instant(
    position: LibraryPosition,
) -> None:
    decoded = decode_cursor(encode_cursor(position))

    assert decoded == position  # aware datetimes compare as instants
    assert decoded.added_at.utcoffset() == timedelta(0)


@given(text=st.one_of(st.text(max_size=300), st.text().map(_forged)))
def test_any_text_either_is_refused_or_is_exactly_what_its_position_encodes_to(
    text: str,
) -> None:
    try:
        position = decode_cursor(text)
    except InvalidCursor:
        return
    assert encode_cursor(position) == text


@pytest.mark.parametrize(
    "raw",
    [
        # Year 1 at +01:00 is year 0 in UTC: the forged cursor of issue 11.
        f"li1:0001-01-01T00:00:00+01:00|{ITEM}",
        f"li1:9999-12-31T23:59:59-01:00|{ITEM}",
        f"li1:2026-01-01T10:00:00+02:00|{ITEM}",
        f"li1:2026-01-01T10:00:00|{ITEM}",  # no zone
        f"li1:2026-01-01T10:00:00Z|{ITEM}",  # UTC, but not as encoding writes it
        f"li1:2026-01-01|{ITEM}",
        f"li1:2026-01-01T10:00:00+00:00|{ITEM.upper()}",
        f"li1:2026-01-01T10:00:00+00:00|{ITEM.replace('-', '')}",
        f"li1:2026-01-01T10:00:00+00:00|{ITEM}|extra",
        "li1:2026-01-01T10:00:00+00:00|not-a-uuid",
        f"li2:2026-01-01T10:00:00+00:00|{ITEM}",
    ],
)
def test_a_forged_cursor_in_any_form_encoding_does_not_write_is_refused(raw: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(_forged(raw))


def test_a_cursor_with_its_base64_padding_put_back_is_refused() -> None:
    instant = datetime(2026, 1, 1, microsecond=1, tzinfo=UTC)  # 73 bytes: padded to 76
    cursor = encode_cursor(LibraryPosition(instant, LibraryItemId(uuid.UUID(ITEM))))
    padded = cursor + "=" * (-len(cursor) % 4)
    assert padded != cursor

    with pytest.raises(InvalidCursor):
        decode_cursor(padded)


def test_the_extremes_of_the_range_in_utc_are_accepted() -> None:
    for instant in (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)):
        position = LibraryPosition(instant, LibraryItemId(uuid.UUID(ITEM)))
        assert decode_cursor(_forged(f"li1:{instant.isoformat()}|{ITEM}")) == position
