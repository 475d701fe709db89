"""The packages every process shares: `contract` (what processes say to each other),
`telemetry` (logs, metrics, tracing) and `services` (clients of the outside world).

Grouped under one package of ours so that their generic names cannot clash with an installed
distribution or a test module. Nothing lives here besides them.
"""
