"""Analysis of the run table and run histories: statistics, comparisons, failures.

Pure computation: inputs are the run table (``altgrad_docs.runs.RUN_COLUMNS``) and history
frames (``_step`` + float64 metric columns); nothing here knows where the data came from.
See ``altgrad_docs/report/__init__.py`` for the order the site calls things in.
"""
