"""Reusable pieces of the window: the memory bar, loss plots, gauges, the token histogram, ..."""
