"""The entity each hub serves (contract §1), declared once.

The request models (pydantic), the table of schema version 1 and the SQL of the store
are all derived from these declarations, so that the seven hubs share one code path
and differ only in data. A released migration must never change: a later change to a
field needs a new migration in migrations.py, not only an edit here.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
)

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
MAX_CENTS = 10**12


class Kind(enum.Enum):
    """Field types that have both a JSON and a PostgreSQL representation."""

    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class FieldSpec:
    """One client-writable field of an entity."""

    name: str
    kind: Kind
    description: str
    required: bool = True
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    default: str | int | bool | None = None

    @property
    def nullable(self) -> bool:
        """Optional fields without a default may be null; the others never are."""
        return not self.required and self.default is None


@dataclass(frozen=True)
class EntitySpec:
    """The entity of one hub: its URL segment and table (plural) and event noun."""

    hub: str
    plural: str
    singular: str
    fields: tuple[FieldSpec, ...]

    @property
    def collection_path(self) -> str:
        return f"/api/v1/{self.plural}"

    @property
    def item_path(self) -> str:
        """The route template, also used as the metrics ``route`` label."""
        return f"/api/v1/{self.plural}/{{id}}"

    def event_type(self, verb: str) -> str:
        return f"{self.singular}.{verb}"


def _text(name: str, description: str, max_length: int, **kw: Any) -> FieldSpec:
    return FieldSpec(name, Kind.TEXT, description, max_length=max_length, **kw)


def _cents(name: str, description: str, **kw: Any) -> FieldSpec:
    return FieldSpec(
        name, Kind.INTEGER, description, minimum=0, maximum=MAX_CENTS, **kw
    )


ENTITIES: dict[str, EntitySpec] = {
    spec.hub: spec
    for spec in (
        EntitySpec(
            hub="sourcing",
            plural="suppliers",
            singular="supplier",
            fields=(
                _text("name", "trading name of the supplier", 200),
                _text(
                    "country_code",
                    "ISO 3166-1 alpha-2 country code",
                    2,
                    pattern=r"^[A-Z]{2}$",
                ),
                _text(
                    "contact_email",
                    "address for purchase orders",
                    254,
                    pattern=EMAIL_PATTERN,
                    required=False,
                ),
                FieldSpec(
                    "rating",
                    Kind.INTEGER,
                    "buyer's rating, 1 (poor) to 5 (excellent)",
                    required=False,
                    minimum=1,
                    maximum=5,
                ),
                FieldSpec(
                    "active",
                    Kind.BOOLEAN,
                    "whether new orders may go to this supplier",
                    required=False,
                    default=True,
                ),
            ),
        ),
        EntitySpec(
            hub="content",
            plural="products",
            singular="product",
            fields=(
                _text(
                    "sku",
                    "stock keeping unit",
                    64,
                    pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                ),
                _text("name", "display name", 200),
                _text("description", "long description", 5000, required=False),
                _cents("price_cents", "list price in the currency's minor unit"),
                _text(
                    "currency", "ISO 4217 currency code", 3, pattern=CURRENCY_PATTERN
                ),
                FieldSpec(
                    "published",
                    Kind.BOOLEAN,
                    "whether the product shows in the catalogue",
                    required=False,
                    default=False,
                ),
            ),
        ),
        EntitySpec(
            hub="contacts",
            plural="contacts",
            singular="contact",
            fields=(
                _text("full_name", "name of the person", 200),
                _text("email", "e-mail address", 254, pattern=EMAIL_PATTERN),
                _text(
                    "phone",
                    "telephone number",
                    32,
                    pattern=r"^\+?[0-9 ()-]{3,31}$",
                    required=False,
                ),
                _text(
                    "company", "organisation the person works for", 200, required=False
                ),
                FieldSpec(
                    "marketing_opt_in",
                    Kind.BOOLEAN,
                    "consent to marketing messages",
                    required=False,
                    default=False,
                ),
            ),
        ),
        EntitySpec(
            hub="campaigns",
            plural="campaigns",
            singular="campaign",
            fields=(
                _text("name", "campaign name", 200),
                _text(
                    "channel",
                    "where the campaign runs",
                    16,
                    choices=("email", "sms", "social", "web", "print"),
                ),
                FieldSpec("starts_on", Kind.DATE, "first day of the campaign"),
                FieldSpec(
                    "ends_on", Kind.DATE, "last day of the campaign", required=False
                ),
                _cents("budget_cents", "budget in minor units", required=False),
            ),
        ),
        EntitySpec(
            hub="demand",
            plural="orders",
            singular="order",
            fields=(
                _text("customer_ref", "the buyer's reference", 64),
                _text(
                    "status",
                    "where the order stands",
                    16,
                    choices=("pending", "confirmed", "fulfilled", "cancelled"),
                    required=False,
                    default="pending",
                ),
                _cents("total_cents", "order total in minor units"),
                _text(
                    "currency", "ISO 4217 currency code", 3, pattern=CURRENCY_PATTERN
                ),
                FieldSpec("placed_at", Kind.TIMESTAMP, "when the buyer placed it"),
            ),
        ),
        EntitySpec(
            hub="shipping",
            plural="shipments",
            singular="shipment",
            fields=(
                _text("order_ref", "the order this shipment fulfils", 64),
                _text("carrier", "carrier name", 100),
                _text(
                    "tracking_number", "carrier's tracking number", 64, required=False
                ),
                FieldSpec(
                    "weight_grams",
                    Kind.INTEGER,
                    "gross weight in grams",
                    minimum=1,
                    maximum=10**8,
                ),
                FieldSpec(
                    "shipped_at",
                    Kind.TIMESTAMP,
                    "when the carrier collected it",
                    required=False,
                ),
            ),
        ),
        EntitySpec(
            hub="services",
            plural="tickets",
            singular="ticket",
            fields=(
                _text("subject", "one-line summary", 200),
                _text("body", "the request as the customer wrote it", 10000),
                _text(
                    "requester_email",
                    "where replies go",
                    254,
                    pattern=EMAIL_PATTERN,
                ),
                _text(
                    "priority",
                    "how urgent it is",
                    16,
                    choices=("low", "normal", "high", "urgent"),
                    required=False,
                    default="normal",
                ),
                _text(
                    "status",
                    "where the ticket stands",
                    16,
                    choices=("open", "pending", "resolved", "closed"),
                    required=False,
                    default="open",
                ),
            ),
        ),
    )
}


def _storable_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; refuse it here rather than fail the insert."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _annotation(spec: FieldSpec) -> Any:
    """The pydantic type of one field, with its constraints."""
    if spec.kind is Kind.TEXT:
        if spec.choices:
            return Literal[spec.choices]
        return Annotated[
            str,
            StringConstraints(
                min_length=1, max_length=spec.max_length, pattern=spec.pattern
            ),
            AfterValidator(_storable_text),
        ]
    if spec.kind is Kind.INTEGER:
        return Annotated[int, Field(ge=spec.minimum, le=spec.maximum)]
    if spec.kind is Kind.BOOLEAN:
        return bool
    if spec.kind is Kind.DATE:
        return dt.date
    return AwareDatetime


@functools.cache
def create_model_for(entity: EntitySpec) -> type[BaseModel]:
    """Build the strict request model: unknown fields and loose types are refused."""
    definitions: dict[str, Any] = {}
    for spec in entity.fields:
        annotation = _annotation(spec)
        if spec.required:
            definitions[spec.name] = (annotation, Field(description=spec.description))
        elif spec.nullable:
            definitions[spec.name] = (
                annotation | None,
                Field(default=None, description=spec.description),
            )
        else:
            definitions[spec.name] = (
                annotation,
                Field(default=spec.default, description=spec.description),
            )
    return create_model(
        f"{entity.singular.title()}Create",
        __config__=ConfigDict(extra="forbid", strict=True),
        **definitions,
    )
