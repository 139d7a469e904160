"""Item pipelines: validate (100), then deduplicate and store in the ledger (300)."""
