"""Gemini generateContent: wire shapes to and from louter's neutral model (design §5).

The dialect's public surface (the contract in `louter.convert.model`), spread over
modules of one responsibility each, where each decision is documented:

    gemini_request    parse_request, emit_request, parse_count_request: roles, system
                      instructions, call/response pairing, tools, toolConfig,
                      generationConfig, thinkingConfig
    gemini_response   parse_response, emit_response, error_body, error_message,
                      emit_count_response, model_entry, model_list: finish reasons, usage
    gemini_stream     StreamParser, StreamEmitter: chunk events, the final chunk, framing
    gemini_parts      Part <-> neutral parts, functionResponse.response <-> ToolResult
    gemini_schema     Gemini schemas (upper-case types, nullable) -> JSON Schema
    gemini_fields     camelCase / snake_case keys, typed reads with error paths

camelCase and snake_case keys are accepted everywhere, as Google's proto-JSON parser does.
"""

from __future__ import annotations

from louter.convert.gemini_request import emit_request, parse_count_request, parse_request
from louter.convert.gemini_response import (
    emit_count_response,
    emit_response,
    error_body,
    error_message,
    model_entry,
    model_list,
    parse_response,
)
from louter.convert.gemini_stream import StreamEmitter, StreamParser

__all__ = [
    "StreamEmitter",
    "StreamParser",
    "emit_count_response",
    "emit_request",
    "emit_response",
    "error_body",
    "error_message",
    "model_entry",
    "model_list",
    "parse_count_request",
    "parse_request",
    "parse_response",
]
