"""Where runs come from: each source yields :class:`altgrad_docs.runs.RunRecord` objects.

``offline`` reads ``wandb/offline-run-*`` folders; ``wandb_api`` talks to the W&B Public API
(the only module that imports wandb's API). Nothing here knows about analysis or the site.
"""
