/*  zube-bench sched - being written (issue 5); until then it says so. */
#include "zube_cli.h"
#include "zube_bench.h"

int
zube_bench_sched (int argc, char **argv)
{
    (void) argc, (void) argv;
    zube_cli_error ("mode \"sched\" is not built yet");
    return 1;
}
