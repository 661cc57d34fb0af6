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
. "$(dirname "$0")/maven_lib.sh"
version="${1:-3.9.2}"
cache="${ZKSERVER_TEST_CACHE:-$HOME/.cache/zkserver-tests}"
dest="$cache/kafka-$version"
if [ -f "$dest/lib/kafka_2.13-$version.jar" ] && [ -f "$dest/lib/kafka-tools-$version.jar" ] \
   && [ -f "$dest/complete" ]; then
  exit 0
fi
rm -rf "$dest/lib" "$dest/complete"
maven_lib "$dest" kafka-on-zookeeper <<POM
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
POM
test -f "$dest/lib/kafka_2.13-$version.jar"
touch "$dest/complete"
