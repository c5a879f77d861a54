#!/usr/bin/env bash
# cmake --install puts the statjit command in bin/ and the demo's data in
# share/statjit/, and the installed command runs the demo from any directory,
# also through a symbolic link (it looks in ../share/statjit next to the
# resolved program before the source tree's data/).
# Usage: install.sh BUILD_DIR
build=$1
source "$(dirname "$0")/lib.sh"
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in "$prefix/bin/statjit" "$prefix/share/statjit/sleepstudy.csv"; do
  [[ -e "$f" ]] || { echo "FAIL: $f not installed"; nfail=$((nfail + 1)); }
done
run 0 "$prefix/bin/statjit" demo
has_out "Linear mixed model fit by REML"
# From another directory, through a symbolic link to the program.
ln -s "$prefix/bin/statjit" "$tmp/sj"
(cd / && "$tmp/sj" demo --json) >"$tmp/demo.json" 2>"$tmp/demo.err" \
  || { echo "FAIL: the installed demo through a link"; cat "$tmp/demo.err"; nfail=$((nfail + 1)); }
finish
