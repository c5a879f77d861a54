#!/usr/bin/python3
"""The statsmodels peer of bench/bench_glm.c.

Usage: peer_glm_statsmodels.py DATA.csv MODE NREP
  MODE single: sm.GLM(y1, X, family=Poisson()).fit() on the whole data,
               the median seconds of NREP fits;
  MODE loop:   one fit per response column y1..yB sharing X, the total
               seconds of the loop (median of NREP loops).
Prints "coef <values of the first fit>" and "median_s <s> nrep <NREP>".
"""
import statistics
import sys
import time

import numpy as np
import statsmodels.api as sm


def main():
    path, mode, nrep = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    ycols = [i for i, h in enumerate(header) if h.startswith("y")]
    xcols = [i for i, h in enumerate(header) if h.startswith("x")]
    x = np.column_stack([np.ones(data.shape[0]), data[:, xcols]])
    fam = sm.families.Poisson()
    times, first = [], None
    for _ in range(nrep):
        t0 = time.perf_counter()
        if mode == "single":
            r = sm.GLM(data[:, ycols[0]], x, family=fam).fit()
            first = r.params
        else:
            for k, c in enumerate(ycols):
                r = sm.GLM(data[:, c], x, family=fam).fit()
                if k == 0:
                    first = r.params
        times.append(time.perf_counter() - t0)
    print("coef", " ".join("%.17g" % v for v in first))
    print("median_s %.9g nrep %d" % (statistics.median(times), nrep))


if __name__ == "__main__":
    main()
