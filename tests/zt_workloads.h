/*  zt_workloads - the start and end the tests of the workload
    controllers (job, endpointslice, namespace, garbagecollector, podgc)
    share: a cluster, one zubelet of hollow nodes named sim-NNNN, and a
    zube-controller-manager running the named controllers. */
#ifndef ZT_WORKLOADS_H_INCLUDED
#define ZT_WORKLOADS_H_INCLUDED

#include "zt_ctrl.h"

typedef struct {
    zt_cluster_t cluster;
    pid_t zubelet;
    pid_t manager;
    bool ready;
    char why[512];
} zt_workloads_t;

//  Starts everything and waits until the controller-manager leads and
//  the nodes sim-0001..sim-<nodes> exist; false with why when not.
static inline bool
zt_workloads_start (zt_workloads_t *self, const char *tag, int nodes,
                    const char *const *manager_flags)
{
    memset (self, 0, sizeof *self);
    if (!zt_cluster_start (&self->cluster, &(zt_cluster_options_t){.tag = tag})) {
        snprintf (self->why, sizeof self->why, "%.300s", self->cluster.why);
        return false;
    }
    if (nodes > 0)
        self->zubelet = zt_ctrl_zubelet (&self->cluster, nodes, "sim-");
    self->manager =
        zt_ctrl_start (&self->cluster, "controller-manager.log", manager_flags);
    if (!zt_ctrl_wait_ready (&self->cluster, 30000)) {
        snprintf (self->why, sizeof self->why,
                  "the controller-manager did not become ready");
        return false;
    }
    for (int i = 1; i <= nodes; i++) {
        char node[32];
        snprintf (node, sizeof node, "sim-%04d", i);
        if (!zt_ctrl_wait_exists (&self->cluster, "nodes", NULL, node, true, 30000)) {
            snprintf (self->why, sizeof self->why, "node %s did not register", node);
            return false;
        }
    }
    self->ready = true;
    return true;
}

//  Stops everything (keeping the directory and showing logs after a
//  failure) and answers main's exit code.
static inline int
zt_workloads_finish (zt_workloads_t *self)
{
    if (!self->ready)
        printf ("not ok 1 - setup\n# %s\n", self->why);
    bool failed = !self->ready || zt_failed_count > 0;
    if (failed)
        zt_cluster_log_tail (&self->cluster, "controller-manager.log", 40);
    if (self->manager > 0)
        zt_stop (self->manager, SIGTERM, 10000);
    if (self->zubelet > 0)
        zt_stop (self->zubelet, SIGTERM, 10000);
    zt_cluster_stop (&self->cluster, failed);
    if (!self->ready) {
        printf ("1..1\n");
        return 1;
    }
    return zt_done ();
}

#endif
