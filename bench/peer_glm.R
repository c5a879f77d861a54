# The R peer of bench/bench_glm.c: glm(y ~ ., poisson) on the CSV that
# make_glm_data.R wrote (response y1), timed as a median of NREP fits.
# Usage: Rscript peer_glm.R DATA.csv NREP.  Prints "coef <values>" and
# "median_s <seconds> nrep <NREP>".
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); nrep <- as.integer(args[2])
x <- d[, grepl("^x", names(d)), drop = FALSE]
dd <- data.frame(y = d$y1, x)
t <- numeric(nrep)
for (r in seq_len(nrep)) {
  t0 <- proc.time()[["elapsed"]]
  f <- glm(y ~ ., family = poisson(), data = dd)
  t[r] <- proc.time()[["elapsed"]] - t0
}
cat("coef", sprintf("%.17g", coef(f)), "\n")
cat("iter", f$iter, "\n")
cat("median_s", median(t), "nrep", nrep, "\n")
