"""A real headless Chromium for the e2e tests of the service's pages (Debian's chromium and
chromium-driver, driven by selenium; `make test` installs them with apt-get when it runs as
root). Selenium blocks: call it through asyncio.to_thread from a test whose event loop runs the
server, so the server keeps answering while the browser waits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Flags that work on this machine (root, no display, no network beyond loopback).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1100",
)
WAIT_SECONDS = 60


def chromium(profile: Path) -> Iterator[Any]:
    """A browser for one test (skipped, saying why, where Chromium is not installed)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (`make test` installs "
            "them with apt-get when it runs as root)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # The driver's path given: selenium then downloads nothing.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: Any, condition: Callable[[Any], Any]) -> Any:
    """Until `condition(driver)` is truthy (an element not there yet counts as false)."""
    from selenium.common.exceptions import NoSuchElementException
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(NoSuchElementException,))
    return waiting.until(condition)
