"""HTML pages and their assets shipped as package data beside a module (GraphiQL, the status
page): `page.html`, whose `{{ASSETS}}` names where the app mounts `assets/`."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path


def assets_directory(package: str) -> Path:
    """The folder `package`'s assets are served from (it may not exist before a build)."""
    return Path(str(resources.files(package))) / "assets"


@cache
def page(package: str, assets_path: str) -> str:
    """`package`'s page, with the assets' path filled in."""
    template = resources.files(package).joinpath("page.html").read_text(encoding="utf-8")
    return template.replace("{{ASSETS}}", assets_path)
