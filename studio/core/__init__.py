"""The headless core: models, memory, data and training. Never imports Qt (checked by import-linter)."""
