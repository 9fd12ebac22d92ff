"""`bin/bench`: louter's overhead against a direct call, and a soak test, on this machine.

- `upstream`: a fast mock OpenAI-compatible upstream (asyncio, standard library only),
  also `python3 -m louter.bench.upstream --port P`; `bodies` holds what it answers and
  what the clients send; `sanity` checks an answer is the mock's.
- `stack`: starts the mock and louter (pinned with taskset; `processes`) and stops them
  by PID; `processes` also reads CPU time and memory from /proc.
- `run`: the cases S1–S4 with wrk (`wrk`, `post.lua`) against both; `soak`: a long mixed
  run with `load` (an exact-count load generator), RSS samples and a log count.
- `model`: settings and the reports the CLI (`louter.cli.bench`) renders.

Nothing here prints; progress goes to a callback.
"""
