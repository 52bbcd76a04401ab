"""Training: the worker process that trains, its events, and the launcher that starts and watches it."""
