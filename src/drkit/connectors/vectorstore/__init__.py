"""connectors.vectorstore layer."""
