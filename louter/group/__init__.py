"""Many workers, one louter (`louter --workers N`).

A supervisor binds the listening sockets once and runs N worker processes that accept
on them (the sockets are passed to each worker as file descriptors, so connections
queued in the kernel are never lost when workers come and go). Each worker is a whole
louter (its own trio loop, context and upstream connections) plus a link to the
supervisor over two socket pairs:

- control (`channel.Channel`, length-prefixed JSON both ways): `ready` when the worker
  serves, `snapshot` requests answered with its metrics or health, `gather` requests by
  which a worker serving `/metrics` or `/health` asks for every worker's snapshot, and a
  `final` metrics snapshot at the end of a graceful stop (so counters survive reloads);
- log (`journal.Journal(sink=...)`): each exchange's JSONL lines as one frame; the
  supervisor is the log file's single writer, so lines are whole at any size and
  rotation sees one file.

`supervisor.Supervisor` restarts dead workers with back-off, forwards SIGTERM (graceful
drain) and performs SIGHUP reloads (a new generation takes over, the old one drains);
`worker.Link` is the worker's side; `merge` sums snapshots (pure). Nothing here prints:
events go to a `report` callback the CLI renders.
"""
