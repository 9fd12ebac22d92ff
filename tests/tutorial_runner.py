"""Run a tutorial (`tutorials/NN-*.md`) the way a reader would, and check what it shows.

Fenced blocks carry their role in the info string (see tutorials/README.md):

- ```` ```sh runnable ```` / ```` ```python runnable ````: executed, in order, in one
  `bash` session per tutorial (`set -e -o pipefail`; python blocks via `python3 -`).
  `feature=NAME[,NAME]` marks a block that needs a feature still being built: while the
  feature is pending, the block runs in a subshell whose failure does not stop the
  tutorial, and its result is checked by a separate (xfail) test.
- ```` ```text output ````: the expected stdout of the runnable block right before it.
  Compared line by line after trailing whitespace is stripped; a line `...` stands for
  any number of lines, `…` inside a line for any text.
- ```` ```toml file=configs/NAME.toml ````: the content of that file in `tutorials/`.
- anything `illustrative`: shown, never run.

The session runs in a scratch copy of `tutorials/` (`cwd` = a stand-in for the checkout
root) whose config files have their default ports (8080, 9901, ...) rewritten to the free
ports the test chose; the same ports are exported as `PORT`, `CLOUD_PORT`, ... so the
blocks, which use those variables, agree with the configs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^(`{3,})(.*)$")
KINDS = ("runnable", "illustrative", "output")
LANGS_RUNNABLE = ("sh", "python")
# environment variable -> the default port the tutorials and their configs use
DEFAULT_PORTS = {
    "PORT": 8080,
    "CLOUD_PORT": 9901,
    "CLOUD2_PORT": 9902,
    "SPARE_PORT": 9909,
    "LLAMA_PORT": 11212,
}
MARK = "@@tutorial-block"
END = "@@tutorial-end@@"


@dataclass
class Block:
    lang: str
    kind: str  # runnable | illustrative | output | file
    text: str
    line: int  # 1-based line of the opening fence
    attrs: dict[str, str] = field(default_factory=dict)
    expected: Block | None = None  # the output block after a runnable one

    @property
    def features(self) -> list[str]:
        """`feature=a,b`: the features (still being built) this block needs."""
        value = self.attrs.get("feature")
        return value.split(",") if value else []


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file; ValueError for a block without a role."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        ticks, info = match.group(1), match.group(2).split()
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != ticks:
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{path.name}:{start + 1}: unterminated code block")
        i += 1
        blocks.append(_block(path, start + 1, info, "\n".join(body)))
    _pair_outputs(path, blocks)
    return blocks


def _block(path: Path, line: int, info: list[str], text: str) -> Block:
    where = f"{path.name}:{line}"
    if not info:
        raise ValueError(f"{where}: code block without a language and a role")
    lang, words = info[0], info[1:]
    attrs = dict(w.split("=", 1) for w in words if "=" in w)
    flags = [w for w in words if "=" not in w]
    if "file" in attrs:
        kind = "file"
    elif len(flags) == 1 and flags[0] in KINDS:
        kind = flags[0]
    else:
        raise ValueError(f"{where}: mark the block runnable, illustrative, output or file=")
    unknown = set(attrs) - {"file", "feature"}
    if unknown:
        raise ValueError(f"{where}: unknown block attribute(s) {sorted(unknown)}")
    if kind == "runnable" and lang not in LANGS_RUNNABLE:
        raise ValueError(f"{where}: only {LANGS_RUNNABLE} blocks can be runnable")
    return Block(lang, kind, text, line, attrs)


def _pair_outputs(path: Path, blocks: list[Block]) -> None:
    for before, block in zip([None, *blocks], blocks, strict=False):
        if block.kind != "output":
            continue
        if before is None or before.kind != "runnable":
            raise ValueError(
                f"{path.name}:{block.line}: an output block must follow a runnable one"
            )
        before.expected = block


# --------------------------------------------------------------------------- matching


def _line_pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in expected.split("…")), re.S)


def output_matches(expected: str, actual: str) -> bool:
    """`actual` fits `expected`: `...` lines match any lines, `…` any text in a line."""
    want = _clean(expected)
    got = _clean(actual)
    patterns = [None if w == "..." else _line_pattern(w) for w in want]
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(patterns):
            result = j == len(got)
        elif patterns[i] is None:
            result = any(match(i + 1, k) for k in range(j, len(got) + 1))
        else:
            pattern = patterns[i]
            assert pattern is not None
            result = j < len(got) and pattern.fullmatch(got[j]) is not None and match(i + 1, j + 1)
        memo[(i, j)] = result
        return result

    return match(0, 0)


def _clean(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


# --------------------------------------------------------------------------- running


@dataclass
class BlockResult:
    block: Block
    ran: bool = False
    returncode: int | None = None  # for feature blocks; others stop the session on failure
    stdout: str = ""
    stderr: str = ""

    @property
    def matches(self) -> bool:
        return self.block.expected is None or output_matches(self.block.expected.text, self.stdout)

    @property
    def ok(self) -> bool:
        return self.ran and self.returncode == 0 and self.matches


@dataclass
class TutorialRun:
    name: str
    results: list[BlockResult]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    def problems(self, pending: set[str]) -> list[str]:
        """What went wrong outside the blocks of `pending` features."""
        out = []
        for result in self.results:
            if set(result.block.features) & pending:
                continue
            if not result.ran:
                out.append(f"{self._where(result)}: did not run (an earlier block failed)")
                break
            if result.returncode != 0:
                out.append(
                    f"{self._where(result)}: exit status {result.returncode}\n"
                    f"--- block ---\n{result.block.text}\n--- stdout ---\n{result.stdout}"
                    f"\n--- stderr ---\n{result.stderr[-4000:]}"
                )
                break
            if not result.matches:
                assert result.block.expected is not None
                out.append(
                    f"{self._where(result)}: output differs\n--- block ---\n{result.block.text}"
                    f"\n--- expected ---\n{result.block.expected.text}\n--- actual ---\n"
                    f"{result.stdout}\n--- stderr ---\n{result.stderr[-2000:]}"
                )
        if self.timed_out:
            out.append(f"{self.name}: timed out after {self.seconds:.0f}s")
        return out

    def feature_problems(self, feature: str) -> list[str]:
        return [
            f"{self._where(r)}: exit {r.returncode}, output "
            f"{'matches' if r.matches else 'differs'}\n{r.stdout}\n{r.stderr[-1500:]}"
            for r in self.results
            if feature in r.block.features and not r.ok
        ]

    def _where(self, result: BlockResult) -> str:
        return f"{self.name}:{result.block.line}"


def script_for(blocks: list[Block], pending: set[str]) -> str:
    lines = ["set -e -o pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for number, block in enumerate(blocks):
        marker = f"{MARK} {number}@@"
        lines.append(f"printf '\\n{marker}\\n'; printf '\\n{marker}\\n' >&2")
        code = block.text
        if block.lang == "python":
            code = f"python3 - <<'__TUTORIAL_PY__'\n{code}\n__TUTORIAL_PY__"
        if set(block.features) & pending:
            lines += ["set +e", f"( set -e -o pipefail\n{code}\n)", "rc=$?", "set -e",
                      f"printf '\\n{MARK}-rc {number} %s@@\\n' \"$rc\""]  # fmt: skip
        else:
            lines.append(code)
    lines.append(f"printf '\\n{END}\\n'")
    return "\n".join(lines) + "\n"


def _split(text: str) -> tuple[dict[int, str], dict[int, int]]:
    parts: dict[int, str] = {}
    codes: dict[int, int] = {}
    current: int | None = None
    buffer: list[str] = []
    for line in text.split("\n"):
        rc = re.fullmatch(re.escape(MARK) + r"-rc (\d+) (\d+)@@", line)
        if rc:
            codes[int(rc.group(1))] = int(rc.group(2))
            continue
        mark = re.fullmatch(re.escape(MARK) + r" (\d+)@@", line)
        if mark or line == END:
            if current is not None:
                parts[current] = "\n".join(buffer)
            current = int(mark.group(1)) if mark else None
            buffer = []
            continue
        if current is not None:
            buffer.append(line)
    if current is not None:
        parts[current] = "\n".join(buffer)
    return parts, codes


def prepare_checkout(source: Path, dest: Path, ports: Mapping[str, int]) -> Path:
    """Copy `tutorials/` under `dest`, with default ports in configs rewritten."""
    shutil.copytree(source, dest / "tutorials", ignore=shutil.ignore_patterns("__pycache__"))
    for config in (dest / "tutorials").rglob("*.toml"):
        text = config.read_text(encoding="utf-8")
        for name, default in DEFAULT_PORTS.items():
            for host in ("127.0.0.1", "localhost"):
                text = text.replace(f"{host}:{default}", f"127.0.0.1:{ports[name]}")
        config.write_text(text, encoding="utf-8")
    return dest


def run_tutorial(
    path: Path, *, cwd: Path, env: Mapping[str, str], timeout: float, pending: set[str]
) -> TutorialRun:
    """Run the runnable blocks of `path`; blocks needing a `pending` feature may fail."""
    blocks = [b for b in parse_blocks(path) if b.kind == "runnable"]
    script = script_for(blocks, pending)
    (cwd / ".tutorial.sh").write_text(script, encoding="utf-8")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", ".tutorial.sh"],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: background jobs go with it
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        out, err = proc.communicate()
    finally:
        _kill_group(proc.pid)
    seconds = time.monotonic() - started
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    outs, codes = _split(stdout)
    errs, _ = _split(stderr)
    finished = END in stdout
    results = []
    last = max(outs) if outs else -1
    for number, block in enumerate(blocks):
        result = BlockResult(block, stdout=outs.get(number, ""), stderr=errs.get(number, ""))
        if number in outs:
            result.ran = True
            if set(block.features) & pending:
                result.returncode = codes.get(number, proc.returncode or 1)
            else:
                failed_here = number == last and not finished
                result.returncode = (proc.returncode or 1) if failed_here else 0
        results.append(result)
    return TutorialRun(path.name, results, proc.returncode, stdout, stderr, seconds, timed_out)


def _kill_group(pgid: int) -> None:
    """SIGTERM the session's process group (bash and what it started), then SIGKILL."""
    for sig, pause in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
