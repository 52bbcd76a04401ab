"""From documents to a reviewed dataset, offline (issue #22): read PDF, Word, web pages, Markdown and
text (reading.py, pdf.py → parsed.py), cut chunks (chunking.py), split by document (split.py), ask a
model for question–answer pairs with a quote (generation.py), check each pair (checks.py), run it all
in resumable stages (pipeline.py) and let the expert review the pairs into a dataset (review.py)."""
