"""The KCL consumer: per-symbol enrichment, sinks, and the record processor."""
