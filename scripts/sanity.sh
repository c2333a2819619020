#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection, on a machine that reaches the Python
# package index but not ansible-test's own file server.
#
# ansible-test creates a virtualenv per sanity test and bootstraps pip into each one with
# a get-pip.py script that it downloads from its CI file server. When that script is not
# in ansible-test's cache yet, this puts scripts/get-pip-offline.py there instead, which
# bootstraps pip with ensurepip and then installs from the package index as usual.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
collection="$top/collections/ansible_collections/tamyla/tradehub"
python="${PYTHON:-$top/.venv/bin/python}"

pip_version=$("$python" - <<'PY'
import pathlib
import re

import ansible_test

source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
match = re.search(r"pip='([0-9.]+)'", source.read_text())
print(match.group(1) if match else "")
PY
)
if [[ -z "$pip_version" ]]; then
  echo "sanity: cannot tell which pip ansible-test bootstraps; run ansible-test by hand" >&2
  exit 1
fi

cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [[ -f "$cache" ]]; then
  echo "sanity: pip $pip_version bootstrap script already in $cache"
else
  echo "sanity: installing the offline pip $pip_version bootstrap script in $cache"
  mkdir -p "$(dirname "$cache")"
  cp "$top/scripts/get-pip-offline.py" "$cache"
fi

cd "$collection"
exec "$top/.venv/bin/ansible-test" sanity --python "$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" "$@"
