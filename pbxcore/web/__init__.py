"""The supervisor wallboard, reports and call detail in the browser (docs/web.md)."""
