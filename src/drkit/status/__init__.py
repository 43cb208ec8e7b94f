"""status layer."""
