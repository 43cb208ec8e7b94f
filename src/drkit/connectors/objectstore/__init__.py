"""connectors.objectstore layer."""
