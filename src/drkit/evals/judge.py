"""The LLM-judge scorer: a plan route grades each answer PASS or FAIL.

An example with ``"scorer": "llm_judge", "params": {"route": "judge"}`` is scored by
asking the gateway's route ``judge`` (any route of the plan: a strong model, another
provider) with the rubric, the question, the reference answer and ``criteria`` in the
system message and the answer to grade as the user message. The judge's reply must
start with ``PASS`` (score 1.0) or ``FAIL`` (0.0); anything else, an HTTP error or a
transport error is recorded as the example's ``error`` (score 0), never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from drkit.evals.evalset import Example

RUBRIC = (
    "You grade one answer to a question against a reference answer. Reply with PASS if "
    "the answer is correct and consistent with the reference, else FAIL; the first word "
    "of your reply must be PASS or FAIL, then one sentence why."
)
_VERDICT = re.compile(r"^\W*(PASS|FAIL)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Judge:
    """Where the judge routes are: a gateway's OpenAI base URL (``.../v1``) and its key."""

    base_url: str
    api_key: str | None = None
    max_tokens: int = 32

    def messages(self, example: Example, answer: str) -> list[dict[str, str]]:
        question = "\n".join(f"{m['role']}: {m['content']}" for m in example.messages)
        system = f"{RUBRIC}\n\nQuestion:\n{question}\n\nReference answer:\n{example.expected}"
        criteria = example.params.get("criteria")
        if criteria:
            system += f"\n\nCriteria:\n{criteria}"
        return [{"role": "system", "content": system}, {"role": "user", "content": answer}]

    async def score(
        self, client: httpx.AsyncClient, example: Example, answer: str
    ) -> tuple[float, str | None]:
        """(score, error): 1.0 on PASS, 0.0 on FAIL; an error says why there is no verdict."""
        body: dict[str, Any] = {
            "model": str(example.params["route"]),
            "messages": self.messages(example, answer),
            "max_tokens": self.max_tokens,
            "temperature": 0,
        }
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            resp = await client.post(
                self.base_url.rstrip("/") + "/chat/completions", json=body, headers=headers
            )
        except httpx.TransportError as exc:
            return 0.0, f"judge: transport: {type(exc).__name__}"
        if resp.status_code != 200:
            return 0.0, f"judge: http {resp.status_code}"
        try:
            text = str(resp.json()["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            return 0.0, "judge: malformed answer"
        verdict = _VERDICT.match(text)
        if verdict is None:
            return 0.0, "judge: no PASS/FAIL verdict"
        return (1.0 if verdict.group(1).upper() == "PASS" else 0.0), None
