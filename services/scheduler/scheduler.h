/*  zs_scheduler - zube-scheduler's service object: the bus connection,
    the informers, the node cache, the queue and the profiles, and the
    loop that schedules (scheduler.c). main.c parses flags around it. */
#ifndef ZS_SCHEDULER_H_INCLUDED
#define ZS_SCHEDULER_H_INCLUDED

#include "zs_sched.h"
#include "zube/bus.h"

//  The bus service it answers on once synced: methods stats (JSON) and
//  metrics (Prometheus text).
#define ZS_SERVICE "scheduler"

typedef struct {
    zube_bus_config_t bus;
    //  The KubeSchedulerConfiguration text, NULL for the default profile.
    const char *config_text;
    //  More directories to look for plugins in (colon separated), or NULL.
    const char *plugin_path;
} zs_scheduler_config_t;

typedef struct {
    uint64_t attempts;
    uint64_t scheduled;
    uint64_t bound;
    uint64_t unschedulable;
    uint64_t bind_errors;
    uint64_t errors;
    size_t active, backoff, in_flight;
    size_t unschedulable_queue;
} zs_scheduler_stats_t;

typedef struct _zs_scheduler_t zs_scheduler_t;

//  Loads the profiles (their errors name the field) and connects. NULL
//  with error on failure.
zs_scheduler_t *zs_scheduler_new (const zs_scheduler_config_t *config, char *error,
                                  size_t error_size);
void zs_scheduler_destroy (zs_scheduler_t **self_p);
//  Runs until *interrupted. 0, or -1 with error.
int zs_scheduler_run (zs_scheduler_t *self, volatile int *interrupted, char *error,
                      size_t error_size);
void zs_scheduler_stats (zs_scheduler_t *self, zs_scheduler_stats_t *stats);

#endif
