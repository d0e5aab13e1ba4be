"""Domain errors: they carry the offending data and know nothing of any transport."""


class DomainError(Exception):
    """Base of the caller's mistakes: a request the rules refuse as it was made (ADR 0025).
    A dependency being down is not one (application.errors.DependencyUnavailable)."""


class InvalidIsrc(DomainError):
    def __init__(self, raw: str) -> None:
        super().__init__(f"not an ISRC: {raw[:64]!r}")
        self.raw = raw


class InvalidCatalogId(DomainError):
    def __init__(self, raw: str, expected: str = "1 to 20 digits") -> None:
        super().__init__(f"not a TIDAL catalogue id ({expected}): {raw[:64]!r}")
        self.raw = raw


class InvalidUserId(DomainError):
    def __init__(self, raw: str) -> None:
        super().__init__(f"not a user id: {raw[:64]!r}")
        self.raw = raw


class InvalidLibraryItemId(DomainError):
    def __init__(self, raw: str) -> None:
        super().__init__(f"not a library item id: {raw[:64]!r}")
        self.raw = raw
