#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection placed where ansible-test wants it
# (…/ansible_collections/cloudvirt/platform), offline.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=sanity
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_host_packages rsync

# ansible-test downloads get-pip.py for each virtualenv it creates; give it the offline stand-in
# under the name it looks for (the pip version ansible-core pins).
pip_ver=$(python - <<'PY'
import re, ansible_test, pathlib
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1).replace('.', '_'))
PY
)
mkdir -p ~/.ansible/test/cache
install -m 0644 scripts/ansible-test/get-pip-offline.py ~/.ansible/test/cache/get_pip_${pip_ver}.py

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/cloudvirt/platform
mkdir -p "$dest"
# Only what the collection tarball would ship, plus tests/ (sanity ignores live there).
git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$dest/"
(cd "$dest" && rm -rf app scripts molecule .ci inventories/lab && git init -q && git add -A)
cd "$dest"
py=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
with_progress "ansible-test sanity (python $py)" ansible-test sanity --local --python "$py" --requirements --color no "$@"
