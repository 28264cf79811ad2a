"""The paper's comparison (Tables 1-2) across seeds, one job a module:

- :mod:`.run`: ``liverclick reproduce``, the three systems trained and evaluated per seed, resumably;
- :mod:`.summary`: the figures and paired differences per seed and across seeds, a verdict per figure;
- :mod:`.report`, :mod:`.recipe`, :mod:`.plots`: ``liverclick reproduce-report``, the document and its plots.
"""

import json
import os
from pathlib import Path


class ReproductionError(ValueError):
    """Settings or a run folder that cannot make (or continue) a reproduction: a message for the user."""


def write_json_atomic(obj: dict, path: Path) -> None:
    """Temp file and rename: an interrupted write never leaves a half report that would count as done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
