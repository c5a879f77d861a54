# Shared helpers of the statjit command's tests (sourced).
#   run STATUS CMD...        runs CMD, stdout in $out, stderr in $err; fails
#                            unless the exit status is STATUS
#   has_err TEXT / has_out TEXT   fixed-string search in stderr / stdout
#   no_out                   stdout is empty
# Each failure is counted and reported; finish prints the tally and exits.
set -u
nfail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out= err= last=

run() {
  local want=$1; shift
  last="$*"
  local status=0
  "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
  out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
  if [[ $status -ne $want ]]; then
    echo "FAIL: exit status $status, expected $want: $last"
    echo "  stderr: $err"
    nfail=$((nfail + 1))
  else
    echo "ok   exit $status: $last"
  fi
}
has_err() {
  if [[ "$err" != *"$1"* ]]; then
    echo "FAIL: stderr of '$last' lacks: $1"
    echo "  stderr was: $err"
    nfail=$((nfail + 1))
  fi
}
has_out() {
  if [[ "$out" != *"$1"* ]]; then
    echo "FAIL: stdout of '$last' lacks: $1"
    nfail=$((nfail + 1))
  fi
}
no_out() {
  if [[ -n "$out" ]]; then
    echo "FAIL: stdout of '$last' is not empty: $out"
    nfail=$((nfail + 1))
  fi
}
no_err() {
  if [[ -n "$err" ]]; then
    echo "FAIL: stderr of '$last' is not empty: $err"
    nfail=$((nfail + 1))
  fi
}
finish() {
  if ((nfail)); then
    echo "$nfail check(s) failed"
    exit 1
  fi
  echo "all checks passed"
  exit 0
}
