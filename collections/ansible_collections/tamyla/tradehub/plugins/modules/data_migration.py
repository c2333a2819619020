#!/usr/bin/python
# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: data_migration
short_description: Import a customer's SaaS export into its hubs' schemas
version_added: "0.1.0"
description:
  - Imports an export bundle of the SaaS platform (format v1, described in
    C(docs/migration-bundle.md)) into the PostgreSQL database of a Private Trade Hub
    deployment. Each entity of the bundle goes into the table C(saas_<entity>) of its
    hub's schema, created from the manifest's column types on its first import and
    owned by the hub's role.
  - "Everything is verified before any hub's table changes: the manifest (format,
    entities, hubs, columns, types, primary keys), then each file, streamed once into
    a staging table with PostgreSQL C(COPY): its SHA-256 and row count against the
    manifest, every value against its column's type, and the uniqueness of the primary
    key. Any problem refuses the bundle and nothing is merged (see O(on_error))."
  - Verified entities are then merged by primary key. New keys are inserted, rows
    that differ are updated, equal rows are not touched; importing the same bundle
    again changes nothing, and a newer export updates what changed. Rows absent from a
    newer export are kept.
  - Each entity's merge is committed together with its row in the ledger
    C(tradehub_migration.ledger), keyed by the bundle's checksum and the entity. A run
    killed at any point leaves each entity either merged and recorded, or untouched;
    running again resumes with the entities not recorded, and ends with exactly the
    rows of the bundle.
  - Memory stays flat whatever the bundle's size; the rows stream from the files (or
    straight out of the C(.tar.gz)) into PostgreSQL.
  - While it runs, the module rewrites a JSON progress file (O(progress_file)) that an
    operator can follow, for instance during an C(async) run.
author:
  - Tamyla tradehub maintainers (@tamyla)
options:
  bundle:
    description:
      - The bundle on the host the module runs on, a directory holding
        C(manifest.json) or a C(.tar.gz) of one.
    type: path
    required: true
  hubs:
    description:
      - The hubs of this deployment (C(tradehub_hubs) in the inventory). An entity of
        any other hub is refused before anything is written.
      - Each hub's schema must exist in the database (the postgresql role creates it).
    type: list
    elements: str
    default: [sourcing, content, contacts, campaigns, demand, shipping, services]
  on_error:
    description:
      - What to do when an entity has a problem (a bad row, checksum or count).
      - V(refuse) merges nothing at all; the module fails listing every problem.
      - V(skip_entity) merges the entities without problems, merges nothing of the
        others, and then fails naming them.
      - An entity with a bad row is never merged in part.
    type: str
    choices: [refuse, skip_entity]
    default: refuse
  force:
    description:
      - Verify and merge again the entities the ledger records for this bundle, and
        import a bundle older than one imported before.
      - Merging is still by primary key, so rows equal to the bundle's stay untouched.
    type: bool
    default: false
  progress_file:
    description:
      - The JSON file the module keeps up to date during the run, replaced atomically
        at most twice a second. C(state) (V(verifying), V(merging), V(done) or
        V(failed)), C(entity) being worked on, C(rows_total), C(rows_verified),
        C(rows_merged), C(percent), C(elapsed_seconds), and per entity its C(state)
        and C(rows_done).
      - Defaults to C(tradehub-migration-<source tenant>.json) in the host's
        temporary directory (C(TMPDIR), else C(/tmp)). Returned as RV(progress_file).
    type: path
  max_problems:
    description:
      - The most problems reported per entity; the entity's file is still read to its
        end to check its checksum.
    type: int
    default: 20
extends_documentation_fragment:
  - tamyla.tradehub.database_login
