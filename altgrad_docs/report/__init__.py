"""Reports and figures from the analysis: Markdown via Jinja2 templates, matplotlib figures."""
