/* The README's example model, shared by the example program and its test:
 *
 *     V = Z G Zᵀ + s2·I,   Z one-hot from group codes,  G = diag(exp(2θ)),
 *     f = logdet(V) + yᵀ V⁻¹ y,
 *
 * with inputs codes [n], theta [q], s2 [] and y [n] (n, q symbolic). */
#ifndef EXAMPLE_MODEL_H
#define EXAMPLE_MODEL_H

#include "statjit.h"

/* Adds the model to g and returns f (SJ_INVALID if building failed). */
sj_value example_model(sj_graph *g);

#endif
