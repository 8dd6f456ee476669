"""The event store: append-only streams with a per-stream hash chain and a gap-safe feed.

Knows nothing of deals. Public surface: `store` (`append`, `read_stream`, `read_all`,
`stream_version`, `stream_head`, `verify_stream` and their value types), `export`
(`export_lines`, `export_ledger_lines`), `digest`, and the errors in `errors`. The backends'
recorders (`postgres`, `sqlite`, on `recorder`) sit behind `store`.
"""
