"""Offline stand-in for get-pip.py, used by ansible-test when it bootstraps pip into its
per-test virtualenvs (the site it downloads get-pip from is not reachable on every machine).

Bootstraps pip with ensurepip, then installs what was asked with the machine's own pip
configuration (ensurepip points PIP_CONFIG_FILE at /dev/null; that is undone here)."""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
os.environ.pop("PIP_CONFIG_FILE", None)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
