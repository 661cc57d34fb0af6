#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs the suite.
#   bash tests/run.sh [pytest args...]
# apt: Apache ZooKeeper (the oracle and baseline), its C client, Curator, libfaketime (clock-step
# tests); pip: zkserver[test].
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(zookeeper zookeeper-bin libcurator-recipes-java libcurator-discovery-java faketime)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The web console's browser tests: Debian's Chromium, driven by Playwright (the `test` extra
# below installs it; Playwright's own browser download is not used, nor reachable).
if ! dpkg -s chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m ruff check zkserver client recipes tests bench examples
exec python3 -m pytest -q "$@"
