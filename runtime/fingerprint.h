/* What identifies a function for the compile cache.  A function is serialised
 * into a canonical byte string (its graph: symbols, nodes with ops,
 * attributes, inputs, declared shapes and constant data, input names and
 * outputs); the fingerprint is a 64-bit hash of that string and the string
 * itself is the full key compared on a cache lookup, so a hash collision can
 * never return another function's code.
 *
 * To extend the key (e.g. with a chain of pending transforms), add to
 * put_fn() in fingerprint.c: the hash and the comparison both follow. */
#ifndef RT_FINGERPRINT_H
#define RT_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/handles.h"

/* The 64-bit hash of fn's serialised form (computed by sj_fn_create and kept
 * in fn->fingerprint). */
uint64_t rt_fn_fingerprint(const sj_fn *fn);

/* fn's serialised form: a malloc'd buffer (free with ir_free) of *len bytes;
 * SJ_ERR_OUT_OF_MEMORY otherwise. */
sj_status rt_fn_key(const sj_fn *fn, unsigned char **key, size_t *len);

/* The hash used for fingerprints, exposed for the cache's shape keys. */
uint64_t rt_hash_bytes(uint64_t seed, const void *data, size_t len);
uint64_t rt_hash_mix(uint64_t h);

#endif
