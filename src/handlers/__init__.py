"""Lambda entry points: thin doors into `durable` (the API, the worker, the sweeper)."""
