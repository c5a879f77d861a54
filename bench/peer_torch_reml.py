#!/usr/bin/python3
"""The torch peer of bench/bench_ad.c: value and gradient (autograd) of the
dense REML criterion

    f(theta) = log|V| + log|X'V^-1 X| + y'P y,   V = Z G Z' + sigma2 I,

with X = [1, days], Z = [Z1 | Z2], Z1 the one-hot design of the groups,
Z2 = Z1 * days, G = diag(exp(theta0) 1_q, exp(theta1) 1_q),
sigma2 = exp(theta2), in float64, dense, through torch.linalg.cholesky and
torch.cholesky_solve, with the log-determinants from the Cholesky diagonals.

Usage: peer_torch_reml.py DATA THREADS, where DATA holds "n q", then theta,
then n lines "y days code" (bench_ad writes it).  The timed call is the whole
of value + gradient from (theta, y, days, codes), as statjit's compiled
value_and_grad computes it: the design, V, the factorisations and the
backward pass.  Prints value, gradient, and the median seconds of many timed
calls (after warm-up), one "key values" line each.
"""
import statistics
import sys
import time

import torch


def reml(theta, y, x, days, codes, q):
    z1 = torch.nn.functional.one_hot(codes, q).to(torch.float64)
    return reml_z(theta, y, x, z1, z1 * days[:, None])


def reml_z(theta, y, x, z1, z2):
    """The criterion for given random-effect designs (also bench/peer_torch_vmap.py's)."""
    n = y.shape[0]
    t = torch.exp(theta)
    v = t[0] * (z1 @ z1.T) + t[1] * (z2 @ z2.T) + t[2] * torch.eye(n, dtype=torch.float64)
    l = torch.linalg.cholesky(v)
    vinv_x = torch.cholesky_solve(x, l)
    vinv_y = torch.cholesky_solve(y[:, None], l)[:, 0]
    xtvx = x.T @ vinv_x
    b = x.T @ vinv_y
    lx = torch.linalg.cholesky(xtvx)
    coef = torch.cholesky_solve(b[:, None], lx)[:, 0]
    ypy = y @ vinv_y - b @ coef
    logdet_v = 2 * torch.log(torch.diagonal(l)).sum()
    logdet_x = 2 * torch.log(torch.diagonal(lx)).sum()
    return logdet_v + logdet_x + ypy


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    with open(path) as f:
        n, q = (int(w) for w in f.readline().split())
        theta0 = [float(w) for w in f.readline().split()]
        rows = [line.split() for line in f if line.strip()]
    assert len(rows) == n
    y = torch.tensor([float(r[0]) for r in rows], dtype=torch.float64)
    days = torch.tensor([float(r[1]) for r in rows], dtype=torch.float64)
    codes = torch.tensor([int(float(r[2])) for r in rows], dtype=torch.int64)
    x = torch.stack([torch.ones(n, dtype=torch.float64), days], dim=1)
    theta_in = torch.tensor(theta0, dtype=torch.float64)

    def value_and_grad():
        theta = theta_in.clone().requires_grad_(True)
        value = reml(theta, y, x, days, codes, q)
        (grad,) = torch.autograd.grad(value, theta)
        return value, grad

    warm = []
    for _ in range(5):  # warm-up; their median sizes the timed run
        t0 = time.perf_counter()
        value, grad = value_and_grad()
        warm.append(time.perf_counter() - t0)
    per_call = statistics.median(warm)
    nrep = max(21, min(1001, int(2.0 / per_call))) | 1
    times = []
    for _ in range(nrep):
        t0 = time.perf_counter()
        value_and_grad()
        times.append(time.perf_counter() - t0)
    print("torch %s" % torch.__version__)
    print("threads %d" % torch.get_num_threads())
    print("value %.17g" % value.item())
    print("grad %s" % " ".join("%.17g" % g for g in grad.tolist()))
    print("median_s %.9g nrep %d" % (statistics.median(times), nrep))


if __name__ == "__main__":
    main()
