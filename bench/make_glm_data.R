# Writes the GLM benchmark data (bench/bench_glm.c runs this):
#   Rscript make_glm_data.R OUT.csv N P [NRESP]
# A Poisson design: an intercept and P-1 standard normal columns, true β
# with β0 = 0.5 and the others alternating ±0.1·(1 + j %% 3)/P·3, y ~
# Poisson(exp(Xβ)).  With NRESP > 1, NRESP responses from the same X
# (columns y1..yNRESP, β scaled per response).  Fixed seed.
args <- commandArgs(trailingOnly = TRUE)
out <- args[1]; n <- as.integer(args[2]); p <- as.integer(args[3])
nresp <- if (length(args) >= 4) as.integer(args[4]) else 1L
set.seed(20261122)
X <- cbind(1, matrix(rnorm(n * (p - 1)), n, p - 1))
colnames(X) <- c("x0", paste0("x", seq_len(p - 1)))
beta <- c(0.5, (-1)^(1:(p - 1)) * 0.1 * (1 + (1:(p - 1)) %% 3) * 3 / p)
Y <- sapply(seq_len(nresp), function(k) rpois(n, exp(X %*% (beta * (0.8 + 0.4 * k / nresp)))))
colnames(Y) <- paste0("y", seq_len(nresp))
d <- cbind(Y, X[, -1, drop = FALSE])
write.table(format(d, digits = 17), out, sep = ",", row.names = FALSE, quote = FALSE)
