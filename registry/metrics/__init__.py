"""``/metrics``: the service's state in the Prometheus text format (SPEC §12)."""
