"""Quote sources and the tick wire contract (the schema every later stage imports)."""
