"""`xml-tool-parse`: options and exit codes through CliRunner, and real processes (module,
`bin/` wrapper, installed script) piped into `jq`.

`jq` must be on PATH for the pipe tests (`apt-get install -y jq`; `.ci/run` installs it
when missing); without it they fail, they are never skipped.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from louter.cli.xml_tool_parse import app, read_pieces
from louter.mock.engine import render_xml_call

REPO = Path(__file__).resolve().parents[2]
SEED = "<tool_call><function=test><parameter=x>5\n</parameter></function></tool_call>\n"
TWO = (
    "Checking.\n"
    + render_xml_call("read", {"path": "a.py", "count": 2})
    + "\nand\n"
    + render_xml_call("grep", {"pattern": "<div>"})
    + "\nDone."
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "count": {"type": "string"}},
            },
        },
    },
    {"type": "function", "function": {"name": "grep", "parameters": {}}},
]


def invoke(args: list[str], stdin: str | bytes = "") -> Any:
    return CliRunner().invoke(app, args, input=stdin)


def calls(result: Any) -> Any:
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- CliRunner


def test_seed_example() -> None:
    result = invoke([], SEED)
    assert result.exit_code == 0, result.stderr
    assert calls(result) == [
        {"id": "call_0", "type": "function", "function": {"name": "test", "arguments": '{"x":5}'}}
    ]
    assert result.stderr == ""


def test_openai_format_is_the_default_and_ids_are_sequential() -> None:
    result = invoke(["--format", "openai"], TWO)
    assert result.exit_code == 0
    parsed = calls(result)
    assert [c["id"] for c in parsed] == ["call_0", "call_1"]
    assert [json.loads(c["function"]["arguments"]) for c in parsed] == [
        {"path": "a.py", "count": 2},
        {"pattern": "<div>"},
    ]


def test_gemini_format() -> None:
    result = invoke(["--format", "gemini"], TWO)
    assert calls(result) == [
        {"functionCall": {"name": "read", "args": {"path": "a.py", "count": 2}}},
        {"functionCall": {"name": "grep", "args": {"pattern": "<div>"}}},
    ]


def test_anthropic_format() -> None:
    result = invoke(["-f", "anthropic"], TWO)
    assert calls(result) == [
        {"type": "tool_use", "id": "call_0", "name": "read", "input": {"path": "a.py", "count": 2}},
        {"type": "tool_use", "id": "call_1", "name": "grep", "input": {"pattern": "<div>"}},
    ]


def test_responses_format() -> None:
    result = invoke(["-f", "responses"], TWO)
    assert [(c["type"], c["call_id"], c["name"]) for c in calls(result)] == [
        ("function_call", "call_0", "read"),
        ("function_call", "call_1", "grep"),
    ]
    assert json.loads(calls(result)[1]["arguments"]) == {"pattern": "<div>"}


def test_unknown_format_is_a_usage_error() -> None:
    result = invoke(["--format", "yaml"], TWO)
    assert result.exit_code == 2
    assert result.stdout == ""


@pytest.mark.parametrize("shape", ["list", "object", "flat"])
def test_schema_types_the_values(tmp_path: Path, shape: str) -> None:
    tools: Any = {
        "list": TOOLS,
        "object": {"tools": TOOLS},
        "flat": [tool["function"] for tool in TOOLS],
    }[shape]
    schema = tmp_path / "tools.json"
    schema.write_text(json.dumps(tools))
    result = invoke(["--schema", str(schema), "-f", "anthropic"], TWO)
    assert result.exit_code == 0
    assert calls(result)[0]["input"] == {"path": "a.py", "count": "2"}  # "string" in the schema


def test_schema_makes_unknown_names_errors(tmp_path: Path) -> None:
    schema = tmp_path / "tools.json"
    schema.write_text(json.dumps(TOOLS[:1]))
    result = invoke(["--schema", str(schema)], TWO)
    assert result.exit_code == 0
    assert [c["function"]["name"] for c in calls(result)] == ["read"]
    assert result.stderr.startswith("xml-tool-parse: unknown tool 'grep'")


def test_with_text_outputs_text_and_errors() -> None:
    text = "Hi " + render_xml_call("a", {"q": "x"}) + " bye <tool_call>\n<function=b>"
    result = invoke(["--with-text"], text)
    assert result.exit_code == 0
    assert calls(result) == {
        "calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "a", "arguments": '{"q":"x"}'},
            }
        ],
        "text": "Hi  bye ",
        "errors": [
            {
                "kind": "unterminated",
                "message": "tool call not terminated at end of input",
                "raw": "<tool_call>\n<function=b>",
            }
        ],
    }
    assert result.stderr == ""


def test_errors_go_to_stderr_without_with_text() -> None:
    result = invoke([], "<tool_call>\n<function=f>\n<parameter=a>\n1")
    assert result.exit_code == 1
    assert calls(result) == []
    assert result.stderr == (
        "xml-tool-parse: tool call not terminated at end of input (40 characters of raw text)\n"
    )


def test_stream_prints_one_line_per_event() -> None:
    result = invoke(["--stream", "--chunk-size", "3", "-f", "gemini"], TWO)
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) > 4  # text arrives in pieces
    kinds = [line["type"] for line in lines]
    assert kinds.count("tool_call") == 2 and set(kinds) == {"text", "tool_call"}
    assert "".join(line["text"] for line in lines if line["type"] == "text") == (
        "Checking.\n\nand\n\nDone."
    )
    assert lines[kinds.index("tool_call")]["call"] == {
        "functionCall": {"name": "read", "args": {"path": "a.py", "count": 2}}
    }


def test_stream_error_lines_and_exit_1() -> None:
    result = invoke(["--stream"], "x <function=f>\n")
    assert result.exit_code == 1
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"type": "text", "text": "x "},
        {
            "type": "error",
            "kind": "unterminated",
            "message": "tool call not terminated at end of input",
            "raw": "<function=f>\n",
        },
    ]


def test_stream_splits_multibyte_characters_safely() -> None:
    text = "é😀 " + render_xml_call("f", {"v": "ü"})
    result = invoke(["--stream", "--chunk-size", "1"], text.encode())
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert "".join(line.get("text", "") for line in lines) == "é😀 "
    assert json.loads(lines[-1]["call"]["function"]["arguments"]) == {"v": "ü"}


@pytest.mark.parametrize("stdin", ["", "just text\n", "<b>bold</b>"])
def test_no_calls_exit_1(stdin: str) -> None:
    result = invoke([], stdin)
    assert result.exit_code == 1
    assert calls(result) == []


def test_file_argument_and_dash(tmp_path: Path) -> None:
    path = tmp_path / "answer.txt"
    path.write_text(SEED)
    assert calls(invoke([str(path)]))[0]["function"]["name"] == "test"
    assert calls(invoke(["-"], SEED))[0]["function"]["name"] == "test"


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = invoke([str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert (
        result.stderr
        == f"xml-tool-parse: cannot read {tmp_path / 'nope.txt'}: No such file or directory\n"
    )


def test_directory_exits_2(tmp_path: Path) -> None:
    result = invoke([str(tmp_path)])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr and result.stdout == ""


def test_invalid_utf8_exits_2() -> None:
    result = invoke([], b"abc \xff\xfe")
    assert result.exit_code == 2
    assert result.stderr.startswith("xml-tool-parse: input is not UTF-8:")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[", "not JSON"),
        ('{"type": "function"}', "expected a list of tools"),
        ("[1]", "tools[0]: expected an object"),
        ('[{"type": "function", "function": {"parameters": {}}}]', "'name' must be"),
        ('[{"name": "f", "parameters": []}]', "'parameters' must be an object"),
    ],
)
def test_bad_schema_exits_2(tmp_path: Path, content: str, message: str) -> None:
    schema = tmp_path / "tools.json"
    schema.write_text(content)
    result = invoke(["--schema", str(schema)], SEED)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"xml-tool-parse: --schema: {schema}: ")
    assert message in result.stderr


def test_missing_schema_exits_2(tmp_path: Path) -> None:
    result = invoke(["--schema", str(tmp_path / "none.json")], SEED)
    assert result.exit_code == 2
    assert "--schema: cannot read" in result.stderr


def test_chunk_size_must_be_positive() -> None:
    assert invoke(["--stream", "--chunk-size", "0"], SEED).exit_code == 2


def test_read_pieces_keeps_multibyte_characters_whole() -> None:
    raw = "aé😀".encode()
    assert list(read_pieces(io.BytesIO(raw), 1)) == ["a", "é", "😀"]
    assert list(read_pieces(io.BytesIO(raw), 0)) == ["aé😀"]
    with pytest.raises(UnicodeDecodeError):
        list(read_pieces(io.BytesIO(raw[:-1]), 1))


# --------------------------------------------------------------------------- real processes

JQ = shutil.which("jq")


def _require_jq() -> None:
    if JQ is None:
        pytest.fail("jq is not installed (apt-get install -y jq)", pytrace=False)


needs_jq = pytest.mark.usefixtures("jq_present")


@pytest.fixture
def jq_present() -> None:
    _require_jq()


def commands() -> dict[str, list[str]]:
    found = {
        "module": [sys.executable, "-m", "louter.cli.xml_tool_parse"],
        "bin": [sys.executable, str(REPO / "bin" / "xml-tool-parse")],
    }
    script = shutil.which("xml-tool-parse", path=str(Path(sys.executable).parent))
    if script:
        found["installed"] = [script]
    return found


def pipe(command: list[str], stdin: str, jq_filter: str) -> tuple[int, str, str]:
    """`command < stdin | jq -c FILTER`: the command's status, jq's stdout, command's stderr."""
    assert JQ is not None
    producer = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    consumer = subprocess.Popen(
        [JQ, "-c", jq_filter], stdin=producer.stdout, stdout=subprocess.PIPE
    )
    assert producer.stdout is not None
    producer.stdout.close()  # jq owns the read end now
    _, err = producer.communicate(stdin.encode(), timeout=60)
    out, _ = consumer.communicate(timeout=60)
    assert consumer.returncode == 0, "jq rejected the output"
    return producer.returncode, out.decode(), err.decode()


@needs_jq
@pytest.mark.parametrize("name", sorted(commands()))
def test_seed_example_piped_into_jq(name: str) -> None:
    status, out, err = pipe(
        commands()[name], SEED, ".[0].function | [.name, (.arguments | fromjson)]"
    )
    assert (status, out, err) == (0, '["test",{"x":5}]\n', "")


@needs_jq
def test_stream_lines_piped_into_jq() -> None:
    command = [*commands()["module"], "--stream", "-f", "anthropic"]
    status, out, _ = pipe(command, TWO, 'select(.type == "tool_call") | .call.name')
    assert (status, out) == (0, '"read"\n"grep"\n')


@needs_jq
def test_no_calls_still_prints_valid_json() -> None:
    status, out, _ = pipe(commands()["module"], "nothing here", "length")
    assert (status, out) == (1, "0\n")


def test_process_bad_input_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [*commands()["bin"], str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("xml-tool-parse: cannot read")
