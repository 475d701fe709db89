"""Logs, metrics and tracing: the shared set-up, and each process's own metrics."""
