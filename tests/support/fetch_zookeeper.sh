#!/usr/bin/env bash
# Fetch Apache ZooKeeper's server jars (the differential suite's oracle) from Maven Central into
#   ${ZKSERVER_TEST_CACHE:-$HOME/.cache/zkserver-tests}/zookeeper-VERSION/lib
# with Maven's dependency plugin, on a generated one-dependency pom. Idempotent: a lib directory
# that already holds the zookeeper jar (and the marker written after a complete copy) is kept.
#   bash tests/support/fetch_zookeeper.sh [VERSION]        (default 3.9.5)
set -euo pipefail
. "$(dirname "$0")/maven_lib.sh"
version="${1:-3.9.5}"
logback=1.5.35
metrics=4.1.12.1
snappy=1.1.10.5
jetty=9.4.58.v20250814
jackson=2.15.2
cache="${ZKSERVER_TEST_CACHE:-$HOME/.cache/zkserver-tests}"
dest="$cache/zookeeper-$version"
if [ -f "$dest/lib/zookeeper-$version.jar" ] && [ -f "$dest/complete" ] \
   && [ -f "$dest/lib/logback-classic-$logback.jar" ] \
   && [ -f "$dest/lib/metrics-core-$metrics.jar" ] && [ -f "$dest/lib/snappy-java-$snappy.jar" ] \
   && [ -f "$dest/lib/jetty-server-$jetty.jar" ]; then
  exit 0
fi
rm -rf "$dest/lib" "$dest/complete"
maven_lib "$dest" zookeeper-oracle <<POM
  <dependencies>
    <dependency>
      <groupId>org.apache.zookeeper</groupId>
      <artifactId>zookeeper</artifactId>
      <version>$version</version>
    </dependency>
    <dependency>
      <!-- ZooKeeper leaves the SLF4J binding to its user; without one its log is silent -->
      <groupId>ch.qos.logback</groupId>
      <artifactId>logback-classic</artifactId>
      <version>$logback</version>
    </dependency>
    <dependency>
      <!-- "provided" in ZooKeeper's pom, but its server needs it (the release tarball ships it) -->
      <groupId>io.dropwizard.metrics</groupId>
      <artifactId>metrics-core</artifactId>
      <version>$metrics</version>
    </dependency>
    <dependency>
      <!-- likewise: snapshot streams are opened through it whatever the compression setting -->
      <groupId>org.xerial.snappy</groupId>
      <artifactId>snappy-java</artifactId>
      <version>$snappy</version>
    </dependency>
    <!-- the AdminServer (admin.enableServer=true), also "provided" -->
    <dependency>
      <groupId>org.eclipse.jetty</groupId>
      <artifactId>jetty-server</artifactId>
      <version>$jetty</version>
    </dependency>
    <dependency>
      <groupId>org.eclipse.jetty</groupId>
      <artifactId>jetty-servlet</artifactId>
      <version>$jetty</version>
    </dependency>
    <dependency>
      <groupId>org.eclipse.jetty</groupId>
      <artifactId>jetty-client</artifactId>
      <version>$jetty</version>
    </dependency>
    <dependency>
      <groupId>com.fasterxml.jackson.core</groupId>
      <artifactId>jackson-databind</artifactId>
      <version>$jackson</version>
    </dependency>
    <dependency>
      <groupId>commons-cli</groupId>
      <artifactId>commons-cli</artifactId>
      <version>1.5.0</version>
    </dependency>
  </dependencies>
POM
test -f "$dest/lib/zookeeper-$version.jar"
touch "$dest/complete"
