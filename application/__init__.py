"""Use cases and the ports they need. No framework or client library is imported here."""
