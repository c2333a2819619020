"""docs/reference-hub.md describes the entities the hub really serves."""

from __future__ import annotations

import re
from pathlib import Path

from tradehub_reference_hub.entities import ENTITIES, Kind

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference-hub.md"
TYPE_WORDS = {
    Kind.TEXT: "string",
    Kind.INTEGER: "integer",
    Kind.BOOLEAN: "boolean",
    Kind.DATE: "date",
    Kind.TIMESTAMP: "time",
}


def documented_entities() -> dict[str, tuple[str, list[tuple[str, str, str]]]]:
    sections = re.split(r"^### ", DOC.read_text(), flags=re.MULTILINE)[1:]
    found = {}
    for section in sections:
        heading = re.match(r"(\w+): `(\w+)`", section)
        if not heading:
            continue
        rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (yes|no)", section, re.MULTILINE)
        found[heading.group(1)] = (heading.group(2), rows)
    return found


def test_every_entity_field_is_documented_as_served() -> None:
    documented = documented_entities()

    assert set(documented) == set(ENTITIES)
    for hub, entity in ENTITIES.items():
        plural, rows = documented[hub]
        assert plural == entity.plural, hub
        expected = [
            (f.name, TYPE_WORDS[f.kind], "yes" if f.required else "no")
            for f in entity.fields
        ]
        assert rows == expected, hub