notes:
  - Tables are named C(saas_<entity>) in the hub's schema so that they never collide
    with the tables the hub's own C(migrate) creates. A later export must have the
    same columns and types for an entity; a table whose columns differ is refused
    before anything is written.
  - Staging tables live in the C(tradehub_migration) schema during a run (temporary
    tables in check mode) and are gone at its end; a run killed before its end leaves
    them, and the next run drops them.
  - Runs against one database take turns (a PostgreSQL advisory lock); a second run
    waits up to five minutes for the first one.
  - The password is never returned or written to the progress file.
  - The progress file is written in check mode too; it reports the run and is no part
    of the deployment.
  - An entity the ledger records for the same bundle is not read again; if its table
    was changed by hand since, O(force=true) merges the bundle's rows back.
seealso:
  - name: Migration bundle format
    description: The export bundle, the tables it fills and how to follow a run.
    link: https://github.com/tamyla/tradehub/blob/main/docs/migration-bundle.md
attributes:
  check_mode:
    description: >-
      Verifies the whole bundle the same way, against temporary tables that vanish
      with the session, and reports per entity the rows that would be new, changed and
      unchanged, and every problem, without writing.
    support: full
  diff_mode:
    description: Not supported; the result counts the rows per entity instead.
    support: none
  async:
    description: Long imports run with C(async) and C(poll); follow O(progress_file).
    support: full
"""

EXAMPLES = r"""
- name: Show what the import would change, without writing
  tamyla.tradehub.data_migration:
    bundle: /srv/exports/acme-trading-2026-11-30.tar.gz
    login_host: db.acme.internal
    login_password: "{{ postgresql_admin_password }}"
    hubs: "{{ tradehub_hubs }}"
  check_mode: true
  register: __preview

- name: Import the export, for up to six hours, following its progress file
  tamyla.tradehub.data_migration:
    bundle: /srv/exports/acme-trading-2026-11-30.tar.gz
    login_host: db.acme.internal
    login_password: "{{ postgresql_admin_password }}"
    hubs: "{{ tradehub_hubs }}"
    progress_file: /var/tmp/acme-migration.json
  async: 21600
  poll: 30

- name: Import on the database host over the local socket
  tamyla.tradehub.data_migration:
    bundle: /var/lib/postgresql/acme-export
  become: true
  become_user: postgres
"""

RETURN = r"""
bundle:
  description: The bundle, as its manifest describes it.
  returned: when the manifest could be read
  type: dict
  contains:
    path:
      description: The bundle's path.
      type: str
    sha256:
      description: The SHA-256 of C(manifest.json), which names the bundle in the ledger.
      type: str
    format:
      description: The bundle format.
      type: str
      sample: tradehub-migration-bundle/1
    source_tenant:
      description: The SaaS tenant the export comes from.
      type: str
    exported_at:
      description: When the SaaS exported it.
      type: str
    entities:
      description: How many entities it holds.
      type: int
    rows:
      description: How many rows it holds in all.
      type: int
entities:
  description: Per entity, by name, what the run did or, in check mode, would do.
  returned: when the manifest could be read
  type: dict
  sample:
    transactions:
      hub: demand
      table: demand.saas_transactions
      file: transactions.csv
      format: csv
      status: imported
      rows: 1000000
      new: 1000000
      changed: 0
      unchanged: 0
      duration: 1.9
      rows_per_second: 526315
      problems: []
  contains:
    status:
      description: >-
        V(imported), V(would_import) (check mode), V(already_imported) (recorded in the
        ledger for this bundle), V(refused) (it has problems) or V(not_merged) (it is
        fine, but another entity was refused).
      type: str
    rows:
      description: The rows of the entity's file.
      type: int
    new:
      description: Rows whose key was not in the table, inserted (or to insert).
      type: int
    changed:
      description: Rows whose key was in the table with other values, updated (or to update).
      type: int
    unchanged:
      description: Rows equal to the table's, left untouched.
      type: int
    duration:
      description: Seconds spent verifying and merging it.
      type: float
    rows_per_second:
      description: Its rows over its duration.
      type: int
    problems:
      description: Each problem found, with C(entity), C(line), C(column) and C(message).
      type: list
      elements: dict
