#!/usr/bin/env bash
# Debian packages the host needs: mysqlclient (ibis's MySQL backend) compiles against
# libmysqlclient, the tests open sanitized pages in headless Chromium, and the sandbox manager
# fronts each PostgreSQL lease with a pgbouncer of its own.
set -euo pipefail
needed=()
for pkg in pkg-config default-libmysqlclient-dev gcc python3-venv chromium pgbouncer; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || needed+=("$pkg")
done
# A pyenv or other non-Debian Python brings its own venv module.
python3 -c 'import venv, ensurepip' 2>/dev/null && needed=("${needed[@]/python3-venv}")
needed=($(printf '%s\n' "${needed[@]}" | grep -v '^$' || true))
if ((${#needed[@]})); then
  echo "installing host packages: ${needed[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${needed[@]}" >/dev/null
fi
