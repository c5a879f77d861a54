#!/usr/bin/env bash
# End to end: statjit lmm --json (and the demo) on the bundled data against
# lme4 (golden/lmm_*.json, copies of ../shared/data/golden, "polished": the
# optimum; golden/cli_cases.json from tests/cli/make_golden.R).  The REML
# criterion and ML deviance to 1e-6, fixed effects, standard errors,
# standard deviations and correlations to 1e-4 (relative).
# Usage: lmm.sh STATJIT JSON_CHECK DATA_DIR GOLDEN_DIR
statjit=$1 check=$2 data=$3 golden=$4
source "$(dirname "$0")/lib.sh"
cases=$golden/cli_cases.json

# fit NAME ARGS... -> $tmp/NAME.json, checked for the keys of every lmm object.
fit() {
  local name=$1; shift
  run 0 "$statjit" lmm "$@" --json
  printf '%s\n' "$out" >"$tmp/$name.json"
  "$check" "$tmp/$name.json" str model lmm has criterion has loglik has aic has bic has n \
    has fixed_effects has random_effects has correlations has converged has iterations \
    has singular bool converged true bool singular false || nfail=$((nfail + 1))
}
verify() { # NAME GOLDEN CHECKS...
  local name=$1 gold=$2; shift 2
  "$check" "$tmp/$name.json" --golden "$gold" "$@" || nfail=$((nfail + 1))
}

# sleepstudy, REML, correlated intercept and slope.
g=polished
fit sleep "$data/sleepstudy.csv" 'Reaction ~ Days + (Days | Subject)'
verify sleep "$golden/lmm_sleepstudy.json" str criterion REML num n 180 0 \
  gold reml_criterion $g/REMLcrit 1e-6 gold loglik $g/logLik_REML 1e-6 \
  gold 'fixed_effects/[name=(Intercept)]/estimate' "$g/fixef/(Intercept)" 1e-4 \
  gold 'fixed_effects/[name=Days]/estimate' $g/fixef/Days 1e-4 \
  gold 'fixed_effects/[name=(Intercept)]/std_error' "$g/fixef_se/(Intercept)" 1e-4 \
  gold 'fixed_effects/[name=Days]/std_error' $g/fixef_se/Days 1e-4 \
  gold 'random_effects/[group=Subject&name=(Intercept)]/std_dev' "$g/varcomp/Subject/stddev/(Intercept)" 1e-4 \
  gold 'random_effects/[group=Subject&name=Days]/std_dev' $g/varcomp/Subject/stddev/Days 1e-4 \
  gold 'random_effects/[group=Subject&name=(Intercept)]/variance' "$g/varcomp/Subject/variance/(Intercept)" 1e-4 \
  gold 'random_effects/[group=Subject&name=Days]/variance' $g/varcomp/Subject/variance/Days 1e-4 \
  gold 'random_effects/[group=Residual]/std_dev' $g/sigma 1e-4 \
  len random_effects 3 str 'random_effects/[2]/group' Residual \
  len correlations 1 str 'correlations/[0]/group' Subject \
  str 'correlations/[0]/names/[0]' '(Intercept)' str 'correlations/[0]/names/[1]' Days \
  gold 'correlations/[0]/corr' $g/varcomp/Subject/correlation/[0]/[1] 1e-4
verify sleep "$cases" gold aic lmm_sleepstudy_reml/aic 1e-6 gold bic lmm_sleepstudy_reml/bic 1e-6
no_err

# Dyestuff, REML, one random intercept.
fit dye "$data/Dyestuff.csv" 'Yield ~ 1 + (1 | Batch)'
verify dye "$golden/lmm_Dyestuff.json" num n 30 0 gold reml_criterion $g/REMLcrit 1e-6 \
  gold 'fixed_effects/[name=(Intercept)]/estimate' "$g/fixef/(Intercept)" 1e-4 \
  gold 'fixed_effects/[name=(Intercept)]/std_error' "$g/fixef_se/(Intercept)" 1e-4 \
  gold 'random_effects/[group=Batch&name=(Intercept)]/std_dev' "$g/varcomp/Batch/stddev/(Intercept)" 1e-4 \
  gold 'random_effects/[group=Residual]/std_dev' $g/sigma 1e-4 len correlations 0

