"""From documents to a reviewed dataset in the window: the dialog that runs it (dialog.py) and the review grid
(review_grid.py)."""
