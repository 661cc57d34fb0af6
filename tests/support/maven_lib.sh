# Sourced by the fetch_*.sh scripts: copy Maven artifacts and their runtime dependencies from
# Maven Central into one lib directory, through a generated pom.
#   maven_lib DEST NAME <<'XML'
#     <dependencies>...</dependencies>        (and <dependencyManagement> if needed)
#   XML
# writes DEST/pom.xml, copies the jars into DEST/lib and keeps Maven's output in DEST/mvn.log
# (printed when Maven fails, and the caller's `set -e` stops there).
maven_lib() {
  local dest="$1" name="$2"
  mkdir -p "$dest"
  {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n'
    printf '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
    printf '  <modelVersion>4.0.0</modelVersion>\n  <groupId>zkserver.tests</groupId>\n'
    printf '  <artifactId>%s</artifactId>\n  <version>1</version>\n' "$name"
    printf '  <packaging>pom</packaging>\n'
    cat
    printf '</project>\n'
  } >"$dest/pom.xml"
  mvn -q -B -f "$dest/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dest/lib" >"$dest/mvn.log" 2>&1 || { cat "$dest/mvn.log" >&2; return 1; }
}
