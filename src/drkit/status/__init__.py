"""The status page's domain: component states derived from events, uptime, incidents.

A sibling of the gateway, evals and cost: it never imports them, it reads the events
they write to drkit's state (see ``docs/events.md``) and writes ``incident.*`` events.
"""
