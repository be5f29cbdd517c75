"""Where enriched rows, dead letters and per-symbol state go."""
