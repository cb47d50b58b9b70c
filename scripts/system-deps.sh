#!/usr/bin/env bash
# Debian packages the integration tests start natively (no Docker): PostgreSQL and Redis for the
# distributed Celery run, Chromium for the browser test of the UI page. Idempotent; `make test` runs it.
# Without root or apt-get it only reports what is missing (those tests then fail with the reason).
set -euo pipefail

PACKAGES=(postgresql redis-server chromium)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: missing Debian packages ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# the package's own cluster is not used (tests create throwaway clusters); keep it stopped
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h 2>/dev/null | while read -r version name _; do
    pg_ctlcluster "$version" "$name" stop 2>/dev/null || true
  done
fi
