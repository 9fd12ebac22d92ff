"""One session's state: its settings (`KEYS` names -> values) and a one-off target for the
next request. Stored as small JSON in the store; a session with nothing set is not
stored at all (most never are: the lookup then costs one miss)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from louter.convert.commands import KEYS


@dataclass(slots=True)
class Session:
    id: str  # what the client named it (x-session-id), or its key's, or "default"
    key: str  # its store key (scoped by the client's louter key when auth is on)
    settings: dict[str, Any] = field(default_factory=dict)
    oneoff: str | None = None  # "backend:model" for the next request only
    touched: float = 0.0  # wall time of the last save (idle expiry, persistence)
    stored: bool = False  # it was found in (or written to) the store
    changed: bool = False  # to be saved at the end of this request's stage

    def get(self, name: str, default: Any = None) -> Any:
        """A setting's value (`default` when unset)."""
        return self.settings.get(name, default)

    @property
    def empty(self) -> bool:
        return not self.settings and self.oneoff is None

    @property
    def interactive(self) -> bool:
        return self.settings.get("interactive", True) is not False

    def set(self, name: str, value: Any) -> None:
        self.settings[name] = value
        self.changed = True

    def unset(self, name: str) -> bool:
        self.changed = True
        return self.settings.pop(name, None) is not None

    def encode(self) -> bytes:
        data: dict[str, Any] = {"settings": self.settings, "touched": self.touched}
        if self.oneoff is not None:
            data["oneoff"] = self.oneoff
        return orjson.dumps(data)


def decode(session_id: str, key: str, raw: bytes) -> Session:
    """A stored session; what cannot be read (an older or damaged value) is dropped."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Session(session_id, key)
    if not isinstance(data, dict):
        return Session(session_id, key)
    settings = data.get("settings")
    oneoff = data.get("oneoff")
    touched = data.get("touched")
    return Session(
        session_id,
        key,
        {k: v for k, v in settings.items() if k in KEYS} if isinstance(settings, dict) else {},
        oneoff if isinstance(oneoff, str) else None,
        float(touched) if isinstance(touched, int | float) else 0.0,
        stored=True,
    )
