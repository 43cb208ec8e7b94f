"""lineage layer."""
