# Reference values for the statjit command's end-to-end tests
# (tests/cli/glm.sh, tests/cli/lmm.sh) on the cases the shared golden files
# (tests/cli/golden/{lmm,glm}_*.json, copies of ../shared/data/golden) do not
# cover: cbind binomial responses, prior weights, offsets from a column and
# from offset() terms, dropped rows, ML fits and uncorrelated (||) terms.
#
# Run from the repository root (R 4.2.2, lme4 1.1-31, jsonlite):
#   Rscript tests/cli/make_golden.R
# It writes tests/cli/golden/cli_cases.json.  LMM values are a polished fit
# (bobyqa to a tight tolerance): the optimum, not lmer's default stopping point.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
d <- function(f) read.csv(file.path("tests/data", f))

glm_case <- function(m) {
  s <- summary(m)
  cf <- coef(s)
  list(coefficients = setNames(as.list(cf[, 1]), rownames(cf)),
       se = setNames(as.list(cf[, 2]), rownames(cf)),
       statistic = setNames(as.list(cf[, 3]), rownames(cf)),
       p_value = setNames(as.list(cf[, 4]), rownames(cf)),
       deviance = deviance(m), null_deviance = m$null.deviance,
       df_residual = m$df.residual, df_null = m$df.null, aic = AIC(m),
       dispersion = s$dispersion, n = nobs(m), nobs_rows = nrow(model.frame(m)))
}
# R's defaults (epsilon = 1e-8, maxit = 25): the fit R users get, standard
# errors included (R takes them from the weights of the last-but-one iterate).
rdefault <- glm.control(epsilon = 1e-8, maxit = 25)

cbpp <- d("cbpp_small.csv")
groups <- d("groups.csv")
sleep <- d("sleepstudy.csv"); sleep$Subject <- factor(sleep$Subject)
dye <- d("Dyestuff.csv")

cases <- list()
cases$glm_cbpp_binomial <- glm_case(glm(cbind(incidence, size - incidence) ~ factor(period),
                                        family = binomial, data = cbpp, control = rdefault))
cases$glm_cbpp_poisson_offset <- glm_case(glm(incidence ~ factor(period) + offset(log(size)),
                                              family = poisson, data = cbpp, control = rdefault))
# weights from a column with missing values (2 rows dropped), offset from a
# column plus an offset() term.
cases$glm_groups_weights_offset <- glm_case(glm(y ~ x + g1 + offset(log(x)), weights = w,
                                                offset = x, data = groups,
                                                control = rdefault))

polish <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
lmm_case <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  sds <- vc[is.na(vc$var2), ]
  cors <- vc[!is.na(vc$var2), ]
  cf <- coef(summary(m))
  list(criterion = if (isREML(m)) "REML" else "ML",
       value = if (isREML(m)) unname(m@devcomp$cmp["REML"]) else unname(deviance(m)),
       fixef = setNames(as.list(cf[, 1]), rownames(cf)),
       se = setNames(as.list(cf[, 2]), rownames(cf)),
       sd = setNames(as.list(sds$sdcor), sub("[.]$", "", paste(sds$grp, ifelse(is.na(sds$var1), "", sds$var1), sep = "."))),
       variance = setNames(as.list(sds$vcov), sub("[.]$", "", paste(sds$grp, ifelse(is.na(sds$var1), "", sds$var1), sep = "."))),
       corr = setNames(as.list(cors$sdcor), paste(cors$grp, cors$var1, cors$var2, sep = ".")),
       loglik = as.numeric(logLik(m)), aic = AIC(m), bic = BIC(m), n = nobs(m))
}
cases$lmm_sleepstudy_ml <- lmm_case(lmer(Reaction ~ Days + (Days | Subject), sleep,
                                         REML = FALSE, control = polish))
cases$lmm_sleepstudy_reml <- lmm_case(lmer(Reaction ~ Days + (Days | Subject), sleep,
                                           control = polish))
cases$lmm_sleepstudy_indep <- lmm_case(lmer(Reaction ~ Days + (Days || Subject), sleep,
                                            control = polish))
cases$lmm_dyestuff_ml <- lmm_case(lmer(Yield ~ 1 + (1 | Batch), dye, REML = FALSE,
                                       control = polish))

cases$provenance <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                         generated = format(Sys.time(), tz = "UTC", usetz = TRUE))
writeLines(toJSON(cases, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/cli/golden/cli_cases.json")
