"""The data contracts, each defined once: the tick (the wire format), the enriched row, the
dead letter, the window's saved form and how rows are stored (Parquet schema, DynamoDB item)."""
