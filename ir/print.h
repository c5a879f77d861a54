/* A readable text form of a graph, in the spirit of a jaxpr:
 *
 *   graph(X: [n, p], y: [n]) {
 *     %2 = matmul[ta] %0, %1 : [p, 1]
 *     return %2
 *   }
 */
#ifndef IR_PRINT_H
#define IR_PRINT_H

#include "ir/graph.h"

/* A malloc'd string (free with ir_free), NULL when out of memory. */
char *ir_graph_print(const ir_graph *g);

#endif
