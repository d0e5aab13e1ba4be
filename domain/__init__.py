"""The pure core of libingest: value objects, the library item, and the ingestion policies.

Nothing here imports a framework, a client library or the clock.
"""
