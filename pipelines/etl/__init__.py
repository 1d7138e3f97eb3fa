"""ETL of raw uploads into the curated, split, feature-engineered dataset (pure transforms + Glue entry point)."""
