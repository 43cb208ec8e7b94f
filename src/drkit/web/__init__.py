"""drkit's web shell: the status page and its internal side (an ASGI app, starlette)."""
