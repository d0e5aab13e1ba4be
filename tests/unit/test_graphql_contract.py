"""The served GraphQL schema against the contract of design.md §4, as grown by ADR 0029 (the
playlist mutation and kind) and ADR 0031 (the subscriptions): no breaking change either way (a
client written against the contract works, and nothing the contract lacks is required)."""

from __future__ import annotations

from graphql import build_schema as build_contract
from graphql import find_breaking_changes

from entrypoints.graphql.schema import build_schema

CONTRACT = """
scalar DateTime
type Query {
  library(first: Int = 50, after: String, kind: LibraryItemKind): LibraryConnection!
  libraryItem(id: ID!): LibraryItem
  searchTracks(query: String!, limit: Int = 10): [TrackHit!]!
}
type Mutation {
  addTrackToLibrary(trackId: ID!): AddToLibraryResult!
  addAlbumToLibrary(albumId: ID!): AddToLibraryResult!
  addPlaylistToLibrary(playlistId: ID!): AddToLibraryResult!
  removeFromLibrary(itemId: ID!): RemoveFromLibraryResult!
  retryIngestion(itemId: ID!): RetryIngestionResult!
}
type Subscription {
  ingestionProgress(itemId: ID!): IngestionProgress!
  libraryProgress: LibraryItemUpdate!
}
enum LibraryItemKind { TRACK ALBUM PLAYLIST }
type LibraryItem {
  id: ID!  kind: LibraryItemKind!  catalogId: ID!  title: String  artistNames: [String!]!
  addedAt: DateTime!  ingestion: IngestionProgress!
}
enum IngestionState { PENDING SCHEDULED PARTIAL INDEXED FAILED }
type IngestionProgress {
  state: IngestionState!  tracksTotal: Int!  tracksRequested: Int!  tracksIndexed: Int!
  tracksSkipped: Int!  tracksFailed: Int!  lastError: String  skippedTracks: [SkippedTrack!]!
}
enum SkipReason { NO_ISRC NOT_AVAILABLE }
type SkippedTrack { trackId: ID!  reason: SkipReason! }
type TrackHit {
  isrc: String!  trackId: ID!  title: String!  artistNames: [String!]!  score: Float!
}
type LibraryConnection { edges: [LibraryItemEdge!]!  pageInfo: PageInfo!  totalCount: Int! }
type LibraryItemEdge { cursor: String!  node: LibraryItem! }
type PageInfo { hasNextPage: Boolean!  endCursor: String }
interface UserError { message: String! }
type InvalidCatalogId implements UserError { message: String!  catalogId: String! }
type LibraryItemNotFound implements UserError { message: String!  itemId: ID! }
type AddToLibrarySuccess { item: LibraryItem!  alreadyInLibrary: Boolean! }
union AddToLibraryResult = AddToLibrarySuccess | InvalidCatalogId
type RemoveFromLibrarySuccess { removedItemId: ID! }
union RemoveFromLibraryResult = RemoveFromLibrarySuccess | LibraryItemNotFound
type NothingToRetry implements UserError { message: String!  itemId: ID! }
type RetryIngestionSuccess { item: LibraryItem! }
union RetryIngestionResult = RetryIngestionSuccess | LibraryItemNotFound | NothingToRetry
type LibraryItemUpdate { itemId: ID!  removed: Boolean!  item: LibraryItem }
"""


def _served() -> object:
    schema = build_schema(max_depth=10, max_aliases=30, max_tokens=2000, introspection=True)
    return schema._schema


def test_the_served_schema_breaks_nothing_of_the_contract() -> None:
    changes = find_breaking_changes(build_contract(CONTRACT), _served())  # type: ignore[arg-type]

    assert [change.description for change in changes] == []


def test_the_contract_breaks_nothing_of_the_served_schema() -> None:
    changes = find_breaking_changes(_served(), build_contract(CONTRACT))  # type: ignore[arg-type]

    assert [change.description for change in changes] == []
