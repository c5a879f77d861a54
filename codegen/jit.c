/* The JIT: one ORC LLJIT per process, created on first use (pthread_once),
 * for the host CPU's name and features.  Every kernel is added to the main
 * JITDylib under its own ResourceTracker, so freeing a kernel releases its
 * code.  BLAS, LAPACKE, libm and our special functions are registered as
 * absolute symbols: resolution does not depend on how the host program was
 * linked or which symbols it exports. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/cg.h"
#include "codegen/pool.h"
#include "ir/alloc.h"
#include "ir/eval_kernels.h"

struct cg_code {
    LLVMOrcResourceTrackerRef rt;
};

static pthread_once_t jit_once = PTHREAD_ONCE_INIT;
static LLVMOrcLLJITRef jit;
static char *host_cpu, *host_features; /* LLVM strings, kept for the process */
static char jit_error[IR_ERR_MSG];
/* LLJIT's default IR compiler shares one TargetMachine, which is not safe to
 * use from two threads: machine-code generation and linking (add + lookup)
 * are serialised.  Optimisation, the larger part, runs in parallel. */
static pthread_mutex_t jit_lock = PTHREAD_MUTEX_INITIALIZER;

/* Addresses the generated code may call.  memcpy/memset appear when LLVM
 * recognises copy and zeroing loops. */
static const struct {
    const char *name;
    void (*addr)(void);
} symbols[] = {
#define SYM(name, fn) {name, (void (*)(void))(fn)}
    SYM("cblas_dgemm", cblas_dgemm),       SYM("cblas_dgemv", cblas_dgemv),
    SYM("cblas_dsyrk", cblas_dsyrk),       SYM("cblas_dtrsm", cblas_dtrsm),
    SYM("LAPACKE_dpotrf", LAPACKE_dpotrf), SYM("LAPACKE_dpotrs", LAPACKE_dpotrs),
    SYM("LAPACKE_dtrtrs", LAPACKE_dtrtrs), SYM("LAPACKE_dgetrf", LAPACKE_dgetrf),
    SYM("LAPACKE_dgetrs", LAPACKE_dgetrs), SYM("LAPACKE_dpotrf_work", LAPACKE_dpotrf_work),
    SYM("LAPACKE_dpotri_work", LAPACKE_dpotri_work), SYM("sj_batch_run", sj_batch_run),
    SYM("LAPACKE_dgetrf_work", LAPACKE_dgetrf_work), SYM("LAPACKE_dgetrs_work", LAPACKE_dgetrs_work),
    SYM("exp", exp),
    SYM("log", log),                       SYM("log1p", log1p),
    SYM("expm1", expm1),                   SYM("tanh", tanh),
    SYM("pow", pow),                       SYM("sqrt", sqrt),
    SYM("fabs", fabs),                     SYM("floor", floor),
    SYM("fmin", fmin),                     SYM("fmax", fmax),
    SYM("memcpy", memcpy),                 SYM("memset", memset),
    SYM("memmove", memmove),               SYM("sj_lgamma", cg_lgamma),
    SYM("sj_digamma", ir_digamma),         SYM("sj_polygamma", ir_polygamma),
    SYM("sj_fit_run", ir_fit_native_run),
    SYM("sj_ndtr", ir_ndtr),               SYM("sj_ndtri", ir_ndtri),
    SYM("atan", atan),                     SYM("tan", tan),
    SYM("sj_eigh", ir_eigh_kernel), /* LAPACKE_dsyevd_work behind it */
#undef SYM
};

static void record_error(const char *what, LLVMErrorRef e)
{
    char *msg = LLVMGetErrorMessage(e);
    snprintf(jit_error, sizeof jit_error, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
}

static LLVMTargetMachineRef host_machine(const char *triple, int opt_level)
{
    LLVMTargetRef t;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(triple, &t, &msg)) {
        snprintf(jit_error, sizeof jit_error, "no target for %s: %s", triple, msg);
        LLVMDisposeMessage(msg);
        return NULL;
    }
    LLVMCodeGenOptLevel level = opt_level >= 3 ? LLVMCodeGenLevelAggressive
                                               : LLVMCodeGenLevelDefault;
    return LLVMCreateTargetMachine(t, triple, host_cpu, host_features, level, LLVMRelocPIC,
                                   LLVMCodeModelJITDefault);
}

static int define_symbols(void)
{
    size_t n = sizeof symbols / sizeof symbols[0];
    LLVMOrcCSymbolMapPair pairs[sizeof symbols / sizeof symbols[0]];
    LLVMJITSymbolFlags flags = {LLVMJITSymbolGenericFlagsExported |
                                    LLVMJITSymbolGenericFlagsCallable, 0};
    for (size_t i = 0; i < n; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, symbols[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)symbols[i].addr;
        pairs[i].Sym.Flags = flags;
    }
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, n);
    LLVMErrorRef e = LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(jit), mu);
    if (e) {
        record_error("defining BLAS/LAPACK symbols", e);
        return -1;
    }
    return 0;
}

