"""Adapters: each translates one technology to a port and never leaks its types inward."""
