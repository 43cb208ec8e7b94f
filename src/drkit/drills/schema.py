"""Print the drill journal's JSON schema: ``python -m drkit.drills.schema``."""

from __future__ import annotations

import json

from drkit.drills.journal import Journal

if __name__ == "__main__":
    print(json.dumps(Journal.model_json_schema(), indent=2))
