"""What a backend can do, declared once and checked everywhere.

Every store exposes ``capabilities: Capabilities``. Profiles list what the application needs
(``require = ["hybrid", "aliases"]``) and :func:`check_requirements` fails fast when the backend
lacks it; the contract suite derives its skips from the same object, never from backend names.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from strataml.errors import CapabilityError
from strataml.filters import ALL_OPS, Op

__all__ = ["FEATURE_NAMES", "Capabilities", "check_requirements"]


class Capabilities(BaseModel):
    """A backend's declared abilities. Unknown means "no": declare what you have."""

    model_config = ConfigDict(frozen=True)

    filter_ops: frozenset[Op] = Field(default=ALL_OPS, description="filter operators it can run")
    nested_fields: bool = False
    dense: bool = True
    keyword: bool = False  # BM25 / full-text search
    hybrid: bool = False  # dense + keyword in one query (native or fused)
    metrics: frozenset[str] = frozenset({"cosine", "l2", "dot"})
    tenants: bool = False
    aliases: bool = False
    ttl: bool = False
    async_api: bool = False
    transactions: bool = False
    snapshots: bool = False  # TrainingSource: reproducible snapshot ids
    max_batch_rows: int | None = None
    max_batch_bytes: int | None = None
    max_record_bytes: int | None = None
    max_dim: int | None = None

    def supports(self, feature: str) -> bool:
        if feature.startswith("$"):
            return Op(feature) in self.filter_ops
        if feature.startswith("metric:"):
            return feature.split(":", 1)[1] in self.metrics
        value = getattr(self, feature, None)
        if not isinstance(value, bool):
            raise CapabilityError(
                f"unknown capability {feature!r}; known: {', '.join(sorted(FEATURE_NAMES))}"
            )
        return value


FEATURE_NAMES = frozenset(
    name for name, f in Capabilities.model_fields.items() if f.annotation is bool
)


def check_requirements(
    role: str, backend: str, caps: Capabilities, required: Iterable[str]
) -> None:
    """Raise :class:`CapabilityError` naming every required capability ``caps`` lacks."""
    missing = [r for r in required if not caps.supports(r)]
    if missing:
        raise CapabilityError(
            f"[{role}] backend {backend!r} lacks required capabilities: {', '.join(missing)}; "
            "choose a backend that has them or drop them from `require`"
        )
