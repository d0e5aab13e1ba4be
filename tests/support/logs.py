"""Capturing what one module logs, whatever an earlier test configured.

The service configures structlog with cache_logger_on_first_use: a module's logger that has
logged once under that configuration (an app built by an earlier test in the session) keeps its
processors, and structlog.testing.capture_logs would see nothing from it. A fresh proxy in its
place binds to capture_logs' processors when it first logs."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
import structlog


@contextmanager
def logs_of(module: ModuleType, attribute: str = "log") -> Iterator[list[MutableMapping[str, Any]]]:
    """What `module`'s logger (the module global `attribute`) logs inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, attribute, structlog.get_logger(module.__name__))
        with structlog.testing.capture_logs() as logs:
            yield logs