# ML (--ml): the deviance, and the rest at the ML optimum.
c=lmm_sleepstudy_ml
fit sleep_ml "$data/sleepstudy.csv" 'Reaction ~ Days + (Days | Subject)' --ml
verify sleep_ml "$cases" str criterion ML gold deviance $c/value 1e-6 \
  gold loglik $c/loglik 1e-6 gold aic $c/aic 1e-6 gold bic $c/bic 1e-6 \
  gold 'fixed_effects/[name=(Intercept)]/estimate' "$c/fixef/(Intercept)" 1e-4 \
  gold 'fixed_effects/[name=Days]/std_error' $c/se/Days 1e-4 \
  gold 'random_effects/[group=Subject&name=(Intercept)]/std_dev' "$c/sd/Subject.(Intercept)" 1e-4 \
  gold 'random_effects/[group=Subject&name=Days]/std_dev' $c/sd/Subject.Days 1e-4 \
  gold 'random_effects/[group=Residual]/std_dev' $c/sd/Residual 1e-4 \
  gold 'correlations/[0]/corr' "$c/corr/Subject.(Intercept).Days" 1e-4
if [[ "$(cat "$tmp/sleep_ml.json")" == *reml_criterion* ]]; then
  echo "FAIL: an ML fit reports reml_criterion"; nfail=$((nfail + 1))
fi
c=lmm_dyestuff_ml
fit dye_ml "$data/Dyestuff.csv" 'Yield ~ 1 + (1 | Batch)' --ml
verify dye_ml "$cases" gold deviance $c/value 1e-6 \
  gold 'random_effects/[group=Batch]/std_dev' "$c/sd/Batch.(Intercept)" 1e-4

# (x || g): two independent terms, no correlation; lme4 calls the second
# group Subject.1.
c=lmm_sleepstudy_indep
fit sleep_indep "$data/sleepstudy.csv" 'Reaction ~ Days + (Days || Subject)'
verify sleep_indep "$cases" gold reml_criterion $c/value 1e-6 len correlations 0 \
  len random_effects 3 \
  gold 'random_effects/[group=Subject&name=(Intercept)]/std_dev' "$c/sd/Subject.(Intercept)" 1e-4 \
  gold 'random_effects/[group=Subject.1&name=Days]/std_dev' $c/sd/Subject.1.Days 1e-4 \
  gold 'fixed_effects/[name=Days]/std_error' $c/se/Days 1e-4

# Text output: lme4's summary layout.
run 0 "$statjit" lmm "$data/sleepstudy.csv" 'Reaction ~ Days + (Days | Subject)'
for text in "Linear mixed model fit by REML" "Formula: Reaction ~ Days + (Days | Subject)" \
            "Data: sleepstudy" "REML criterion at convergence: 1743.6" "Random effects:" \
            "Groups" "Std.Dev." "Corr" "Residual" "Number of obs: 180, groups:  Subject, 18" \
            "Fixed effects:" "t value"; do
  has_out "$text"
done
no_err

# The demo: statjit with no arguments and statjit demo.
run 0 "$statjit"
has_out "Linear mixed model fit by REML"
has_out "Reaction ~ Days + (Days | Subject)"
run 0 "$statjit" demo --json
printf '%s\n' "$out" >"$tmp/demo.json"
verify demo "$golden/lmm_sleepstudy.json" str model lmm gold reml_criterion $g/REMLcrit 1e-6

# Progress: never when stderr is not a terminal (here it is a file); with
# STATJIT_PROGRESS=1 it is drawn on stderr and stdout stays one JSON object.
[[ "$err" == *fitting* ]] && { echo "FAIL: progress line without a terminal"; nfail=$((nfail + 1)); }
run 0 env STATJIT_PROGRESS=1 "$statjit" lmm "$data/Dyestuff.csv" 'Yield ~ 1 + (1 | Batch)' --json
has_err "statjit: fitting lmm (REML)... "
printf '%s\n' "$out" >"$tmp/progress.json"
verify progress "$golden/lmm_Dyestuff.json" str model lmm

# Rows with missing values: the note, and the fit on the rows kept.
{ head -1 "$data/sleepstudy.csv"; tail -n +2 "$data/sleepstudy.csv" | sed '5s/^[^,]*,/NA,/; 9s/^[^,]*,/,/'; } >"$tmp/sleep_na.csv"
run 0 "$statjit" lmm "$tmp/sleep_na.csv" 'Reaction ~ Days + (Days | Subject)' --json
has_err "note: 2 rows with missing values dropped"
printf '%s\n' "$out" >"$tmp/sleep_na.json"
verify sleep_na "$cases" num n 178 0

# Degenerate data (docs/reliability.md, fit robustness): exit 1 with the
# cause.  An all-zero fixed-effect column is named; a constant response has
# no REML optimum (lme4 reports -Inf).
run 1 "$statjit" lmm "$data/Dyestuff.csv" 'Yield ~ 1 + I(0 * Yield) + (1 | Batch)'
has_err "column 2 (I(0 * Yield)) is all zero"
run 1 "$statjit" lmm "$data/Dyestuff.csv" 'I(0 * Yield + 2) ~ 1 + (1 | Batch)'
has_err "y is fitted exactly by the fixed effects"

finish