static void jit_init(void)
{
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) {
        snprintf(jit_error, sizeof jit_error, "LLVM has no native target");
        return;
    }
    host_cpu = LLVMGetHostCPUName();
    host_features = LLVMGetHostCPUFeatures();
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetMachineRef tm = host_machine(triple, 2);
    LLVMDisposeMessage(triple);
    if (!tm)
        return;
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
        builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
    LLVMOrcLLJITRef j;
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&j, builder);
    if (e) {
        record_error("creating the LLJIT", e);
        return;
    }
    jit = j;
    if (define_symbols() != 0) {
        LLVMErrorRef d = LLVMOrcDisposeLLJIT(jit);
        if (d)
            LLVMConsumeError(d);
        jit = NULL;
    }
}

static sj_status ensure_jit(ir_err *err)
{
    pthread_once(&jit_once, jit_init);
    if (!jit)
        return ir_fail(err, SJ_ERR_INTERNAL, "codegen: %s", jit_error);
    return SJ_OK;
}

sj_status cg_jit_module(const char *name, LLVMContextRef *cx, LLVMModuleRef *m, void **tsc,
                        ir_err *err)
{
    sj_status st = ensure_jit(err);
    if (st != SJ_OK)
        return st;
    LLVMOrcThreadSafeContextRef ts = LLVMOrcCreateNewThreadSafeContext();
    *cx = LLVMOrcThreadSafeContextGetContext(ts);
    *m = LLVMModuleCreateWithNameInContext(name, *cx);
    LLVMSetTarget(*m, LLVMOrcLLJITGetTripleString(jit));
    LLVMSetDataLayout(*m, LLVMOrcLLJITGetDataLayoutStr(jit));
    *tsc = ts;
    return SJ_OK;
}

void cg_jit_discard(LLVMModuleRef m, void *tsc)
{
    if (m)
        LLVMDisposeModule(m);
    if (tsc)
        LLVMOrcDisposeThreadSafeContext(tsc);
}

/* The IR pipeline at opt level 2, chosen for the IR our lowering emits:
 * loops already rotated and counted with constant bounds, loop variables and
 * accumulators in allocas (sroa), no calls to inline, little to simplify
 * beyond the fused elementwise expressions.  It keeps what the generated
 * code's speed depends on (licm, loop-vectorize) and leaves out the rest of
 * default<O2> (inlining, GVN, loop-rotate, indvars, unrolling, SLP, ...).
 * On the REML benchmark graph it optimises in 3.6 ms where default<O2> took
 * 15 ms (23 ms before the lowering emitted less IR), with machine-code
 * generation no slower, while elementwise_vs_gcc and cholesky_logdet_n500 run
 * as fast as after default<O2> (docs/codegen.md has the measurements).  Opt level 3 keeps
 * default<O3>.  instcombine's fixpoint check is off as in the default
 * pipelines (a standalone instcombine aborts when one round is not enough). */
static const char light_pipeline[] =
    "function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,simplifycfg,"
    "loop-mssa(licm),loop-vectorize,instcombine<no-verify-fixpoint>,simplifycfg)";

/* The pipeline of the fast path (cg_quick_codegen): the light one without
 * loop vectorisation (2.3 of its 6 ms on the REML kernel; loops of a few
 * hundred elements gain little from it, and FastISel hands vector code back
 * to the slower SelectionDAG). */
static const char quick_pipeline[] =
    "function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,simplifycfg,"
    "loop-mssa(licm))";

