from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """The current time. Always timezone-aware UTC."""

    def now(self) -> datetime: ...
