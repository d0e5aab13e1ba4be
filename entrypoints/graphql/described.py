"""Strawberry's field and mutation decorators with a description, typed for mypy.

Called with keyword arguments only, `strawberry.field(...)` is typed as answering `Any`, which
mypy reports as an untyped decorator on every resolver; these keep the resolver's own type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry

Resolver = TypeVar("Resolver", bound=Callable[..., Any])


def field(description: str) -> Callable[[Resolver], Resolver]:
    decorator: Callable[[Resolver], Resolver] = strawberry.field(description=description)
    return decorator


def mutation(description: str) -> Callable[[Resolver], Resolver]:
    decorator: Callable[[Resolver], Resolver] = strawberry.mutation(description=description)
    return decorator


def subscription(description: str) -> Callable[[Resolver], Resolver]:
    decorator: Callable[[Resolver], Resolver] = strawberry.subscription(description=description)
    return decorator