static sj_status optimise(LLVMModuleRef m, int opt_level, int quick, ir_err *err)
{
    LLVMTargetMachineRef tm = host_machine(LLVMOrcLLJITGetTripleString(jit), opt_level);
    if (!tm)
        return ir_fail(err, SJ_ERR_INTERNAL, "codegen: %s", jit_error);
    LLVMPassBuilderOptionsRef o = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(o, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(o, 1);
    /* Unrolling grew a REML-sized kernel's IR from 63 to 100 KB and its
     * compile from 55 to 72 ms; vectorised loops over memory ran no faster
     * with it (bench elementwise_vs_gcc: 1.00 either way). */
    LLVMPassBuilderOptionsSetLoopUnrolling(o, 0);
    LLVMErrorRef e = LLVMRunPasses(m, opt_level >= 3 ? "default<O3>"
                                      : quick            ? quick_pipeline
                                                         : light_pipeline,
                                   tm, o);
    LLVMDisposePassBuilderOptions(o);
    LLVMDisposeTargetMachine(tm);
    if (e) {
        char *msg = LLVMGetErrorMessage(e);
        ir_fail(err, SJ_ERR_INTERNAL, "codegen: optimising: %s", msg);
        LLVMDisposeErrorMessage(msg);
        return SJ_ERR_INTERNAL;
    }
    return SJ_OK;
}

static char *module_text(LLVMModuleRef m)
{
    char *s = LLVMPrintModuleToString(m);
    char *copy = ir_strdup(s);
    LLVMDisposeMessage(s);
    return copy;
}

#ifndef NDEBUG
static sj_status verify(LLVMModuleRef m, ir_err *err)
{
    char *msg = NULL;
    if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
        ir_fail(err, SJ_ERR_INTERNAL, "codegen: invalid LLVM IR: %.400s", msg ? msg : "");
        LLVMDisposeMessage(msg);
        return SJ_ERR_INTERNAL;
    }
    LLVMDisposeMessage(msg);
    return SJ_OK;
}
#else
/* Release builds trust the lowering (the debug builds and the tests verify
 * every module): verification was 0.2 ms of a 25 ms compile. */
static sj_status verify(LLVMModuleRef m, ir_err *err)
{
    (void)m, (void)err;
    return SJ_OK;
}
#endif

/* Every defined function gets optnone (and noinline, which optnone
 * requires), after optimisation: the machine-code pipeline then selects
 * instructions with FastISel and skips loop strength reduction and the
 * machine-level optimisations for them, which took about half of its time
 * on a REML-sized kernel (docs/codegen.md). */
static void mark_quick(LLVMModuleRef m)
{
    LLVMContextRef cx = LLVMGetModuleContext(m);
    unsigned optnone = LLVMGetEnumAttributeKindForName("optnone", 7);
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) {
        if (LLVMIsDeclaration(f))
            continue;
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(cx, noinline, 0));
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(cx, optnone, 0));
    }
}

static sj_status prepare(LLVMModuleRef m, int opt_level, int quick, ir_err *err)
{
    sj_status st = verify(m, err);
    if (st == SJ_OK)
        st = optimise(m, opt_level, quick, err);
    if (st == SJ_OK && quick)
        mark_quick(m);
    return st;
}

sj_status cg_jit_text(LLVMModuleRef m, void *tsc, int opt_level, int quick, char **text,
                      ir_err *err)
{
    *text = NULL;
    sj_status st = ensure_jit(err);
    if (st == SJ_OK)
        st = prepare(m, opt_level, quick, err);
    if (st == SJ_OK && !(*text = module_text(m)))
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    cg_jit_discard(m, tsc);
    return st;
}

static sj_status fail_llvm(ir_err *err, const char *what, LLVMErrorRef e)
{
    char *msg = LLVMGetErrorMessage(e);
    ir_fail(err, SJ_ERR_INTERNAL, "codegen: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return SJ_ERR_INTERNAL;
}

/* The IR text is not kept: printing it took 0.8 ms of a REML-sized compile;
 * cg_kernel_llvm_ir makes it again on demand (cg_jit_text). */
sj_status cg_jit_compile(LLVMModuleRef m, void *tsc, const char *fname, int opt_level, int quick,
                         cg_code **code, void **addr, ir_err *err)
{
    sj_status st = prepare(m, opt_level, quick, err);
    cg_code *c = st == SJ_OK ? ir_calloc(1, sizeof *c) : NULL;
    if (st == SJ_OK && !c)
        st = ir_fail(err, SJ_ERR_OUT_OF_MEMORY, "codegen: out of memory");
    if (st != SJ_OK) {
        cg_jit_discard(m, tsc);
        return st;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc);
    pthread_mutex_lock(&jit_lock);
    c->rt = LLVMOrcJITDylibCreateResourceTracker(LLVMOrcLLJITGetMainJITDylib(jit));
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModuleWithRT(jit, c->rt, tsm);
    if (e) { /* the JIT owns tsm even on failure */
        st = fail_llvm(err, "adding the module", e);
    } else {
        LLVMOrcExecutorAddress a = 0;
        e = LLVMOrcLLJITLookup(jit, &a, fname);
        if (e)
            st = fail_llvm(err, "compiling the kernel", e);
        *addr = (void *)(uintptr_t)a;
    }
    pthread_mutex_unlock(&jit_lock);
    if (st != SJ_OK) {
        cg_code_free(c);
        return st;
    }
    *code = c;
    return SJ_OK;
}

void cg_code_free(cg_code *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&jit_lock);
    LLVMErrorRef e = LLVMOrcResourceTrackerRemove(c->rt);
    if (e)
        LLVMConsumeError(e);
    LLVMOrcReleaseResourceTracker(c->rt);
    pthread_mutex_unlock(&jit_lock);
    ir_free(c);
}
