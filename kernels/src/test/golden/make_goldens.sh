#!/usr/bin/env bash
# Regenerates kernels/src/test/resources/golden/*.bin from the Java link codecs (run from the repo root).
# Needs the runtime module built: JAVA_HOME=... mvn -B -q -o -pl runtime package -DskipTests
set -euo pipefail
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
"$JAVA_HOME/bin/javac" --add-modules jdk.incubator.vector -cp runtime/target/classes -d "$build" \
    kernels/src/test/golden/GoldenFrames.java
"$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
    -cp "$build:runtime/target/classes" GoldenFrames kernels/src/test/resources/golden
