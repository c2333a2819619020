# Copyright: Tamyla tradehub maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    """Where the license modules find the hubs' files on a Linux host."""

    DOCUMENTATION = r"""
options:
  config_dir:
    description:
      - The hubs' configuration directory on the host, where the hub role keeps
        C(<hub>/license.json) for each hub.
    type: path
    default: /etc/tradehub
  trusted_keys_dir:
    description:
      - The directory of the vendor's trusted public keys, one C(<key_id>.pem) file each.
      - Defaults to C(<config_dir>/trusted-keys), where the hub role installs them and
        the hubs read them.
    type: path
requirements:
  - cryptography (Python library) on the host the module runs on
"""
