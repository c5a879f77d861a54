#!/usr/bin/env bash
# The statjit command's interface: help texts, usage errors (exit 2),
# data and formula errors (exit 1) with their messages and positions, the
# dropped-rows note.  Needs no fit.  Usage: usage.sh STATJIT DATA_DIR
statjit=$1 data=$2
source "$(dirname "$0")/lib.sh"

# Help: exit 0, on stdout.
for args in "--help" "-h" "lmm --help" "glm --help" "demo --help" "glm x.csv --help"; do
  run 0 "$statjit" $args
  has_out "Usage: statjit"
  no_err
done
run 0 "$statjit" glm --help
has_out "--family NAME"
has_out "--weights COL"
run 0 "$statjit" lmm --help
has_out "--ml"
run 0 "$statjit" --version
has_out "statjit 0."

# Usage errors: exit 2, a message and a hint on stderr, nothing on stdout.
run 2 "$statjit" frobnicate
has_err "unknown command 'frobnicate'"
no_out
run 2 "$statjit" lmm
has_err "missing DATA.csv and 'FORMULA'"
has_err "Try 'statjit lmm --help'"
no_out
run 2 "$statjit" glm "$data/mtcars.csv"
has_err "missing 'FORMULA' after DATA.csv"
run 2 "$statjit" lmm "$data/sleepstudy.csv" 'Reaction ~ Days + (1 | Subject)' extra
has_err "unexpected argument 'extra'"
run 2 "$statjit" lmm "$data/sleepstudy.csv" 'Reaction ~ Days + (1 | Subject)' --bogus
has_err "unknown option '--bogus'"
run 2 "$statjit" lmm "$data/sleepstudy.csv" 'Reaction ~ Days + (1 | Subject)' --family poisson
has_err "unknown option '--family'"
run 2 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt' --ml
has_err "unknown option '--ml'"
run 2 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt' --family
has_err "option '--family' needs a value"
run 2 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt' --weights=
has_err "option '--weights' needs a value"
run 2 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt' --family quasipoisson
has_err "unknown family 'quasipoisson' (families: gaussian, binomial, poisson, Gamma"
run 2 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt' --link logarithm
has_err "unknown link 'logarithm' (links: identity, log"
run 2 "$statjit" demo extra
has_err "unexpected argument 'extra'"

# Data and formula errors: exit 1, the message on stderr, nothing on stdout.
run 1 "$statjit" lmm "$data/no-such-file.csv" 'y ~ x + (1 | g)'
has_err "no-such-file.csv: cannot open: No such file or directory"
no_out
printf 'a,b\n1,2\n3\n' >"$tmp/bad.csv"
run 1 "$statjit" glm "$tmp/bad.csv" 'a ~ b'
has_err "line 3: 1 field, header has 2"
run 1 "$statjit" lmm "$data/sleepstudy.csv" 'Reaction ~ dayz + (1 | Subject)'
has_err "formula:1:12: unknown column 'dayz' (columns: Reaction, Days, Subject)"
has_err "  Reaction ~ dayz + (1 | Subject)"
has_err $'\n             ^'
no_out
run 1 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt +'
has_err "formula:1:"
has_err "^"
run 1 "$statjit" lmm "$data/sleepstudy.csv" 'Reaction ~ Days + (1 | Subject'
has_err "formula:1:31: expected ')'"
run 1 "$statjit" glm "$data/mtcars.csv" 'mpg ~ poly(wt, 2)'
has_err "poly"
run 1 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt' --weights zz
has_err "--weights: unknown column 'zz' (columns: model, mpg, cyl"
run 1 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt' --offset model
has_err "--offset: column 'model' is not numeric"
run 1 "$statjit" lmm "$data/sleepstudy.csv" 'Reaction ~ Days'
has_err "no random-effect term"
run 1 "$statjit" lmm "$data/sleepstudy.csv" '~ Days + (1 | Subject)'
has_err "no response"
run 1 "$statjit" glm "$data/sleepstudy.csv" 'Reaction ~ Days + (1 | Subject)'
has_err "(1 | Subject) is a random-effect term"
run 1 "$statjit" glm "$data/cbpp_small.csv" 'cbind(incidence, size - incidence) ~ period'
has_err "needs --family binomial"
run 1 "$statjit" lmm "$data/cbpp_small.csv" 'cbind(incidence, size - incidence) ~ period + (1 | herd)'
has_err "is for glm --family binomial"

# --weights naming an unknown column is reported before any fit; a formula
# error is reported without a dropped-rows note.
printf 'y,x,g\n1,1,a\n2,NA,a\n3,3,b\n,4,b\n5,5,c\n6,6,c\n' >"$tmp/na.csv"
run 1 "$statjit" glm "$tmp/na.csv" 'y ~ x' --weights nope
has_err "unknown column 'nope'"
printf 'y,x,w\n1,1,1\n2,2,NA\n3,3,1\n' >"$tmp/naw.csv"
run 1 "$statjit" glm "$tmp/naw.csv" 'y ~ x + q'
if [[ "$err" == *"note:"* ]]; then
  echo "FAIL: a formula error printed a dropped-rows note"; nfail=$((nfail + 1))
fi

finish
