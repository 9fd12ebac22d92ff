"""`louter.catalog` and its config: `[models."NAME"]`, `[catalog] prices_file` in LiteLLM's
field names, the merge order (config wins field by field) and `Catalog.price`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from louter.catalog import Catalog, ModelInfo, Price, parse_prices
from louter.config import parse_config
from louter.errors import ConfigError
from louter.prices import build_catalog, read_prices

# A slice of LiteLLM's model_prices_and_context_window.json, its field names verbatim.
LITELLM = {
    "sample_spec": {"max_tokens": "LEGACY", "input_cost_per_token": 0.0},
    "gpt-4o": {
        "max_tokens": 16384,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "cache_read_input_token_cost": 1.25e-06,
        "litellm_provider": "openai",
        "mode": "chat",
        "supports_function_calling": True,
        "supports_vision": True,
        "supports_prompt_caching": True,
    },
    "openrouter/qwen/qwen3-coder": {
        "max_tokens": 262144,
        "input_cost_per_token": 2e-07,
        "output_cost_per_token": 8e-07,
        "litellm_provider": "openrouter",
        "mode": "chat",
        "supports_function_calling": True,
    },
    "gemini/gemini-2.0-flash": {
        "max_input_tokens": 1048576,
        "input_cost_per_token": 1e-07,
        "output_cost_per_token": 4e-07,
        "litellm_provider": "gemini",
        "mode": "chat",
        "supports_vision": True,
        "supports_reasoning": False,
    },
    "text-embedding-3-small": {
        "max_input_tokens": 8191,
        "input_cost_per_token": 2e-08,
        "output_cost_per_token": 0.0,
        "litellm_provider": "openai",
        "mode": "embedding",
    },
    "half-priced": {"input_cost_per_token": 1e-06, "litellm_provider": "x"},
}


def config(tmp_path: Path, extra: str = "") -> str:
    (tmp_path / "prices.json").write_bytes(orjson.dumps(LITELLM))
    return f"""
[backends.local]
url = "http://127.0.0.1:1"
[backends.openrouter]
url = "https://openrouter.ai/api"
api_key = "k"
[backends.gem]
url = "http://127.0.0.1:2"
protocol = "gemini"
api_key = "k"
[catalog]
prices_file = "prices.json"
{extra}
"""


def catalog(tmp_path: Path, extra: str = "") -> Catalog:
    text = config(tmp_path, extra)
    return build_catalog(parse_config(text, path=str(tmp_path / "c.toml"), env={}))


def test_prices_file_fields_become_per_million(tmp_path: Path) -> None:
    info = catalog(tmp_path).get("gpt-4o")
    assert info is not None
    assert info.price == Price(2.5, 10.0, 1.25, None)
    assert info.context_length == 128000  # max_input_tokens before max_tokens
    assert info.provider == "openai"
    assert info.capabilities == ("chat", "vision", "tools", "prompt_caching")
    assert info.source == "prices_file"


def test_unknown_model_and_half_price_have_no_price(tmp_path: Path) -> None:
    found = catalog(tmp_path)
    assert found.get("no-such-model") is None
    assert found.price("no-such-model") is None
    assert found.price("half-priced") is None  # an input price alone is not a price
    assert found.price("text-embedding-3-small") == Price(0.02, 0.0, None, None)


def test_backend_prefixes_find_provider_entries(tmp_path: Path) -> None:
    found = catalog(tmp_path)
    assert found.price("qwen/qwen3-coder") is None  # no backend: no prefix tried
    assert found.price("qwen/qwen3-coder", "openrouter") == Price(0.2, 0.8, None, None)
    # a gemini backend: its protocol's prefix, and Gemini's `models/` form of the name
    assert found.price("models/gemini-2.0-flash", "gem") == Price(0.1, 0.4, None, None)
    info = found.get("gemini-2.0-flash", "gem")
    assert info is not None and info.id == "gemini-2.0-flash" and info.backend == "gem"
    assert found.price("GPT-4O") == Price(2.5, 10.0, 1.25, None)  # case-insensitive fallback


def test_config_entry_wins_field_by_field(tmp_path: Path) -> None:
    extra = """
