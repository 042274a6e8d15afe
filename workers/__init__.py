"""Background jobs (Celery, or in-process on the embedded default)."""
