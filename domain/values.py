"""Value objects that validate themselves: ISRC, TIDAL catalogue id, user id, library item id."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

from domain.errors import InvalidCatalogId, InvalidIsrc, InvalidLibraryItemId, InvalidUserId

# CC XXX YY NNNNN: country (2 letters), registrant (3 alphanumerics), year (2 digits),
# designation (5 digits). ASCII only: str.isdigit() would accept other scripts' digits.
_ISRC = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{2}[0-9]{5}")
_ISRC_SEPARATORS = str.maketrans("", "", "- ")
_CATALOG_ID = re.compile(r"[0-9]{1,20}")
# A playlist's id (ADR 0027): canonical 8-4-4-4-12 hexadecimal, stored in lower case.
_CATALOG_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_USER_ID_MAX = 128
# The form the API gives out (str(uuid.UUID)), hyphens optional. uuid.UUID alone is lax: it takes
# '0x' prefixes, underscores, '+', stray braces and other scripts' digits, all through int(hex, 16).
_LIBRARY_ITEM_ID = re.compile(
    r"[0-9a-fA-F]{8}(-?)[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{12}"
)

# The Qdrant point id of a track is derived from its ISRC, so that every service writing the
# index agrees on it (design.md §4).
_POINT_NAMESPACE = uuid.NAMESPACE_URL


@dataclass(frozen=True, slots=True)
class Isrc:
    """An International Standard Recording Code in its normal form: 12 characters, upper case."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not _ISRC.fullmatch(self.value):
            raise InvalidIsrc(str(self.value))

    @classmethod
    def parse(cls, raw: str) -> Isrc:
        """Normalise case, hyphens and spaces, then validate; raises InvalidIsrc."""
        # ASCII only: str.upper() maps some non-ASCII letters to ASCII ones ('ß' -> 'SS').
        if not isinstance(raw, str) or len(raw) > 64 or not raw.isascii():
            raise InvalidIsrc(str(raw))
        normal = raw.translate(_ISRC_SEPARATORS).upper()
        if not _ISRC.fullmatch(normal):
            raise InvalidIsrc(raw)  # the caller's input, not our rewrite of it
        return cls(normal)

    @property
    def point_id(self) -> str:
        """The search index's point id for this ISRC: uuid5(NAMESPACE_URL, "isrc:" + ISRC)."""
        return str(uuid.uuid5(_POINT_NAMESPACE, "isrc:" + self.value))

    def __str__(self) -> str:
        return self.value


class CatalogIdForm(StrEnum):
    """The forms a TIDAL resource id takes here (ADR 0027); each kind of item sets its own.
    Both are safe in a URL path as they are: digits, hexadecimal letters and hyphens."""

    DIGITS = "digits"  # tracks and albums: 1 to 20 ASCII digits
    UUID = "uuid"  # playlists: a UUID in canonical lower-case form

    @property
    def described(self) -> str:
        """The form in words, for the caller who sent something else."""
        if self is CatalogIdForm.DIGITS:
            return "1 to 20 digits"
        return "a UUID such as 550e8400-e29b-41d4-a716-446655440000"

    def matches(self, value: str) -> bool:
        pattern = _CATALOG_ID if self is CatalogIdForm.DIGITS else _CATALOG_UUID
        return pattern.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class CatalogId:
    """A TIDAL catalogue id in one of the forms of CatalogIdForm."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not any(
            form.matches(self.value) for form in CatalogIdForm
        ):
            raise InvalidCatalogId(str(self.value))

    @classmethod
    def parse(cls, raw: str, form: CatalogIdForm = CatalogIdForm.DIGITS) -> CatalogId:
        """A user's (or a document's) id in `form`: surrounding blanks stripped, a UUID's
        upper case accepted and stored lower; raises InvalidCatalogId with the raw input."""
        if not isinstance(raw, str) or len(raw) > 64:
            raise InvalidCatalogId(str(raw), form.described)
        stripped = raw.strip()
        if form is CatalogIdForm.UUID:
            # ASCII only: str.lower() maps some non-ASCII letters to ASCII ones.
            stripped = stripped.lower() if stripped.isascii() else stripped
        if not form.matches(stripped):
            # The caller's input, not our rewrite of it, and the form this kind takes.
            raise InvalidCatalogId(raw, form.described)
        return cls(stripped)

    def __str__(self) -> str:
        return self.value


UserId = NewType("UserId", str)
LibraryItemId = NewType("LibraryItemId", uuid.UUID)


def parse_user_id(raw: str) -> UserId:
    """A user id is the JWT subject: non-empty, at most 128 characters, no control characters."""
    if (
        not isinstance(raw, str)
        or not raw
        or len(raw) > _USER_ID_MAX
        or any((ch.isspace() and ch != " ") or not ch.isprintable() for ch in raw)
    ):
        raise InvalidUserId(str(raw))
    return UserId(raw)


def parse_library_item_id(raw: str) -> LibraryItemId:
    if not isinstance(raw, str) or not _LIBRARY_ITEM_ID.fullmatch(raw):
        raise InvalidLibraryItemId(str(raw))
    try:
        return LibraryItemId(uuid.UUID(raw))
    except (ValueError, TypeError, AttributeError) as error:
        raise InvalidLibraryItemId(str(raw)) from error
