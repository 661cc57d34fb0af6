#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs the suite.
#   bash tests/run.sh [pytest args...]
# apt: gcc (the native node table, built by the pip install below; tests/tree/test_nodetable.py
# fails without it), Apache ZooKeeper (the oracle and baseline), its C client, Curator, libfaketime
# (clock-step tests), Chromium (the web console's browser tests, driven by Playwright from the `test` extra;
# Playwright's own browser download is not used, nor reachable); pip: zkserver[test,docs] (docs:
# mkdocs and mkdocstrings, as tests/devex/test_docs.py builds the site with --strict and runs its
# examples; `wheel` in the test extra lets tests/devex/test_plugin_project.py pip-install zkserver
# into a fresh venv offline).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(gcc zookeeper zookeeper-bin libcurator-recipes-java libcurator-discovery-java faketime
              chromium krb5-kdc krb5-admin-server krb5-user libkrb5-dev)
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

# Apache ZooKeeper 3.9.5 from Maven Central (the differential suite's default oracle;
# ZKSERVER_ORACLE=debian runs it against the apt package instead), cached under
# ${ZKSERVER_TEST_CACHE:-~/.cache/zkserver-tests}; skipped when already there.
bash tests/support/fetch_zookeeper.sh 3.9.5
# Kafka 3.9.2 (ZooKeeper mode) and its client jars, for tests/compat/test_kafka.py; same cache.
bash tests/support/fetch_kafka.sh 3.9.2
# Third-party clients' own suites (go-zookeeper, npm zookeeper, aiozk, Curator's recipe tests),
# fetched and built once for tests/compat/test_*_suite.py; same cache.
bash tests/support/fetch_client_suites.sh go node aiozk curator

python3 -m pip install -q --disable-pip-version-check -e '.[test,docs]'
python3 -m ruff check zkserver client recipes tests bench examples
exec python3 -m pytest -q "$@"
