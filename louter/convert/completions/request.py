"""Completions requests <-> the neutral model, both directions.

A Completions client (`parse_request`)
    The prompt (a string, or a list holding one string) is read as a conversation when it
    is written as louter's transcript (`transcript.read_prompt`: `User: ...` turns ending
    with `Assistant:`), and is otherwise one user message: a chat model answers the prompt
    rather than continuing it word for word. Read: `max_tokens`, `temperature`, `top_p`,
    `stop`, `presence_penalty`, `frequency_penalty`, `stream`,
    `stream_options.include_usage`. Checked but not carried (no neutral field, as for the
    Chat Completions door): `seed`, `user`. Refused with a 400 naming the field, since no
    other API can honour them and a silent drop would change the answer: several prompts
    (a batch: one request each), token-id prompts, `n` or `best_of` other than 1,
    `echo: true`, `logprobs`, a non-empty `suffix` (insertion) and a non-empty
    `logit_bias`. A Completions backend gets the client's body as it is (same dialect),
    so these reach it untouched there.

A Completions backend (`emit_request`)
    The conversation is rendered as ONE prompt, the plain transcript of `transcript`, with
    `\\nUser:` added to the stop sequences. Tools are refused with a 400 (as are tool calls,
    tool results and images, by the rendering). `max_tokens` is sent only when set (the
    API's own default applies otherwise: 16 tokens for OpenAI and vLLM, unlimited for
    llama-server; a backend's `max_tokens` in the config sets one). Dropped, and noted in
    the log (`wire.DROPS`): `top_k`, `response_format`, reasoning settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from louter.convert.completions.transcript import STOPS, read_prompt, render_prompt
from louter.convert.fields import bad_request, option
from louter.convert.model import Message, Request, Text

__all__ = ["emit_request", "parse_request"]

# --------------------------------------------------------------------------- a client


def parse_request(body: Mapping[str, Any]) -> Request:
    """A Completions request body -> `Request`. ConversionError (400) on bad input or a
    setting no other API can honour (see the module docstring)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("", "'model' is required and must be a non-empty string")
    for key, refuse in _REFUSALS.items():
        problem = refuse(body.get(key))
        if problem:
            raise bad_request(key, problem)
    option(body, "seed", "an integer")
    option(body, "user", "a string")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, Mapping):
        raise bad_request("stream_options", "must be an object")
    prompt = _prompt(body.get("prompt"))
    messages = read_prompt(prompt)
    stop = _stop(body.get("stop"))
    if messages is None:
        messages = (Message("user", (Text(prompt),)),)
    else:  # a transcript: its own stop sequence goes with the rendering, not the request
        stop = tuple(s for s in stop if s not in STOPS)
    return Request(
        model=model,
        messages=messages,
        max_tokens=_max_tokens(body),
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        presence_penalty=_number(body, "presence_penalty"),
        frequency_penalty=_number(body, "frequency_penalty"),
        stop=stop,
        stream=bool(option(body, "stream", "a boolean")),
        include_usage=bool(options and options.get("include_usage") is True),
    )


def _prompt(prompt: Any) -> str:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise bad_request("prompt", "must not be empty")
        return prompt
    if prompt is None:
        raise bad_request("prompt", "is required")
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        raise bad_request(
            "prompt",
            f"holds {len(prompt)} prompts: a batch is not supported, send one request per prompt",
        )
    if isinstance(prompt, list) and prompt and all(isinstance(p, int | list) for p in prompt):
        raise bad_request("prompt", "token ids are not supported: send the prompt as text")
    raise bad_request("prompt", "must be a string or a list holding one string")


def _only_one(name: str) -> Callable[[Any], str | None]:
    def refuse(value: Any) -> str | None:
        if value is None or (value == 1 and not isinstance(value, bool)):
            return None
        return f"only 1 is supported ({name} answers need one request each)"

    return refuse


def _echo(value: Any) -> str | None:
    if value is None or value is False:
        return None
    return "is not supported: an answer through louter's neutral model cannot echo the prompt"


def _logprobs(value: Any) -> str | None:
    if value is None or value is False:
        return None
    return "is not supported: an answer through louter's neutral model has no log probabilities"


def _suffix(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return "is not supported: insertion has no form in louter's neutral model"


def _logit_bias(value: Any) -> str | None:
    if value is None or value == {}:
        return None
    return "is not supported: token biases have no form in louter's neutral model"


_REFUSALS: dict[str, Callable[[Any], str | None]] = {
    "n": _only_one("several"),
    "best_of": _only_one("best-of"),
    "echo": _echo,
    "logprobs": _logprobs,
    "suffix": _suffix,
    "logit_bias": _logit_bias,
}


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    value: int | None = option(body, "max_tokens", "an integer")
    if value is not None and value < 1:
        raise bad_request("max_tokens", "must be a positive integer")
    return value


def _number(body: Mapping[str, Any], key: str) -> float | None:
    value = option(body, key, "a number")
    return None if value is None else float(value)


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return tuple(stop)
    raise bad_request("stop", "must be a string or a list of strings")


# --------------------------------------------------------------------------- a backend


def emit_request(request: Request, model: str) -> dict[str, Any]:
    """`Request` -> a Completions body: the conversation as one transcript prompt.
    ConversionError (400) for tools, tool calls or results, and images."""
    if request.tools:
        names = ", ".join(tool.name for tool in request.tools)
        raise bad_request("", f"a completions backend takes no tools (the request offers {names})")
    body: dict[str, Any] = {"model": model, "prompt": render_prompt(request.messages)}
    _set(body, "max_tokens", request.max_tokens)
    _set(body, "temperature", request.temperature)
    _set(body, "top_p", request.top_p)
    _set(body, "presence_penalty", request.presence_penalty)
    _set(body, "frequency_penalty", request.frequency_penalty)
    body["stop"] = list(dict.fromkeys((*STOPS, *request.stop)))
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value
