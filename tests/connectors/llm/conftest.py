"""Fixtures for the LLM connector tests: simulators of both dialects on loopback.

One simulator per dialect per module (they start in ~50 ms); faults and counters are
reset before every test so tests do not see each other's state.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drkit.connectors.llm.simulator import ProviderSimulator


@pytest.fixture(scope="module")
def _openai_sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator("openai", seed=7) as sim:
        yield sim


@pytest.fixture(scope="module")
def _anthropic_sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator("anthropic", seed=7) as sim:
        yield sim


def _fresh(sim: ProviderSimulator) -> ProviderSimulator:
    sim.clear_faults()
    sim.reset_stats()
    sim.state.mode = "lorem"
    return sim


@pytest.fixture
def openai_sim(_openai_sim: ProviderSimulator) -> Iterator[ProviderSimulator]:
    yield _fresh(_openai_sim)
    _openai_sim.clear_faults()


@pytest.fixture
def anthropic_sim(_anthropic_sim: ProviderSimulator) -> Iterator[ProviderSimulator]:
    yield _fresh(_anthropic_sim)
    _anthropic_sim.clear_faults()


@pytest.fixture(params=["openai", "anthropic"])
def sim(
    request: pytest.FixtureRequest,
    _openai_sim: ProviderSimulator,
    _anthropic_sim: ProviderSimulator,
) -> Iterator[ProviderSimulator]:
    chosen = _openai_sim if request.param == "openai" else _anthropic_sim
    yield _fresh(chosen)
    chosen.clear_faults()
