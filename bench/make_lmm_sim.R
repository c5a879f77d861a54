# Writes the simulated mixed-model data of bench/bench_lmm_large.c:
#   Rscript make_lmm_sim.R OUT.csv N [NGROUP]
#
#   y = β0 + β1 x1 + β2 x2 + b0[g] + b1[g] x1 + ε
#
# N rows in NGROUP (default 100) groups, the rows dealt to the groups in turn
# (group g of row i is (i - 1) %% NGROUP + 1, so each group has N/NGROUP
# rows), x1 and x2 standard normal, the random intercept and slope (on x1)
# correlated: sd 2 and 0.5, correlation 0.4; ε ~ N(0, 1.5²); β = (10, 1.5,
# -0.8): three fixed effects, the intercept and two covariates.  The model
# fitted is y ~ x1 + x2 + (x1 | g).  Fixed seed per N (set.seed(20261122 +
# N)), so each size is the same data on every run; columns y, x1, x2, g (g
# written as "G001".."G100", read as a factor), numbers to 17 digits.
args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 2) stop("usage: Rscript make_lmm_sim.R OUT.csv N [NGROUP]")
out <- args[1]
n <- as.integer(args[2])
ngroup <- if (length(args) >= 3) as.integer(args[3]) else 100L
set.seed(20261122L + n)
g <- (seq_len(n) - 1L) %% ngroup + 1L
x1 <- rnorm(n)
x2 <- rnorm(n)
sd_b <- c(2, 0.5)
rho <- 0.4
S <- diag(sd_b) %*% matrix(c(1, rho, rho, 1), 2) %*% diag(sd_b)
b <- matrix(rnorm(2 * ngroup), ngroup, 2) %*% chol(S)
beta <- c(10, 1.5, -0.8)
y <- beta[1] + beta[2] * x1 + beta[3] * x2 + b[g, 1] + b[g, 2] * x1 + rnorm(n, sd = 1.5)
d <- data.frame(y = sprintf("%.17g", y), x1 = sprintf("%.17g", x1),
                x2 = sprintf("%.17g", x2), g = sprintf("G%03d", g))
write.csv(d, out, row.names = FALSE, quote = FALSE)
