"""LLM provider connectors: the upstream client, SSE handling and a provider simulator.

- :mod:`drkit.connectors.llm.client` — :class:`UpstreamClient`, one attempt against one
  target with connect / first-token / idle / total deadlines, failures classified
  (:mod:`~drkit.connectors.llm.upstream_errors`), its URLs and headers
  (:mod:`~drkit.connectors.llm.endpoints`) and its open answers
  (:mod:`~drkit.connectors.llm.upstream_stream`);
- :mod:`drkit.connectors.llm.provider` — the ``Provider`` interface and its wrappers;
- :mod:`drkit.connectors.llm.sse` — incremental SSE parsing and per-dialect event meaning;
- :mod:`drkit.connectors.llm.simulator` — an OpenAI/Anthropic provider simulator with
  scriptable faults (``drkit simulate provider``).
"""
