# Peer of bench_lmm: lme4::lmer on sleepstudy, Reaction ~ Days + (Days | Subject)
# (REML, lme4's default optimizer), repeated in one R process after a warm-up.
# Usage: Rscript peer_lmer.R <sleepstudy.csv> <nrep>
# Prints: criterion <REML criterion>; median_s <median seconds of one lmer call> nrep <n>
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(lme4))
d <- read.csv(args[1], stringsAsFactors = TRUE)
d$Subject <- factor(as.character(d$Subject))
nrep <- if (length(args) > 1) as.integer(args[2]) else 50L
fit <- lmer(Reaction ~ Days + (Days | Subject), d)   # warm-up
t <- numeric(nrep)
for (i in seq_len(nrep)) {
  t0 <- proc.time()[["elapsed"]]
  fit <- lmer(Reaction ~ Days + (Days | Subject), d)
  t[i] <- proc.time()[["elapsed"]] - t0
}
# proc.time has 1 ms resolution: also time the whole loop and use the mean
# when the median rounds to zero.
t0 <- proc.time()[["elapsed"]]
for (i in seq_len(nrep)) fit <- lmer(Reaction ~ Days + (Days | Subject), d)
mean_s <- (proc.time()[["elapsed"]] - t0) / nrep
cat(sprintf("criterion %.12g\n", REMLcrit(fit)))
cat(sprintf("median_s %.9g nrep %d\n", if (median(t) > 0) median(t) else mean_s, nrep))
cat(sprintf("mean_s %.9g\n", mean_s))
