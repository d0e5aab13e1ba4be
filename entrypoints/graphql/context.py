"""Per-request GraphQL context: who is asking, the use cases, and this request's DataLoaders."""

from __future__ import annotations

from collections.abc import Callable

from strawberry.dataloader import DataLoader

from domain.library import IngestionProgress
from domain.values import LibraryItemId, UserId
from entrypoints.use_cases import LibraryUseCases


class RequestContext:
    def __init__(
        self, *, viewer: UserId | None, auth_failure: str | None, use_cases: LibraryUseCases
    ) -> None:
        self.viewer = viewer
        self.auth_failure = auth_failure
        self.use_cases = use_cases
        # graphql-transport-ws: the `connection_init` payload, where a WebSocket client puts its
        # token (Strawberry sets it when the message arrives).
        self.connection_params: dict[str, object] = {}
        # Over a WebSocket, the token is checked again before each update is sent, so that a
        # subscription ends with its token (raises the authenticator's AuthenticationFailed).
        self.recheck_token: Callable[[], object] = lambda: None
        # One query for the progress of a whole page of items, not one per item.
        self.progress_loader: DataLoader[LibraryItemId, IngestionProgress] = DataLoader(
            load_fn=self._load_progress
        )

    @property
    def user_id(self) -> UserId:
        # The router refuses every operation without a viewer before any resolver runs.
        assert self.viewer is not None, "resolver reached without an authenticated viewer"
        return self.viewer

    async def _load_progress(self, item_ids: list[LibraryItemId]) -> list[IngestionProgress]:
        by_id = await self.use_cases.progress(item_ids)
        return [by_id[item_id] for item_id in item_ids]
