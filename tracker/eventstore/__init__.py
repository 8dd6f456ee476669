"""The event store: append-only streams with a per-stream hash chain and a gap-safe feed.

Knows nothing of deals. Public surface: `append`, `read_stream`, `read_all`, `stream_version`,
`verify_stream` and their value types, and the errors in `errors`.
"""
