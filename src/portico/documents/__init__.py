"""Documents an assistant answers from (issue 24): upload, conversion to Markdown, limits, and what a
Publish snapshots (docs/design.md, "Documents")."""
