"""`louter.config`: strict parsing, exact error messages, key lookup, presets, the example."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import tomlkit

from louter.access import AUTH_KEYS, KEY_FIELDS
from louter.config import (
    BACKEND_KEYS,
    CACHE_KEYS,
    LOOP_DETECTION_KEYS,
    PERFORMANCE_KEYS,
    PRESETS,
    RATE_KEYS,
    SERVER_KEYS,
    SESSION_KEYS,
    STORE_KEYS,
    TOOL_CALL_LOOP_KEYS,
    TOP_KEYS,
    USAGE_KEYS,
    Backend,
    Config,
    Performance,
    Server,
    load_config,
    normalise_url,
    parse_config,
)
from louter.errors import ConfigError
from louter.processor_config import KINDS

EXAMPLE = Path(__file__).resolve().parents[1] / "config.toml.example"


def parse(text: str, env: dict[str, str] | None = None) -> Config:
    return parse_config(text, path="cfg.toml", env=env or {})


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return info.value.message


# --------------------------------------------------------------------------- unknown keys


def test_unknown_top_level_key() -> None:
    text = 'colour = "blue"\n'
    assert error_of(text) == (
        "cfg.toml: top level key 'colour': unknown key "
        f"(allowed: {', '.join(sorted(TOP_KEYS))}) (line 1)"
    )


def test_unknown_top_level_table_names_its_header_line() -> None:
    text = "[server]\nport = 1\n\n[serverz]\nport = 2\n"
    assert error_of(text) == (
        "cfg.toml: top level key 'serverz': unknown key "
        f"(allowed: {', '.join(sorted(TOP_KEYS))}) (line 4)"
    )


def test_unknown_key_in_server() -> None:
    text = '[server]\nhost = "0.0.0.0"\n\n# a comment\nprot = 8080\n'
    assert error_of(text) == (
        "cfg.toml: [server] key 'prot': unknown key (allowed: drain_seconds, "
        "header_timeout_seconds, host, idle_timeout_seconds, max_connections, port, "
        "request_timeout_seconds) (line 5)"
    )


def test_server_limits_are_parsed_and_checked() -> None:
    text = (
        "[server]\nheader_timeout_seconds = 2\nrequest_timeout_seconds = 30.5\n"
        "idle_timeout_seconds = 5\nmax_connections = 100\n"
    )
    server = parse_config(text, path="cfg.toml", env={}).server
    assert server.header_timeout_seconds == 2.0
    assert isinstance(server.header_timeout_seconds, float)
    assert server.request_timeout_seconds == 30.5
    assert server.idle_timeout_seconds == 5.0
    assert server.max_connections == 100
    assert parse_config("", path="cfg.toml", env={}).server.max_connections is None
    assert error_of("[server]\nmax_connections = 0\n") == (
        "cfg.toml: [server] key 'max_connections': must be greater than 0, got 0 (line 2)"
    )
    assert error_of("[server]\nheader_timeout_seconds = -1\n") == (
        "cfg.toml: [server] key 'header_timeout_seconds': must be greater than 0, got -1 (line 2)"
    )


def test_unknown_key_in_performance() -> None:
    text = "[server]\nport = 1\n[performance]\ntimeout_seconds = 5\nretries = 3\n"
    message = error_of(text)
    assert message.startswith("cfg.toml: [performance] key 'retries': unknown key (allowed: ")
    assert message.endswith("(line 5)")
    for key in PERFORMANCE_KEYS:
        assert key in message


def test_unknown_key_in_backend() -> None:
    text = (
        '[backends.mock]\nprotocol = "mock"\n\n'
        '[backends.qwen]\nurl = "http://localhost:1"\n  temprature = 0.5\n'
    )
    message = error_of(text)
    assert message.startswith("cfg.toml: [backends.qwen] key 'temprature': unknown key (allowed: ")
    assert message.endswith("(line 6)")
    for key in BACKEND_KEYS:
        assert key in message


def test_unknown_key_same_name_in_other_table_picks_the_right_line() -> None:
    # The locator must search the table named in the error, not the first table with keys.
    text = '[backends.a]\nurl = "http://a"\n[backends.b]\nurl = "http://b"\nurl2 = "http://c"\n'
    assert error_of(text).endswith(
        f"[backends.b] key 'url2': unknown key (allowed: {', '.join(sorted(BACKEND_KEYS))})"
        " (line 5)"
    )


def test_unknown_sub_table_in_backend_names_its_header_line() -> None:
    text = '[backends.q]\nurl = "http://q"\n\n[backends.q.extras]\nx = 1\n'
    message = error_of(text)
    assert message.startswith("cfg.toml: [backends.q] key 'extras': unknown key")
    assert message.endswith("(line 4)")


def test_quoted_backend_name_and_key_are_located() -> None:
    text = '[backends."my box"]\nurl = "http://q"\n"oops" = 1\n'
    message = error_of(text)
    assert message.startswith("cfg.toml: [backends.my box] key 'oops': unknown key")
    assert message.endswith("(line 3)")


def test_backend_must_be_a_table() -> None:
    text = '[backends]\nqwen = "http://localhost"\n'
    assert error_of(text) == "cfg.toml: [backends] key 'qwen': must be a table (line 2)"


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[server]\nport = "8080"\n',
            "cfg.toml: [server] key 'port': must be an integer, got '8080' (line 2)",
        ),
        (
            "[server]\nport = true\n",
            "cfg.toml: [server] key 'port': must be an integer, got True (line 2)",
        ),
        (
            "[server]\nport = 80.5\n",
            "cfg.toml: [server] key 'port': must be an integer, got 80.5 (line 2)",
        ),
        (
            "[server]\nhost = 127\n",
            "cfg.toml: [server] key 'host': must be a string, got 127 (line 2)",
        ),
        (
            "[performance]\nenable_metrics = 1.0\n",
            "cfg.toml: [performance] key 'enable_metrics': must be true or false, got 1.0 (line 2)",
        ),
        (
            '[performance]\nlog_requests = "yes"\n',
            "cfg.toml: [performance] key 'log_requests': must be true or false, got 'yes' (line 2)",
        ),
        (
            '[performance]\ntimeout_seconds = "30"\n',
            "cfg.toml: [performance] key 'timeout_seconds': must be a number, got '30' (line 2)",
        ),
        (
            "[performance]\nconnect_timeout_seconds = false\n",
            "cfg.toml: [performance] key 'connect_timeout_seconds': must be a number, "
            "got False (line 2)",
        ),
        (
            '[backends.q]\nurl = "http://q"\nmax_tokens = "4096"\n',
            "cfg.toml: [backends.q] key 'max_tokens': must be an integer, got '4096' (line 3)",
        ),
        (
            '[backends.q]\nurl = "http://q"\nmax_tokens = true\n',
            "cfg.toml: [backends.q] key 'max_tokens': must be an integer, got True (line 3)",
        ),
        (
            '[backends.q]\nurl = "http://q"\npriority = 1.5\n',
            "cfg.toml: [backends.q] key 'priority': must be an integer, got 1.5 (line 3)",
        ),
        (
            '[backends.q]\nurl = "http://q"\ntemperature = "hot"\n',
            "cfg.toml: [backends.q] key 'temperature': must be a number, got 'hot' (line 3)",
        ),
        (
            '[backends.q]\nurl = "http://q"\nweight = true\n',
            "cfg.toml: [backends.q] key 'weight': must be a number, got True (line 3)",
        ),
        (
            "[backends.q]\nurl = 8080\n",
            "cfg.toml: [backends.q] key 'url': must be a string, got 8080 (line 2)",
        ),
        (
            '[backends.q]\nurl = "http://q"\napi_key = 12\n',
            "cfg.toml: [backends.q] key 'api_key': must be a string, got 12 (line 3)",
        ),
        (
            '[backends.q]\nurl = "http://q"\nmodel_mapping = "a=b"\n',
            "cfg.toml: [backends.q] key 'model_mapping': must be a table, got 'a=b' (line 3)",
        ),
        ("server = 1\n", "cfg.toml: top level key 'server': must be a table, got 1 (line 1)"),
    ],
)
def test_wrong_types(text: str, expected: str) -> None:
    assert error_of(text) == expected


def test_model_mapping_value_must_be_a_string() -> None:
    text = (
        '[backends.q]\nurl = "http://q"\n\n'
        '[backends.q.model_mapping]\n"qwen" = "Qwen3"\n"other" = 3\n'
    )
    assert error_of(text) == (
        "cfg.toml: [backends.q.model_mapping] key 'other': "
        "must map to a string model name, got 3 (line 6)"
    )


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "ftp://files.example.com",
            "must be an http:// or https:// URL, got 'ftp://files.example.com'",
        ),
        ("http://", "must be an http:// or https:// URL, got 'http://'"),
        ("http:///v1", "must be an http:// or https:// URL, got 'http:///v1'"),
        ("localhost:8080", "must be an http:// or https:// URL, got 'localhost:8080'"),
        ("", "must be an http:// or https:// URL, got ''"),
        ("http://localhost:99999", "has an invalid port: 'http://localhost:99999'"),
        ("http://localhost:eighty", "has an invalid port: 'http://localhost:eighty'"),
    ],
)
def test_bad_urls(url: str, problem: str) -> None:
    text = f'[backends.q]\nprotocol = "openai"\nurl = "{url}"\n'
    assert error_of(text) == f"cfg.toml: [backends.q] key 'url': {problem} (line 3)"


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("http://localhost:11212", "http://localhost:11212"),
        ("http://localhost:11212/", "http://localhost:11212"),
        ("http://localhost:11212/v1", "http://localhost:11212"),
        ("http://localhost:11212/v1/", "http://localhost:11212"),
        ("https://example.com/openai/v1/", "https://example.com/openai"),
        ("https://example.com/v1beta", "https://example.com"),
        ("https://example.com/v1beta/", "https://example.com"),
    ],
)
def test_url_normalisation(url: str, normalised: str) -> None:
    config = parse(f'[backends.q]\nurl = "{url}"\n')
    assert config.backend("q").url == normalised
    assert normalise_url(url) == normalised


def test_missing_url_for_openai_protocol() -> None:
    text = '[backends.q]\nprotocol = "openai"\nmax_tokens = 10\n'
    assert error_of(text) == "cfg.toml: [backends.q] key 'url': is required for protocol 'openai'"


def test_missing_url_defaults_to_openai_protocol() -> None:
    text = "[backends.q]\nmax_tokens = 10\n"
    assert error_of(text) == "cfg.toml: [backends.q] key 'url': is required for protocol 'openai'"


def test_mock_needs_no_url_and_ignores_one() -> None:
    config = parse('[backends.m]\nprotocol = "mock"\nurl = "http://ignored"\n')
    assert config.backend("m").url == ""
    assert config.backend("m").protocol == "mock"


# --------------------------------------------------------------------------- choices


@pytest.mark.parametrize(
    ("table", "line", "allowed"),
    [
        (
            '[backends.q]\nurl = "http://q"\nprotocol = "grpc"\n',
            "protocol",
            "openai, gemini, anthropic, responses, completions, mock, got 'grpc'",
        ),
        (
            '[backends.q]\nurl = "http://q"\ntool_format = "yaml"\n',
            "tool_format",
            "json, xml, got 'yaml'",
        ),
        (
            '[backends.q]\nurl = "http://q"\nmax_tokens_field = "max_output_tokens"\n',
            "max_tokens_field",
            "max_tokens, max_completion_tokens, got 'max_output_tokens'",
        ),
        (
            '[performance]\nenable_metrics = true\nopenai_token_counting_mode = "exact"\n',
            "openai_token_counting_mode",
            "estimate, backend, got 'exact'",
        ),
    ],
)
def test_bad_choices(table: str, line: str, allowed: str) -> None:
    name = "backends.q" if "backends" in table else "performance"
    assert error_of(table) == f"cfg.toml: [{name}] key '{line}': must be one of {allowed} (line 3)"


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[performance]\ntimeout_seconds = 0\n",
            "cfg.toml: [performance] key 'timeout_seconds': must be greater than 0, got 0 (line 2)",
        ),
        (
            "[performance]\ntimeout_seconds = -1.5\n",
            "cfg.toml: [performance] key 'timeout_seconds': must be greater than 0, "
            "got -1.5 (line 2)",
        ),
        (
            "[performance]\nconnect_timeout_seconds = 0.0\n",
            "cfg.toml: [performance] key 'connect_timeout_seconds': must be greater than 0, "
            "got 0.0 (line 2)",
        ),
        (
            '[backends.q]\nurl = "http://q"\nweight = 0\n',
            "cfg.toml: [backends.q] key 'weight': must be greater than 0, got 0 (line 3)",
        ),
        (
            '[backends.q]\nurl = "http://q"\nweight = -2.0\n',
            "cfg.toml: [backends.q] key 'weight': must be greater than 0, got -2.0 (line 3)",
        ),
        (
            '[backends.q]\nurl = "http://q"\nmax_tokens = 0\n',
            "cfg.toml: [backends.q] key 'max_tokens': must be greater than 0, got 0 (line 3)",
        ),
        (
            '[backends.q]\nurl = "http://q"\nmax_tokens = -100\n',
            "cfg.toml: [backends.q] key 'max_tokens': must be greater than 0, got -100 (line 3)",
        ),
        (
            "[server]\nport = 65536\n",
            "cfg.toml: [server] key 'port': must be between 0 and 65535, got 65536 (line 2)",
        ),
        (
            "[server]\nport = -1\n",
            "cfg.toml: [server] key 'port': must be between 0 and 65535, got -1 (line 2)",
        ),
    ],
)
def test_out_of_range(text: str, expected: str) -> None:
    assert error_of(text) == expected


def test_numbers_become_floats() -> None:
    config = parse(
        "[performance]\ntimeout_seconds = 5\nconnect_timeout_seconds = 2\n"
        '[backends.q]\nurl = "http://q"\ntemperature = 1\nweight = 3\n'
    )
    assert config.performance.timeout_seconds == 5.0
    assert isinstance(config.performance.timeout_seconds, float)
    assert isinstance(config.performance.connect_timeout_seconds, float)
    assert isinstance(config.backend("q").temperature, float)
    assert isinstance(config.backend("q").weight, float)


# --------------------------------------------------------------------------- invalid TOML


@pytest.mark.parametrize(
    "text",
    [
        "[server\nport = 1\n",
        "port = \n",
        "[server]\nport = 1\nport = 2\n",
        "[server]\n[server]\n",
        "[a]\nb.c = 1\n[a.b]\nd = 1\n",  # table redefinition: not a ParseError in tomlkit
        'x = "unterminated\n',
    ],
)
def test_invalid_toml(text: str) -> None:
    message = error_of(text)
    assert message.startswith("cfg.toml: invalid TOML: ")
    assert len(message) > len("cfg.toml: invalid TOML: ")


def test_invalid_toml_message_has_the_line() -> None:
    assert "line 3" in error_of("[server]\nport = 1\nhost = \n")


# --------------------------------------------------------------------------- files


def test_missing_file_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, {})
    assert info.value.message == f"{missing}: config file not found"


def test_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert info.value.message.startswith(f"{tmp_path}: cannot read config file: ")


def test_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nhost = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.message.startswith(f"{path}: cannot read config file: ")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "louter.toml"
    path.write_text("[server]\nport = 1\nbad = 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.message == (
        f"{path}: [server] key 'bad': unknown key (allowed: drain_seconds, "
        "header_timeout_seconds, host, idle_timeout_seconds, max_connections, port, "
        "request_timeout_seconds) (line 3)"
    )


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "louter.toml"
    path.write_text('[server]\nport = 9000\n[backends.q]\nurl = "http://q/v1"\n')
    config = load_config(path, {})
    assert config.source == str(path)
    assert config.server == Server(host="127.0.0.1", port=9000)
    assert [b.name for b in config.backends] == ["q", *PRESET_NAMES]


PRESET_NAMES = ["mock", "openai", "gemini", "anthropic", "openrouter"]


def test_empty_file_gives_defaults_and_presets() -> None:
    config = parse("")
    assert config.server == Server()
    assert config.performance == Performance()
    assert [b.name for b in config.backends] == PRESET_NAMES
    assert config.source == "cfg.toml"


# --------------------------------------------------------------------------- API keys


def test_api_key_beats_api_key_env_and_protocol_variable() -> None:
    env = {"MY_KEY": "from-my-env", "OPENAI_API_KEY": "from-openai-env"}
    backend = parse(
        '[backends.q]\nurl = "http://q"\napi_key = "literal"\napi_key_env = "MY_KEY"\n', env
    ).backend("q")
    assert backend.api_key == "literal"
    assert backend.key_env is None


def test_api_key_env_beats_protocol_variable() -> None:
    env = {"MY_KEY": "from-my-env", "OPENAI_API_KEY": "from-openai-env"}
    backend = parse('[backends.q]\nurl = "http://q"\napi_key_env = "MY_KEY"\n', env).backend("q")
    assert backend.api_key == "from-my-env"
    assert backend.key_env == "MY_KEY"


def test_protocol_variable_is_the_last_resort() -> None:
    env = {"OPENAI_API_KEY": "from-openai-env"}
    backend = parse('[backends.q]\nurl = "http://q"\n', env).backend("q")
    assert backend.api_key == "from-openai-env"
    assert backend.key_env == "OPENAI_API_KEY"


def test_unset_api_key_env_does_not_fall_back() -> None:
    env = {"OPENAI_API_KEY": "from-openai-env"}
    backend = parse('[backends.q]\nurl = "http://q"\napi_key_env = "NOT_SET"\n', env).backend("q")
    assert backend.api_key is None
    assert backend.key_env == "NOT_SET"


def test_no_key_anywhere() -> None:
    backend = parse('[backends.q]\nurl = "http://q"\n').backend("q")
    assert backend.api_key is None
    assert backend.key_env == "OPENAI_API_KEY"


def test_mock_has_no_key_variable() -> None:
    backend = parse('[backends.m]\nprotocol = "mock"\n', {"OPENAI_API_KEY": "x"}).backend("m")
    assert backend.api_key is None
    assert backend.key_env is None


def test_env_is_the_mapping_passed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "process-env")
    assert parse('[backends.q]\nurl = "http://q"\n', {}).backend("q").api_key is None


# --------------------------------------------------------------------------- presets


def test_presets_without_config() -> None:
    config = load_config(None, {"OPENAI_API_KEY": "sk-env"})
    assert config.source is None
    assert config.server == Server()
    assert config.performance == Performance()
    assert [b.name for b in config.backends] == list(PRESETS)
    mock = config.backend("mock")
    assert mock.protocol == "mock"
    assert mock.url == ""
    openai = config.backend("openai")
    assert openai.protocol == "openai"
    assert openai.url == "https://api.openai.com"
    assert openai.api_key == "sk-env"
    assert openai.key_env == "OPENAI_API_KEY"


def test_config_entry_overrides_openai_preset() -> None:
    config = parse(
        '[backends.openai]\nurl = "https://proxy.example.com/v1"\napi_key_env = "CORP_KEY"\n'
        'max_tokens_field = "max_completion_tokens"\n',
        {"CORP_KEY": "corp", "OPENAI_API_KEY": "plain"},
    )
    assert [b.name for b in config.backends] == ["openai", "mock", *PRESET_NAMES[2:]]
    openai = config.backend("openai")
    assert openai.url == "https://proxy.example.com"
    assert openai.api_key == "corp"
    assert openai.max_tokens_field == "max_completion_tokens"


def test_partial_override_keeps_preset_values() -> None:
    config = parse("[backends.openai]\nmax_tokens = 100\n", {"OPENAI_API_KEY": "k"})
    openai = config.backend("openai")
    assert openai.url == "https://api.openai.com"
    assert openai.protocol == "openai"
    assert openai.max_tokens == 100
    assert openai.api_key == "k"
    assert len([b for b in config.backends if b.name == "openai"]) == 1


def test_config_entry_overrides_mock_preset() -> None:
    config = parse('[backends.mock]\ntool_format = "xml"\n')
    assert config.backend("mock").tool_format == "xml"
    assert config.backend("mock").protocol == "mock"
    assert [b.name for b in config.backends] == PRESET_NAMES


def test_unknown_backend_lists_known_ones() -> None:
    config = parse('[backends.qwen]\nurl = "http://q"\n')
    with pytest.raises(ConfigError) as info:
        config.backend("nosuch")
    assert info.value.message == "unknown backend 'nosuch'; known backends: qwen, " + ", ".join(
        PRESET_NAMES
    )


# --------------------------------------------------------------------------- the objects


def test_full_backend() -> None:
    config = parse(
        '[backends.qwen]\nurl = "http://localhost:11212/v1/"\nprotocol = "openai"\n'
        'api_key = "k"\ntool_format = "xml"\nmax_tokens = 4096\ntemperature = 0.7\n'
        'weight = 2\npriority = 5\nmax_tokens_field = "max_completion_tokens"\n'
        '[backends.qwen.model_mapping]\n"qwen3-coder" = "Qwen3-Coder-30B-A3B-Instruct"\n'
    )
    qwen = config.backend("qwen")
    assert qwen == Backend(
        name="qwen",
        protocol="openai",
        url="http://localhost:11212",
        api_key="k",
        key_env=None,
        tool_format="xml",
        max_tokens=4096,
        temperature=0.7,
        weight=2.0,
        priority=5,
        max_tokens_field="max_completion_tokens",
        model_mapping=qwen.model_mapping,
    )
    assert dict(qwen.model_mapping) == {"qwen3-coder": "Qwen3-Coder-30B-A3B-Instruct"}
    assert qwen.backend_model("qwen3-coder") == "Qwen3-Coder-30B-A3B-Instruct"
    assert qwen.backend_model("other") == "other"


def test_objects_are_frozen() -> None:
    config = parse('[backends.q]\nurl = "http://q"\n[backends.q.model_mapping]\na = "b"\n')
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server = Server()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.performance.timeout_seconds = 1.0  # type: ignore[misc]
    backend = config.backend("q")
    with pytest.raises(dataclasses.FrozenInstanceError):
        backend.url = "http://elsewhere"  # type: ignore[misc]
    with pytest.raises(TypeError):
        backend.model_mapping["a"] = "c"  # type: ignore[index]
    with pytest.raises(AttributeError):
        config.backends.append(backend)  # type: ignore[attr-defined]
    assert isinstance(config.backends, tuple)


def test_presets_are_read_only() -> None:
    with pytest.raises(TypeError):
        PRESETS["evil"] = {"protocol": "mock"}  # type: ignore[index]


# --------------------------------------------------------------------------- the example


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE, {"OPENAI_API_KEY": "sk-test", "GPT_OSS_KEY": "oss"})
    names = [b.name for b in config.backends]
    assert names[:4] == ["qwen", "gpt-oss", "openai", "mock"]
    assert len(names) == len(set(names))
    qwen = config.backend("qwen")
    assert qwen.tool_format == "xml"
    assert qwen.url == "http://localhost:11212"
    assert "Qwen3-Coder" in qwen.backend_model("qwen3-coder")
    assert config.backend("gpt-oss").api_key == "oss"
    assert config.backend("openai").api_key == "sk-test"
    assert config.backend("mock").protocol == "mock"


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    document = tomlkit.parse(text).unwrap()
    for key in USAGE_KEYS:
        assert f"\n# {key} = " in text and f"#   {key} " in text, key
    for key in ("budget_usd", "budget_period"):
        assert f"#   {key} " in text, key
    commented = {
        "store",
        "limits",
        "models",
        "catalog",
        "routing",
        "condense",
        "cache",
        "processors",
        "usage",
        "loop_detection",
        "tool_call_loop",
    }
    assert set(document) == set(TOP_KEYS) - commented  # commented out in the example
    for key in CACHE_KEYS:
        assert f"\n# {key} = " in text, key
    for kind in KINDS:
        assert f'# kind = "{kind}"' in text, kind
    for key in (*LOOP_DETECTION_KEYS, *TOOL_CALL_LOOP_KEYS):
        assert f"\n# {key} = " in text and f"#   {key} " in text, key
    for key in STORE_KEYS:
        assert f"\n# {key} = " in text and f"#   {key} " in text, key
    for key in ("queue_timeout_seconds", "default_output_tokens", *RATE_KEYS):
        assert f"#   {key} " in text, key
    assert set(document["server"]) == set(SERVER_KEYS)
    assert set(document["performance"]) == set(PERFORMANCE_KEYS)
    used: set[str] = set()
    for table in document["backends"].values():
        used |= set(table)
    assert used == set(BACKEND_KEYS)
    assert any(t.get("model_mapping") for t in document["backends"].values())
    assert set(document["auth"]) == set(AUTH_KEYS)
    assert set(document["session"]) == set(SESSION_KEYS) - {"file_path"}
    assert "# file_path = " in text and "#   file_path " in text
    fields = {name for table in document["keys"].values() for name in table}
    assert fields == set(KEY_FIELDS) - {"key_env"}  # commented: it needs its variable set
    assert "key_env" in EXAMPLE.read_text(encoding="utf-8")


def test_example_config_comments_every_key() -> None:
    """Each key's first use carries a comment, on its line or in the block above it."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in (*SERVER_KEYS, *PERFORMANCE_KEYS, *BACKEND_KEYS):
        assert f"#   {key} " in text or f"# {key}" in text or _commented_assignment(text, key), key


def _commented_assignment(text: str, key: str) -> bool:
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.split("=")[0].strip() == key:
            return "#" in line or lines[number - 1].lstrip().startswith("#")
    return False


def test_example_mentions_lookup_order_and_presets() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for needle in (
        "api_key",
        "api_key_env",
        "OPENAI_API_KEY",
        "preset",
        "overrides",
        '"openai" | "gemini" | "anthropic" | "responses" | "completions" | "mock"',
        "GEMINI_API_KEY",
        "ANTHROPIC_API_KEY",
        "mock",
        "openai",
    ):
        assert needle in text, needle
