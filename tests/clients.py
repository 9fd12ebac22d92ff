"""Real client programs for end-to-end tests, installed on first use from the npm registry.

`npm_client(package, version, binary)` installs `package@version` under the cache
directory (`LOUTER_TEST_CACHE`, default `~/.cache/louter-tests`) unless it is already
there, and returns the binary's path. Installing needs the npm registry (CI has it); a
failed install fails the test, it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("LOUTER_TEST_CACHE", Path.home() / ".cache" / "louter-tests"))
INSTALL_TIMEOUT_S = 600


def npm_client(package: str, version: str, binary: str) -> Path:
    prefix = CACHE / f"{binary}-{version}"
    path = prefix / "node_modules" / ".bin" / binary
    if path.exists():
        return path
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: `apt-get install -y nodejs npm`", pytrace=False)
    prefix.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
         f"{package}@{version}"],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if proc.returncode != 0 or not path.exists():
        pytest.fail(
            f"npm install {package}@{version} failed:\n{proc.stderr[-3000:]}", pytrace=False
        )
    return path
