# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    """How the modules that work on the hubs' database connect to PostgreSQL."""

    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - The PostgreSQL server's host name or address, or the directory of its Unix
        socket.
      - Left empty, the module connects over the local Unix socket, as the PostgreSQL
        role of the collection does on an installed server (with O(login_user=postgres)
        and C(become_user=postgres)).
    type: str
    default: ""
  login_port:
    description:
      - The PostgreSQL server's port.
    type: int
    default: 5432
  login_user:
    description:
      - The role to connect as. It needs to create schemas and tables in the
        database, and to give the tables it creates to each hub's role, as the
        database's owner or a superuser can.
    type: str
    default: postgres
  login_password:
    description:
      - The password of O(login_user). Not needed over the local socket with peer
        authentication.
    type: str
  login_db:
    description:
      - The database of the hubs (C(tradehub_database_name) in the inventory).
    type: str
    default: tradehub
  ssl_mode:
    description:
      - libpq's C(sslmode) for the connection.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  ca_cert:
    description:
      - A CA certificate file to verify the server's certificate with (libpq's
        C(sslrootcert)), for O(ssl_mode=verify-ca) or O(ssl_mode=verify-full).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection.
    type: int
    default: 10
requirements:
  - psycopg 3 (Python library, C(psycopg) on PyPI, C(python3-psycopg) on Debian and
    Ubuntu) on the host the module runs on
"""
