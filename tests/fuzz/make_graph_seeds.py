#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz_graph (tests/fuzz/graph/corpus/seed_*).

Each seed is a byte program in the format fuzz_graph.c decodes; the names
below mirror its tables.  Rerun after changing the format, then let the
fuzzer grow the corpus (scripts/fuzz --merge)."""
import os

OP = dict(END=0, UNARY=1, BINARY=2, SCALAR=3, CONST=4, EYE=5, POLYGAMMA=6, COMPARE=7,
          SELECT=8, BROADCAST=9, RESHAPE=10, TRANSPOSE=11, SLICE=12, CONCAT=13, SEGSUM=14,
          ONEHOT=15, REDUCE=16, TRI=17, TRISOLVE=18, SPD=19, LMM=20, DUP=21)
DIM = dict(n=0, m=1, k=2, one=3, two=4, three=5, q=6)
UN = {name: i for i, name in enumerate(
    "neg exp log log1p expm1 sqrt square recip tanh logistic lgamma digamma abs sign "
    "mT sum_all diag diag_embed cholesky logdet".split())}
BIN = {name: i for i, name in enumerate(
    "add sub mul div pow min max matmul outer kron gather cholesky_solve solve".split())}
XF = dict(grad=0, value_and_grad=1, jvp=2, vjp=3, hvp=4, jacfwd=5, jacrev=6, hessian=7,
          vmap=8)
SIZE = {2: 0, 3: 1, 1: 2, 4: 3, 0: 4}


def prog(inputs, ops, outs=(0,), xforms=(), sizes=(2, 3, 2), modes=0x5555, seed=7):
    b = [len(inputs) - 1]
    for dims in inputs:
        b += [len(dims)] + [DIM[d] for d in dims]
    for op in ops:
        b += [OP[op[0]]] + list(op[1:])
    b += [OP["END"], len(outs) - 1] + list(outs)
    b += [0]  # no graph print
    b += [len(xforms)]
    for x in xforms:
        b += list(x)
    b += [SIZE[s] for s in sizes] + [SIZE[2]] * (8 - len(sizes))
    b += [0, 1]  # no perturbation; print the specialised graph
    b += [seed, modes & 255, modes >> 8]
    return bytes(b)


U = lambda name, pick=0: ("UNARY", UN[name], pick)
B = lambda name, a=0, b=1: ("BINARY", BIN[name], a, b)
seeds = {
    # logdet of an SPD matrix, its gradient (mode 1: uniform data)
    "logdet_grad": prog([["n", "n"]], [("SPD", 0), U("logdet")], xforms=[(XF["grad"], 0, 0, 0)]),
    # sum(tanh(A @ x)), vmapped over both inputs
    "matvec_vmap": prog([["n", "m"], ["m"]], [B("matmul", 1, 0), U("tanh"), U("sum_all")],
                        xforms=[(XF["vmap"], 1, 1, 0, 0, 0)]),
    # REML criterion of V = spd(x0), X = x1, y = x2, and its Hessian
    "reml_hessian": prog([["n", "n"], ["n", "two"], ["n"]],
                         [("SPD", 2), ("LMM", 0, 2, 1, 0)],
                         xforms=[(XF["hessian"], 1, 0, 0)], sizes=(4,)),
    # gather rows by integer codes (mode 0 for x1), segment sum back
    "gather_segsum": prog([["k", "two"], ["n"]], [B("gather", 1, 0), ("SEGSUM", 0, 1, DIM["k"])],
                          sizes=(3, 2, 3), modes=0x0001 | (0 << 2)),
    # a chain of every elementwise unary op on positive data (mode 3)
    "unary_chain": prog([["n", "m"]], [U(n) for n in
                        "exp log log1p expm1 sqrt square recip tanh logistic lgamma digamma abs "
                        "sign neg".split()] + [("POLYGAMMA", 1, 0)], modes=0xffff),
    # binaries with broadcasting, compare and select, then jvp
    "binary_select": prog([["n", "m"], ["m"]], [B("add", 0, 1), B("mul", 0, 2), B("div", 0, 1),
                          B("pow", 2, 0), B("min", 0, 1), B("max", 0, 2), ("COMPARE", 2, 0, 1),
                          ("SELECT", 0, 1, 2)], xforms=[(XF["jvp"], 0)], modes=0xffff),
    # cholesky, triangular solves in every flag combination, cholesky_solve
    "solves": prog([["n", "n"], ["n", "m"]], [("SPD", 1), U("cholesky"),
                   ("TRISOLVE", 0, 2, 0), ("TRISOLVE", 1, 3, 5), B("cholesky_solve", 2, 4),
                   B("solve", 4, 0)], outs=(0, 1)),
    # shapes: transpose, reshape, broadcast, slice, concat, reductions
    "shapes": prog([["n", "m", "two"]], [("TRANSPOSE", 0, 1, 0, 0), ("RESHAPE", 0, 2, DIM["q"],
                   DIM["two"]), ("SLICE", 0, 1, 4, 0), ("CONCAT", 1, 0, 0, 1),
                   ("REDUCE", 0, 0, 1, 1), ("REDUCE", 0, 1, 1, 0), ("REDUCE", 0, 2, 0),
                   ("BROADCAST", 0, 2, DIM["three"], DIM["m"])], outs=(0, 1)),
    # kron, outer, diag, tril/triu, eye, constants
    "linalg_misc": prog([["n", "n"], ["m"]], [B("kron", 0, 0), B("outer", 1, 1), U("diag", 0),
                        U("diag_embed", 0), ("TRI", 0, 3, 0), ("TRI", 0, 1, 1), ("EYE", DIM["n"]),
                        ("CONST", 2, 1, 2) + tuple(range(100, 109)), ("SCALAR", 3)], outs=(0, 4, 6)),
    # one-hot design of codes, its gram matrix, value_and_grad
    "one_hot": prog([["n"], ["k"]], [("ONEHOT", 1, DIM["k"]), B("matmul", 1, 0), U("sum_all"),
                    B("mul", 0, 0)], xforms=[(XF["value_and_grad"], 0, 0, 0)],
                    modes=0x0004 | 0x0000),
    # hvp, jacfwd, jacrev and vjp of a small network
    "hvp": prog([["n"], ["n", "n"]], [B("matmul", 1, 0), U("logistic"), U("sum_all")],
                xforms=[(XF["hvp"], 0, 0, 0)]),
    "jacfwd": prog([["n"]], [U("exp"), B("outer", 0, 0)], xforms=[(XF["jacfwd"], 0, 0, 0)]),
    "jacrev": prog([["n", "m"]], [U("tanh"), ("REDUCE", 0, 0, 1, 2)],
                   xforms=[(XF["jacrev"], 0, 0, 0)]),
    "vjp_vmap": prog([["n"]], [U("square"), U("sin" if False else "expm1")],
                     xforms=[(XF["vjp"], 0, 0), (XF["vmap"], 0, 0, 0, 0)]),
    # NaN, Inf and huge values in every input (mode 2)
    "nonfinite": prog([["n", "n"], ["n"]], [("SPD", 1), U("cholesky"), B("matmul", 0, 2),
                      U("log"), U("sum_all")], outs=(0, 2), modes=0xaaaa),
    # zero-size axes
    "empty": prog([["n", "m"]], [U("sum_all"), ("REDUCE", 1, 1, 1, 1)], sizes=(0, 3)),
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "graph", "corpus")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, "seed_" + name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
