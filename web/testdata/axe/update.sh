#!/usr/bin/env bash
# Vendors axe-core (the accessibility engine the browser test injects into every customer page)
# into this directory: axe.min.js, its licence, and the version fetched. Run it to move to a new
# release, then run the browser test and commit what changed:
#   web/testdata/axe/update.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")"
version="${1:-4.14.1}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "axe-core@$version" >/dev/null && tar -xzf axe-core-*.tgz)
cp "$tmp/package/axe.min.js" axe.min.js
cp "$tmp/package/LICENSE" LICENSE
echo "$version" > VERSION
echo "axe-core $version vendored in $(pwd)"
