#!/usr/bin/python3
"""The torch peer of bench/bench_vmap.c: B evaluations of the dense REML
criterion and its gradient with respect to theta (as bench/peer_torch_reml.py
computes one), each item with its own theta and y, sharing X, days and the
group codes, batched in one call: functorch.vmap(functorch.grad_and_value(f))
when functorch is importable (Debian's torch 1.13 ships it), else the same
criterion written on batched tensors ([B, n, n] covariance matrices) and
autograd of the sum of the B values (whose gradient with respect to theta
[B, 3] is each item's gradient).

Usage: peer_torch_vmap.py DATA THREADS, where DATA holds "B n q", B lines of
theta, n lines "days code", then B lines of y (n values each); bench_vmap
writes it.  Prints the method, value and gradient of every item (one line
each), and the median seconds of the timed batched calls.
"""
import statistics
import sys
import time

import torch

from peer_torch_reml import reml_z

try:
    import functorch
except ImportError:  # pragma: no cover - depends on the torch build
    functorch = None


def reml_batched(theta, y, x, z1, z2):
    """theta [B, 3], y [B, n] -> values [B]."""
    n = y.shape[1]
    t = torch.exp(theta)
    g1, g2 = z1 @ z1.T, z2 @ z2.T
    eye = torch.eye(n, dtype=torch.float64)
    v = t[:, 0, None, None] * g1 + t[:, 1, None, None] * g2 + t[:, 2, None, None] * eye
    l = torch.linalg.cholesky(v)
    xb = x.expand(y.shape[0], n, x.shape[1])
    vinv_x = torch.cholesky_solve(xb, l)
    vinv_y = torch.cholesky_solve(y[:, :, None], l)
    xtvx = x.T @ vinv_x
    b = x.T @ vinv_y
    lx = torch.linalg.cholesky(xtvx)
    coef = torch.cholesky_solve(b, lx)
    ypy = (y[:, :, None] * vinv_y).sum((1, 2)) - (b * coef).sum((1, 2))
    logdet_v = 2 * torch.log(torch.diagonal(l, dim1=1, dim2=2)).sum(1)
    logdet_x = 2 * torch.log(torch.diagonal(lx, dim1=1, dim2=2)).sum(1)
    return logdet_v + logdet_x + ypy


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    with open(path) as f:
        nb, n, q = (int(w) for w in f.readline().split())
        thetas = [[float(w) for w in f.readline().split()] for _ in range(nb)]
        rows = [f.readline().split() for _ in range(n)]
        ys = [[float(w) for w in f.readline().split()] for _ in range(nb)]
    days = torch.tensor([float(r[0]) for r in rows], dtype=torch.float64)
    codes = torch.tensor([int(float(r[1])) for r in rows], dtype=torch.int64)
    theta = torch.tensor(thetas, dtype=torch.float64)
    y = torch.tensor(ys, dtype=torch.float64)
    x = torch.stack([torch.ones(n, dtype=torch.float64), days], dim=1)

    if functorch is not None:
        method = "functorch.vmap(grad_and_value)"

        def call():
            # the design is part of the timed call, as in statjit's
            z1 = torch.nn.functional.one_hot(codes, q).to(torch.float64)
            z2 = z1 * days[:, None]
            f = functorch.grad_and_value(lambda t, yy: reml_z(t, yy, x, z1, z2))
            grad, value = functorch.vmap(f)(theta, y)
            return value, grad
    else:
        method = "batched tensors + autograd"

        def call():
            z1 = torch.nn.functional.one_hot(codes, q).to(torch.float64)
            z2 = z1 * days[:, None]
            t = theta.clone().requires_grad_(True)
            value = reml_batched(t, y, x, z1, z2)
            (grad,) = torch.autograd.grad(value.sum(), t)
            return value.detach(), grad

    warm = []
    for _ in range(3):
        t0 = time.perf_counter()
        value, grad = call()
        warm.append(time.perf_counter() - t0)
    nrep = max(5, min(51, int(6.0 / statistics.median(warm)))) | 1
    times = []
    for _ in range(nrep):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    print("torch %s" % torch.__version__)
    print("method %s" % method)
    print("threads %d" % torch.get_num_threads())
    for i in range(nb):
        print("item %d %.17g %s" % (i, value[i].item(),
                                    " ".join("%.17g" % g for g in grad[i].tolist())))
    print("median_s %.9g nrep %d" % (statistics.median(times), nrep))


if __name__ == "__main__":
    main()
