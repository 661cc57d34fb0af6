#!/usr/bin/env bash
# Fetch Apache Kafka 3.9 (the last line that runs in ZooKeeper mode) and its runtime jars from
# Maven Central into
#   ${ZKSERVER_TEST_CACHE:-$HOME/.cache/zkserver-tests}/kafka-VERSION/lib
# for tests/compat/test_kafka.py: the broker (kafka.Kafka), the command-line tools
# (org.apache.kafka.tools.TopicCommand, kafka.admin.ConfigCommand, kafka.admin.AclCommand) and
# the Java producer and consumer, all run with `java -cp`. Maven's dependency plugin copies them
# from a generated pom. Idempotent: a lib directory holding the broker jar and the marker written
# after a complete copy is kept.
#   bash tests/support/fetch_kafka.sh [VERSION]        (default 3.9.2)
set -euo pipefail
version="${1:-3.9.2}"
cache="${ZKSERVER_TEST_CACHE:-$HOME/.cache/zkserver-tests}"
dest="$cache/kafka-$version"
if [ -f "$dest/lib/kafka_2.13-$version.jar" ] && [ -f "$dest/lib/kafka-tools-$version.jar" ] \
   && [ -f "$dest/complete" ]; then
  exit 0
fi
mkdir -p "$dest"
rm -rf "$dest/lib" "$dest/complete"
cat > "$dest/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>zkserver.tests</groupId>
  <artifactId>kafka-on-zookeeper</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <!-- the broker, its ZooKeeper client, kafka-clients, ConfigCommand and AclCommand -->
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$version</version>
    </dependency>
    <dependency>
      <!-- kafka-topics' TopicCommand lives here since 3.5 -->
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$version</version>
    </dependency>
    <dependency>
      <!-- the release tarball's log binding (the broker's log4j.properties); without a binding
           the broker's log is silent -->
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
POM
mvn -q -B -f "$dest/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$dest/lib" >"$dest/mvn.log" 2>&1 || {
  cat "$dest/mvn.log" >&2
  exit 1
}
test -f "$dest/lib/kafka_2.13-$version.jar"
touch "$dest/complete"
