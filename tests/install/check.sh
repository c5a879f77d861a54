#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds two consumers against
# it: one through pkg-config, one through find_package(statjit).
# Usage: check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/statjit.h"
ls "$prefix"/lib*/libstatjit.so* "$prefix"/lib*/libstatjit.a >/dev/null

libdir=$(dirname "$(ls "$prefix"/lib*/pkgconfig/statjit.pc)")/..
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -std=c11 "$src/tests/install/consumer.c" $(pkg-config --cflags --libs statjit) \
   -Wl,-rpath,"$libdir" -o "$prefix/consumer_pc"
"$prefix/consumer_pc"

cmake -S "$src/tests/install" -B "$prefix/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/cm" >/dev/null
"$prefix/cm/consumer"
echo "install check passed"
