"""connectors.llm layer."""
