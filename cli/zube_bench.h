/*  zube_bench - the modes of zube-bench that live in files of their own.

    Internal to cli/: each mode is one entry point, called by zube-bench's
    dispatch with the arguments after the mode's name. */
#ifndef ZUBE_BENCH_H_INCLUDED
#define ZUBE_BENCH_H_INCLUDED

//  `zube-bench api`: pod creates, updates and gets per second through
//  zube-apiserver, against the raw write rate of its store backend, and
//  watch latency (cli/zube_bench_api.c, zube-bench(1)). Returns the exit
//  status.
int zube_bench_api (int argc, char **argv);

//  zube-bench sched: pods bound per second end to end on hollow nodes, and
//  the scheduling loop alone on an in-memory snapshot (--loop-only)
//  (cli/zube_bench_sched.c, zube-bench(1)). Returns the exit code.
int zube_bench_sched (int argc, char **argv);

//  zube-bench runtime: pod start latency of the oci runtime plugin against
//  bare `runc run` of the same bundle, and pods started per second
//  (cli/zube_bench_runtime.c, zube-bench(1)). Returns the exit code.
int zube_bench_runtime (int argc, char **argv);

#endif
