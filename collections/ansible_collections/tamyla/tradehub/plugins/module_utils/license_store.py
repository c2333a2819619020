# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a verified license is installed for a hub, apart from how it is verified.

:class:`FileStore` is the Linux host's: ``<config_dir>/<hub>/license.json``, owned by
the hub's system user ``tradehub-<hub>`` and readable by it alone, and a reload of the
hub's systemd unit (SIGHUP) so that the hub reads it. Another place, such as a
Kubernetes Secret, is another class with the same four methods.
"""

from __future__ import annotations

import os
import pwd
import tempfile

LICENSE_FILE = "license.json"
LICENSE_MODE = 0o400


class StoreError(Exception):
    """The license cannot be installed or removed; the message says where and why."""


class FileStore:
    """The license files of the hubs of one Linux host."""

    def __init__(self, config_dir, run_command=None):
        """*run_command(argv)* returns ``(rc, stdout, stderr)``; it reloads the hubs."""
        self.config_dir = config_dir
        self.run_command = run_command

    def path(self, hub):
        return os.path.join(self.config_dir, hub, LICENSE_FILE)

    @staticmethod
    def user(hub):
        return f"tradehub-{hub}"

    def read(self, hub):
        """The installed license's bytes, or None when the hub has none."""
        try:
            with open(self.path(hub), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path(hub)}: {exc.strerror}") from None

    def check_hub(self, hub):
        """Refuse early, before anything changes, a hub this host does not run."""
        directory = os.path.dirname(self.path(hub))
        if not os.path.isdir(directory):
            raise StoreError(
                f"hub {hub} is not installed on this host ({directory} does not exist): "
                "install it with the hub role first, or leave it out of hubs"
            )
        try:
            pwd.getpwnam(self.user(hub))
        except KeyError:
            raise StoreError(
                f"hub {hub} has no system user {self.user(hub)} on this host"
            ) from None

    def is_current(self, hub, raw):
        """True when the file holds *raw* already, with its owner and mode."""
        if self.read(hub) != raw:
            return False
        status = os.stat(self.path(hub))
        account = pwd.getpwnam(self.user(hub))
        return (
            status.st_uid == account.pw_uid
            and status.st_gid == account.pw_gid
            and status.st_mode & 0o7777 == LICENSE_MODE
        )

    def write(self, hub, raw):
        """Replace the license atomically: the hub never reads half a file."""
        account = pwd.getpwnam(self.user(hub))
        directory = os.path.dirname(self.path(hub))
        descriptor, staged = tempfile.mkstemp(prefix=".license-", dir=directory)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.chown(staged, account.pw_uid, account.pw_gid)
            os.chmod(staged, LICENSE_MODE)
            os.replace(staged, self.path(hub))
        except OSError as exc:
            if os.path.exists(staged):
                os.unlink(staged)
            raise StoreError(f"cannot write {self.path(hub)}: {exc.strerror}") from None

    def remove(self, hub):
        """Remove the license; returns whether there was one."""
        try:
            os.unlink(self.path(hub))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(
                f"cannot remove {self.path(hub)}: {exc.strerror}"
            ) from None
        return True

    def reload(self, hub):
        """Make a running hub read its license again; returns whether it was running."""
        unit = f"tradehub-{hub}.service"
        rc = self.run_command(["systemctl", "is-active", "--quiet", unit])[0]
        if rc != 0:
            return False
        rc, out, err = self.run_command(["systemctl", "reload", unit])
        if rc != 0:
            raise StoreError(f"systemctl reload {unit} failed: {(err or out).strip()}")
        return True
