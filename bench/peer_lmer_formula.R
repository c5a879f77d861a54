# Peer of bench_lmm_large: lme4::lmer (REML, lme4's default optimizer) of a
# formula on a CSV file, repeated in one R process after a warm-up.
# Usage: Rscript peer_lmer_formula.R DATA.csv 'FORMULA' NREP
# String columns are read as factors (read.csv(stringsAsFactors = TRUE)).
# Prints: criterion <REML criterion>; median_s <median seconds of one lmer
# call> nrep <n>.  Only the lmer calls are timed (not
# read.csv): lmer(formula, data) includes lme4's model frame and design, as
# statjit's timed fit includes its formula front end.
args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 3) stop("usage: Rscript peer_lmer_formula.R DATA.csv FORMULA NREP")
suppressMessages(library(lme4))
d <- read.csv(args[1], stringsAsFactors = TRUE)
form <- as.formula(args[2])
nrep <- as.integer(args[3])
fit <- lmer(form, d)   # warm-up
t <- numeric(nrep)
for (i in seq_len(nrep)) {
  t0 <- proc.time()[["elapsed"]]
  fit <- lmer(form, d)
  t[i] <- proc.time()[["elapsed"]] - t0
}
# proc.time has 1 ms resolution: when the median rounds to zero (a small data
# set), the mean of a second timed loop of nrep calls instead.
med <- median(t)
if (med <= 0) {
  t0 <- proc.time()[["elapsed"]]
  for (i in seq_len(nrep)) fit <- lmer(form, d)
  med <- (proc.time()[["elapsed"]] - t0) / nrep
}
cat(sprintf("criterion %.17g\n", REMLcrit(fit)))
cat(sprintf("median_s %.9g nrep %d\n", med, nrep))
