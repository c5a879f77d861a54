# Peer for bench_smooth: a loop of mgcv::gam(y ~ s(x, bs = "ps", k = m),
# method = "REML") over the problems in the binary file written by
# bench_smooth (nprob, n, m, knots[m + 4], then x[nprob, n], y[nprob, n] as
# doubles), with the knots given so that basis and penalty are statjit's.
# Prints "time <seconds>" for the whole loop and "lambda <i> <λ>" for the
# first problems (λ = sp / S.scale, on the unscaled difference penalty).
# Usage: Rscript peer_smooth_mgcv.R <file>
suppressMessages(library(mgcv))
args <- commandArgs(trailingOnly = TRUE)
con <- file(args[1], "rb")
hdr <- readBin(con, "double", 3)
nprob <- hdr[1]; n <- hdr[2]; m <- hdr[3]
knots <- readBin(con, "double", m + 4)
x <- matrix(readBin(con, "double", nprob * n), nrow = n)
y <- matrix(readBin(con, "double", nprob * n), nrow = n)
close(con)
lam <- numeric(nprob)
t0 <- proc.time()[["elapsed"]]
for (i in seq_len(nprob)) {
  d <- data.frame(x = x[, i], y = y[, i])
  fit <- gam(y ~ s(x, bs = "ps", k = m, m = c(2, 2)), data = d, knots = list(x = knots),
             method = "REML")
  lam[i] <- fit$sp / fit$smooth[[1]]$S.scale
}
t1 <- proc.time()[["elapsed"]]
cat(sprintf("time %.6f\n", t1 - t0))
for (i in 1:5) cat(sprintf("lambda %d %.17g\n", i - 1, lam[i]))
