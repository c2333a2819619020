# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hubs of the platform (docs/hub-contract.md, section 1).

The roles keep the same table in roles/common/vars/main.yml for their templates; a unit
test keeps the two equal.
"""

from __future__ import annotations

# name: (port when several hubs share a host, API entity)
HUBS = {
    "sourcing": {"port": 8101, "entity": "suppliers"},
    "content": {"port": 8102, "entity": "products"},
    "contacts": {"port": 8103, "entity": "contacts"},
    "campaigns": {"port": 8104, "entity": "campaigns"},
    "demand": {"port": 8105, "entity": "orders"},
    "shipping": {"port": 8106, "entity": "shipments"},
    "services": {"port": 8107, "entity": "tickets"},
}
