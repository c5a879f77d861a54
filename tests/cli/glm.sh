#!/usr/bin/env bash
# End to end: statjit glm --json on the bundled data against R's glm
# (golden/glm_*.json, copies of ../shared/data/golden; golden/cli_cases.json
# from tests/cli/make_golden.R).  Coefficients and standard errors to 1e-6,
# deviance and AIC to 1e-8 (relative), against R's default fit (glm_default
# in the shared files: what a user of R's glm sees, standard errors from the
# weights of the last iteration included).
# Usage: glm.sh STATJIT JSON_CHECK DATA_DIR GOLDEN_DIR
statjit=$1 check=$2 data=$3 golden=$4
source "$(dirname "$0")/lib.sh"

# fit NAME GOLDEN.json PREFIX ARGS... -> $tmp/NAME.json, checked for the
# keys every glm object has.
fit() {
  local name=$1; shift
  run 0 "$statjit" glm "$@" --json
  printf '%s\n' "$out" >"$tmp/$name.json"
  "$check" "$tmp/$name.json" str model glm has family has link has coefficients \
    has deviance has null_deviance has df_residual has df_null has aic has dispersion \
    has loglik has n has converged has iterations bool converged true \
    || nfail=$((nfail + 1))
}
# compare NAME GOLDEN.json PREFIX OURNAME=GOLDNAME...: coefficients and
# statistics of fit NAME against GOLDEN under PREFIX (e.g. glm_default).
compare() {
  local name=$1 gold=$2 prefix=$3; shift 3
  local checks=()
  for pair in "$@"; do
    local ours=${pair%=*} theirs=${pair##*=}
    checks+=(gold "coefficients/[name=$ours]/estimate" "$prefix/coefficients/$theirs" 1e-6
             gold "coefficients/[name=$ours]/std_error" "$prefix/se/$theirs" 1e-6)
  done
  checks+=(gold deviance "$prefix/deviance" 1e-8 gold aic "$prefix/aic" 1e-8
           gold null_deviance "$prefix/null_deviance" 1e-8
           gold df_residual "$prefix/df_residual" 0 gold df_null "$prefix/df_null" 0
           gold dispersion "$prefix/dispersion" 1e-6)
  "$check" "$tmp/$name.json" --golden "$gold" "${checks[@]}" || nfail=$((nfail + 1))
}

# warpbreaks, poisson: R's golden file uses tension's level order L, M, H.
tension='factor(tension, levels = c("L", "M", "H"))'
fit warpbreaks "$data/warpbreaks.csv" "breaks ~ wool + $tension" --family poisson
no_err
compare warpbreaks "$golden/glm_warpbreaks_poisson.json" glm_default \
  '(Intercept)=(Intercept)' woolB=woolB "${tension}M=tensionM" "${tension}H=tensionH"
"$check" "$tmp/warpbreaks.json" --golden "$golden/glm_warpbreaks_poisson.json" \
  str family poisson str link log num n 54 0 \
  gold "coefficients/[name=woolB]/statistic" glm_default/stat/woolB 1e-6 \
  num "coefficients/[name=woolB]/p_value" 6.4897752817402992e-05 1e-6 || nfail=$((nfail + 1))

# mtcars, gaussian (the default family) and Gamma with the log link; the
# family's case does not matter.
fit mtcars_gaussian "$data/mtcars.csv" 'mpg ~ wt + hp'
compare mtcars_gaussian "$golden/glm_mtcars_gaussian.json" glm_default \
  '(Intercept)=(Intercept)' wt=wt hp=hp
"$check" "$tmp/mtcars_gaussian.json" str family gaussian str link identity || nfail=$((nfail + 1))
fit mtcars_gamma "$data/mtcars.csv" 'mpg ~ wt + hp' --family gamma --link LOG
compare mtcars_gamma "$golden/glm_mtcars_gamma_log.json" glm_default \
  '(Intercept)=(Intercept)' wt=wt hp=hp
"$check" "$tmp/mtcars_gamma.json" --golden "$golden/glm_mtcars_gamma_log.json" \
  str family Gamma str link log gold loglik glm_default/logLik 1e-8 || nfail=$((nfail + 1))

# cbind(successes, failures): proportions with the trials as weights.
p='factor(period)'
fit cbpp "$data/cbpp_small.csv" "cbind(incidence, size - incidence) ~ $p" --family Binomial
compare cbpp "$golden/cli_cases.json" glm_cbpp_binomial '(Intercept)=(Intercept)' \
  "${p}2=${p}2" "${p}3=${p}3" "${p}4=${p}4"
# offset() in the formula.
fit cbpp_offset "$data/cbpp_small.csv" "incidence ~ $p + offset(log(size))" --family poisson
compare cbpp_offset "$golden/cli_cases.json" glm_cbpp_poisson_offset '(Intercept)=(Intercept)' \
  "${p}2=${p}2" "${p}3=${p}3" "${p}4=${p}4"
# --weights and --offset columns (rows with a missing weight dropped, with a
# note), the column offset added to offset(log(x)).
fit weights "$data/groups.csv" 'y ~ x + g1 + offset(log(x))' --weights w --offset x
has_err "note: 2 rows with missing values dropped"
compare weights "$golden/cli_cases.json" glm_groups_weights_offset '(Intercept)=(Intercept)' \
  x=x g1B=g1B g1C=g1C
# t statistics and their p-values (the dispersion is estimated here).
"$check" "$tmp/weights.json" --golden "$golden/cli_cases.json" num n 10 0 \
  gold "coefficients/[name=g1B]/statistic" glm_groups_weights_offset/statistic/g1B 1e-6 \
  gold "coefficients/[name=g1B]/p_value" glm_groups_weights_offset/p_value/g1B 1e-6 \
  gold "coefficients/[name=x]/p_value" glm_groups_weights_offset/p_value/x 1e-6 \
  || nfail=$((nfail + 1))

# Text output: R's summary.glm layout.
run 0 "$statjit" glm "$data/warpbreaks.csv" 'breaks ~ wool + tension' --family poisson
has_out "Coefficients:"
has_out "woolB"
has_out "Pr(>|z|)"
has_out "Residual deviance:"
has_out "AIC:"
has_out "Number of Fisher Scoring iterations:"
no_err

# A rank-deficient design (issue #7): as R, the later of the dependent
# columns is aliased, printed as NA ("aliased": true, null in --json), the
# other coefficients are R's mpg ~ wt + hp fit, and a warning names it.
run 0 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt + hp + I(2 * wt)'
has_out "Coefficients: (1 not defined because of singularities)"
has_out "I(2 * wt)         NA         NA      NA       NA"
has_out "Warning: X is rank deficient (rank 3 < 4 columns)"
fit aliased "$data/mtcars.csv" 'mpg ~ wt + hp + I(2 * wt)'
has_err "warning: X is rank deficient"
compare aliased "$golden/glm_mtcars_gaussian.json" glm_default \
  '(Intercept)=(Intercept)' wt=wt hp=hp
"$check" "$tmp/aliased.json" num rank 3 0 bool 'coefficients/[name=I(2 * wt)]/aliased' true \
  bool 'coefficients/[name=wt]/aliased' false || nfail=$((nfail + 1))
# ... and refused when every column is aliased.
run 1 "$statjit" glm "$data/mtcars.csv" 'mpg ~ 0 + I(0 * wt)'
has_err "aliased): I(0 * wt) (no column is left to fit)"
# R's power(lambda) link, spelled as in R (issue #7); R 4.2.2's
# glm(breaks ~ wool + tension, poisson(power(1/3)), warpbreaks) in
# tests/data/fit_robust_golden.h (pwb_*), tension's levels sorted here
# (H first), so the coefficients compared are those that do not depend on it.
fit power "$data/warpbreaks.csv" "breaks ~ wool + $tension" --family poisson \
  --link 'power(1/3)'
"$check" "$tmp/power.json" str link 'mu^0.333' num 'coefficients/[name=woolB]/estimate' \
  -0.19885407093626453 1e-6 num deviance 211.94545423889866 1e-8 \
  num aic 494.60953189440244 1e-8 num iterations 3 0 || nfail=$((nfail + 1))
run 1 "$statjit" glm "$data/warpbreaks.csv" 'breaks ~ wool' --family poisson --link power
has_err "needs its exponent"

# Model errors after the design: exit 1 with the library's message.
run 1 "$statjit" glm "$data/mtcars.csv" 'I(mpg - 20) ~ wt' --family poisson
has_err "statjit glm:"
run 1 "$statjit" glm "$data/mtcars.csv" 'mpg ~ wt' --family poisson --link logit
has_err "logit"
finish
