"""`[routing] unknown_models = "reject"`: the stage that answers 404 (in the client's
envelope, at every door) for a model no backend is known to serve. Present only with
`reject`: the default costs nothing."""

from __future__ import annotations

from louter.errors import LouterError
from louter.proxy.pipeline import Call, Stage
from louter.proxy.served import Served


class UnknownModels(Stage):
    def __init__(self, served: Served) -> None:
        self.served = served

    async def on_request(self, call: Call) -> None:
        if await self.served.knows(call.model) is not True:
            raise not_served(call.model)


def not_served(model: str) -> LouterError:
    """The 404 for a model no backend serves (OpenAI's `model_not_found` code)."""
    return LouterError(
        f"model {model[:256]!r} is not served here (GET /v1/models lists the models)",
        status_hint=404,
        code="model_not_found",
    )
