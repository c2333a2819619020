"""Stand-in for PyPA's get-pip.py, for machines that reach PyPI but not other hosts.

ansible-test bootstraps pip into each sanity virtualenv by downloading get-pip.py from
its own CI file server. Where only the package index is reachable, `make sanity` puts
this script in ansible-test's cache instead: it installs the bundled pip with ensurepip,
then lets that pip install what ansible-test asked for from the package index.
"""

import subprocess
import sys

# get-pip.py options that `pip install` does not know
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# ensurepip runs in a process of its own: it disables pip's configuration files in the
# environment of the process that imports it, and the install below needs them (for a
# proxy or a company CA certificate, for instance).
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