totals:
  description: The sums of C(rows), C(new), C(changed) and C(unchanged) over the entities.
  returned: when the manifest could be read
  type: dict
  sample: {rows: 1250000, new: 1000, changed: 3120, unchanged: 1245880}
problems:
  description: >-
    Every problem found, each with C(entity), C(line) (counting a CSV header as line
    1), C(column) and C(message); empty on success.
  returned: always
  type: list
  elements: dict
  sample:
    - entity: orders
      line: 6
      column: total
      message: 'invalid input syntax for type numeric: "twelve"'
duration:
  description: Seconds the run took.
  returned: when the manifest could be read
  type: float
rows_per_second:
  description: The bundle's rows over the run's duration.
  returned: when the manifest could be read
  type: int
progress_file:
  description: The progress file the run wrote.
  returned: when the manifest could be read
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.tamyla.tradehub.plugins.module_utils import (
    data_migration as migration,
)
from ansible_collections.tamyla.tradehub.plugins.module_utils.catalog import HUBS
from ansible_collections.tamyla.tradehub.plugins.module_utils.migration_bundle import (
    BundleError,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "bundle": {"type": "path", "required": True},
            "hubs": {"type": "list", "elements": "str", "default": list(HUBS)},
            "on_error": {
                "type": "str",
                "choices": [migration.REFUSE, migration.SKIP_ENTITY],
                "default": migration.REFUSE,
            },
            "force": {"type": "bool", "default": False},
            "progress_file": {"type": "path"},
            "max_problems": {"type": "int", "default": 20},
            "login_host": {"type": "str", "default": ""},
            "login_port": {"type": "int", "default": 5432},
            "login_user": {"type": "str", "default": "postgres"},
            "login_password": {"type": "str", "no_log": True},
            "login_db": {"type": "str", "default": "tradehub"},
            "ssl_mode": {
                "type": "str",
                "default": "prefer",
                "choices": [
                    "disable",
                    "allow",
                    "prefer",
                    "require",
                    "verify-ca",
                    "verify-full",
                ],
            },
            "ca_cert": {"type": "path"},
            "connect_timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    if not migration.HAS_PSYCOPG:
        module.fail_json(
            msg=missing_required_lib(
                "psycopg (version 3)",
                reason="to import into PostgreSQL; on Debian and Ubuntu install "
                "python3-psycopg on the host the module runs on",
            ),
            exception=migration.PSYCOPG_IMPORT_ERROR,
        )
    params = module.params
    unknown = sorted(set(params["hubs"]) - set(HUBS))
    if unknown or not params["hubs"]:
        module.fail_json(
            msg=f"hubs: {', '.join(unknown) or 'empty'}: expected names among "
            f"{', '.join(HUBS)}",
            problems=[],
        )
    conninfo = {
        "host": params["login_host"],
        "port": params["login_port"],
        "user": params["login_user"],
        "password": params["login_password"],
        "dbname": params["login_db"],
        "sslmode": params["ssl_mode"],
        "sslrootcert": params["ca_cert"],
        "connect_timeout": params["connect_timeout"],
    }
    try:
        result = migration.run_import(
            bundle=params["bundle"],
            conninfo=conninfo,
            hubs=params["hubs"],
            check_mode=module.check_mode,
            force=params["force"],
            on_error=params["on_error"],
            progress_file=params["progress_file"],
            max_problems=params["max_problems"],
        )
    except BundleError as exc:
        module.fail_json(
            msg=f"bundle refused, nothing was written: {exc}",
            problems=[problem.as_dict() for problem in exc.problems],
            changed=False,
        )
    except migration.MigrationError as exc:
        module.fail_json(msg=str(exc), problems=[], changed=False)
    except Exception as exc:  # a database error the importer does not expect
        module.fail_json(
            msg=f"data migration failed: {exc}",
            problems=[],
            exception=traceback.format_exc(),
        )
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