[models."gpt-4o"]
output_cost_per_mtok = 8
context_length = 64000
capabilities = ["chat", "tools"]
[models."my-local"]
name = "Qwen3 Coder (local)"
provider = "llama.cpp"
backend = "local"
input_cost_per_mtok = 0
output_cost_per_mtok = 0
"""
    found = catalog(tmp_path, extra)
    info = found.get("gpt-4o")
    assert info is not None
    assert info.price == Price(2.5, 8.0, 1.25, None)  # input from the file, output from config
    assert info.context_length == 64000
    assert info.capabilities == ("chat", "tools")
    assert info.source == "config"
    local = found.get("my-local")
    assert local == ModelInfo(
        id="my-local",
        name="Qwen3 Coder (local)",
        provider="llama.cpp",
        backend="local",
        input_cost_per_mtok=0.0,
        output_cost_per_mtok=0.0,
    )
    assert found.price("my-local") == Price(0.0, 0.0)  # a real $0, because configured
    assert found.price("my-local", "local") == Price(0.0, 0.0)
    assert found.price("my-local", "openrouter") is None  # pinned to another backend


def test_without_a_prices_file() -> None:
    text = """
[models.m]
input_cost_per_mtok = 1.5
output_cost_per_mtok = 3
"""
    found = build_catalog(parse_config(text, path="c.toml", env={}))
    assert found.price("m") == Price(1.5, 3.0)
    assert found.price("m").cost(1_000_000, 500_000) == pytest.approx(3.0)  # type: ignore[union-attr]
    assert found.price("other") is None


def test_describe_merges_served_models(tmp_path: Path) -> None:
    extra = """
[models."gpt-4o"]
name = "GPT-4o"
[models."only-configured"]
context_length = 1000
"""
    found = catalog(tmp_path, extra)
    served = [
        ModelInfo("gpt-4o", backend="openrouter", context_length=1, source="discovered"),
        ModelInfo("gpt-4o", backend="local", source="discovered"),
    ]
    described = found.describe(served)
    assert [(m.id, m.backend) for m in described] == [
        ("gpt-4o", "local"),
        ("gpt-4o", "openrouter"),
        ("only-configured", None),
    ]
    assert described[0].name == "GPT-4o" and described[0].context_length == 128000
    assert described[1].context_length == 1  # the backend's own list beats the file
    assert described[1].source == "discovered"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[models.m]\nprice = 1", "unknown key"),
        ("[models.m]\ncontext_length = 0", "must be greater than 0"),
        ("[models.m]\ninput_cost_per_mtok = -1", "must be 0 or more"),
        ("[models.m]\ncapabilities = ['chat', 'telepathy']", "unknown 'telepathy'"),
        ("[models.m]\nbackend = 'nope'", "'nope' is not a configured backend"),
        ("[catalog]\ndiscovery_ttl_seconds = 0", "must be greater than 0"),
        ("[routing]\nunknown_models = 'maybe'", "must be one of default, reject"),
        ("[condense]\nmax_tokens = 5", "is required"),
        ("[condense]\nmodel = 'justamodel'", 'must be "backend:model"'),
        ("[condense]\nmodel = 'nope:m'", "'nope' is not a configured backend"),
    ],
)
def test_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, path="c.toml", env={})


def test_condense_and_routing_parse() -> None:
    text = "[routing]\nunknown_models = 'reject'\n[condense]\nmodel = 'mock:gpt-oss:20b'\n"
    parsed = parse_config(text, path="c.toml", env={})
    assert parsed.routing.unknown_models == "reject"
    assert parsed.condense is not None
    assert (parsed.condense.backend, parsed.condense.model) == ("mock", "gpt-oss:20b")


def test_prices_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the prices file"):
        read_prices(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        read_prices(bad)
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not a prices file"):
        read_prices(bad)
    assert parse_prices({"x": "not an object"}) == {}


def test_example_documents_every_catalog_key() -> None:
    from louter.config import CATALOG_KEYS, CONDENSE_KEYS, MODEL_KEYS, ROUTING_KEYS

    text = (Path(__file__).resolve().parents[2] / "config.toml.example").read_text("utf-8")
    for key in (*MODEL_KEYS, *CATALOG_KEYS, *ROUTING_KEYS, *CONDENSE_KEYS):
        assert f"#   {key} " in text and f"# {key} = " in text, key
