"""``drkit agent``: the always-on scheduler that runs the plan's cadence unattended.

- :mod:`drkit.agent.jobs`: the plan's cadence as jobs (snapshots, copies, restore tests,
  retention) and what each one calls in the workspace and repository layers;
- :mod:`drkit.agent.history`: each job's runs, recorded as events in drkit's state (the
  source of "when did it last run", so a restarted agent catches up once);
- :mod:`drkit.agent.scheduler`: due computation, jitter, concurrency, retries, stop;
- :mod:`drkit.agent.rpo`: the *measured* RPO per component and region;
- :mod:`drkit.agent.http`: ``/metrics`` (Prometheus) and ``/healthz``.
"""
