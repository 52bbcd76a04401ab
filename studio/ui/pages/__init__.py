"""One page per step: model, data, adapter, memory, train, try & export; and the runs list."""
