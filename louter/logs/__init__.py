"""Reading and analysing louter's JSONL log (the engine behind `log-parser`).

Records and reducers only: `reader` reads the log (files, gzip, stdin, following);
`query`, `tools`, `pairs`, `stats` and `sketch` are pure reducers over entry dicts.
Nothing here renders or talks HTTP (tests/test_layers.py pins it): the rich views, the
textual browser and the httpx replay live in `louter.cli` (`log_views`, `log_browser`,
`log_replay`), which also prints.
"""
