"""Where the shared material lives: `../shared` beside the checkout (override: LOUTER_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOUTER_SHARED", REPO.parent / "shared"))
SAMPLES = SHARED / "llama-server" / "samples"
CAPTURES = SHARED / "captures"
FIXTURES = REPO / "tests" / "fixtures"
