"""One use case per module. Each takes a frozen command and answers with plain read models."""
