#!/usr/bin/env bash
# Fetch (and build) third-party ZooKeeper clients together with their OWN test suites, for
# tests/compat/test_*_suite.py, which run each suite against zkserver and Apache ZooKeeper:
#   go      github.com/go-zookeeper/zk v1.0.4 (Go module proxy): its package test binary,
#           built with the one-line harness patch tests/compat/gozk_suite/ explains
#   node    npm `zookeeper` 7.3.0 (the C client under Node; built from the npm tarball, which
#           carries the C client's source and the package's tests) and `ava` 6.4.1 to run them
#   aiozk   PyPI aiozk 0.32.0's sdist (its tests live in aiozk/test) in a venv with pytest and
#           pytest-asyncio, apart from the project's environment (pytest-trio's)
#   curator Apache Curator 5.9.0's recipe tests (Maven Central: curator-recipes' and
#           curator-framework's test jars, curator-test, JUnit's console launcher) and the
#           class tests/compat/curator_suite/ puts ahead of curator-test's, compiled
# into ${ZKSERVER_TEST_CACHE:-$HOME/.cache/zkserver-tests}/suites/<name>. Idempotent: a
# directory with its `complete` marker is kept; anything else is rebuilt from scratch.
#   bash tests/support/fetch_client_suites.sh go node aiozk curator
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${ZKSERVER_TEST_CACHE:-$HOME/.cache/zkserver-tests}/suites"
gozk_version=v1.0.4
node_zk_version=7.3.0
ava_version=6.4.1
aiozk_version=0.32.0
pytest_version=9.2.0
pytest_asyncio_version=1.5.0
curator_version=5.9.0
junit_version=5.14.1          # Curator builds with JUnit 5.6; 5.14 runs those tests and Java 17
junit_platform_version=1.14.1

fetch_go() {
  local dest="$cache/go-zookeeper-zk-$gozk_version"
  [ -f "$dest/complete" ] && return 0
  rm -rf "$dest" && mkdir -p "$dest"
  # The module comes through the proxy into the module cache; go.sum in tests/compat/gozk
  # holds its hash, so the download is verified.
  local src
  src="$(cd "$here/../compat/gozk" && go mod download -json "github.com/go-zookeeper/zk@$gozk_version" \
         | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  cp -r "$src" "$dest/src"
  chmod -R u+w "$dest/src"
  local helper="$dest/src/server_help_test.go"
  grep -q '_, ok := FLWSrvr(serverAddrs, time.Second)' "$helper"
  sed -i 's/_, ok := FLWSrvr(serverAddrs, time.Second)/ok := suiteServersServing(serverAddrs, time.Second)/' \
    "$helper"
  cp "$here/../compat/gozk_suite/serving_test.go" "$dest/src/"
  (cd "$dest/src" && GOFLAGS=-buildvcs=false go test -c -o "$dest/zk.test" .)
  touch "$dest/complete"
}

fetch_node() {
  local dest="$cache/node-zookeeper-$node_zk_version"
  [ -f "$dest/complete" ] && return 0
  rm -rf "$dest" && mkdir -p "$dest"
  (cd "$dest" && npm pack --silent "zookeeper@$node_zk_version" >/dev/null \
     && tar xzf "zookeeper-$node_zk_version.tgz" && mv package pkg)
  # Only the runtime dependencies and the test runner: the package's other development tools
  # (eslint, typescript, ...) are not needed to run its tests.
  (cd "$dest/pkg" && node -e 'const fs = require("fs");
     const p = JSON.parse(fs.readFileSync("package.json")); delete p.devDependencies;
     fs.writeFileSync("package.json", JSON.stringify(p, null, 2));')
  (cd "$dest/pkg" && npm install --no-audit --no-fund --loglevel=error >"$dest/build.log" 2>&1 \
     && npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
          "ava@$ava_version" >>"$dest/build.log" 2>&1) || { cat "$dest/build.log" >&2; exit 1; }
  test -f "$dest/pkg/build/Release/zookeeper.node"
  touch "$dest/complete"
}

fetch_aiozk() {
  local dest="$cache/aiozk-$aiozk_version"
  [ -f "$dest/complete" ] && return 0
  rm -rf "$dest" && mkdir -p "$dest"
  python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$dest" "aiozk==$aiozk_version"
  tar xzf "$dest/aiozk-$aiozk_version.tar.gz" -C "$dest"
  python3 -m venv "$dest/venv"
  "$dest/venv/bin/pip" install -q --disable-pip-version-check "pytest==$pytest_version" \
    "pytest-asyncio==$pytest_asyncio_version"
  touch "$dest/complete"
}

fetch_curator() {
  local dest="$cache/curator-$curator_version"
  [ -f "$dest/complete" ] && return 0
  rm -rf "$dest" && mkdir -p "$dest"
  # The test-scope dependencies of curator-recipes (assertj, awaitility, commons-math) at
  # Curator's versions; ZooKeeper's client at the oracle's version (Curator 5.9 builds on 3.9.3).
  cat >"$dest/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>zkserver.tests</groupId>
  <artifactId>curator-suite</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.junit</groupId><artifactId>junit-bom</artifactId>
        <version>$junit_version</version><type>pom</type><scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>org.apache.curator</groupId><artifactId>curator-recipes</artifactId>
      <version>$curator_version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.curator</groupId><artifactId>curator-recipes</artifactId>
      <version>$curator_version</version><classifier>tests</classifier>
    </dependency>
    <dependency>
      <groupId>org.apache.curator</groupId><artifactId>curator-framework</artifactId>
      <version>$curator_version</version><classifier>tests</classifier>
    </dependency>
    <dependency>
      <groupId>org.apache.curator</groupId><artifactId>curator-test</artifactId>
      <version>$curator_version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.zookeeper</groupId><artifactId>zookeeper</artifactId><version>3.9.5</version>
    </dependency>
    <dependency>
      <groupId>org.junit.jupiter</groupId><artifactId>junit-jupiter</artifactId>
    </dependency>
    <dependency>
      <groupId>org.junit.platform</groupId><artifactId>junit-platform-console</artifactId>
      <version>$junit_platform_version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.commons</groupId><artifactId>commons-math</artifactId><version>2.2</version>
    </dependency>
    <dependency>
      <groupId>org.assertj</groupId><artifactId>assertj-core</artifactId><version>3.23.1</version>
    </dependency>
    <dependency>
      <groupId>org.awaitility</groupId><artifactId>awaitility</artifactId><version>4.1.1</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>2.0.13</version>
    </dependency>
  </dependencies>
</project>
POM
  mvn -q -B -f "$dest/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dest/lib" >"$dest/mvn.log" 2>&1 || { cat "$dest/mvn.log" >&2; exit 1; }
  mkdir -p "$dest/shim"
  javac -nowarn -d "$dest/shim" -cp "$(ls "$dest"/lib/*.jar | tr '\n' ':')" \
    "$here/../compat/curator_suite/org/apache/curator/test/ZooKeeperServerEmbeddedAdapter.java"
  touch "$dest/complete"
}

for suite in "$@"; do
  case "$suite" in
    go) fetch_go ;;
    node) fetch_node ;;
    aiozk) fetch_aiozk ;;
    curator) fetch_curator ;;
    *) echo "unknown suite: $suite (go, node, aiozk, curator)" >&2; exit 2 ;;
  esac
done
