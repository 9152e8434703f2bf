/*  zcm - the private interfaces of zube-controller-manager
    (docs/controllers.md): the per-controller work queue and the manager. */
#ifndef ZCM_H_INCLUDED
#define ZCM_H_INCLUDED

#include "zube/bus.h"
#include "zube/controller.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZCM_SERVICE "controllers"
//  The most workers a controller may have (--controller-arg NAME.workers)
#define ZCM_WORKERS_MAX 64

//  ---------------------------------------------------------------------
//  zcm_queue: Kubernetes' rate-limited work queue. Not locked: callers
//  serialise (the manager's lock). A key is queued once; a key popped is
//  processing until zcm_queue_done, and adding it meanwhile queues it
//  again only at done (never two syncs of one key at once, none lost);
//  keys added with a delay wait in a timer set until they are due;
//  rate-limited adds wait the key's back-off, base_ms doubled per
//  requeue up to max_ms (Kubernetes' ItemExponentialFailureRateLimiter).

typedef struct _zcm_queue_t zcm_queue_t;

zcm_queue_t *zcm_queue_new (int64_t base_ms, int64_t max_ms);
void zcm_queue_destroy (zcm_queue_t **self_p);
void zcm_queue_add (zcm_queue_t *self, const char *key);
//  now_ms: the monotonic clock the caller passes to zcm_queue_flush too.
void zcm_queue_add_after (zcm_queue_t *self, const char *key, int64_t delay_ms,
                          int64_t now_ms);
void zcm_queue_add_rate_limited (zcm_queue_t *self, const char *key, int64_t now_ms);
void zcm_queue_forget (zcm_queue_t *self, const char *key);
int zcm_queue_requeues (zcm_queue_t *self, const char *key);
//  Moves the keys due by now_ms into the queue; answers the milliseconds
//  until the next is due, -1 when none waits.
int64_t zcm_queue_flush (zcm_queue_t *self, int64_t now_ms);
//  The oldest queued key (the caller frees it), NULL when empty; the key
//  is processing until zcm_queue_done.
char *zcm_queue_pop (zcm_queue_t *self);
//  The sync of a popped key ended: queued again if added meanwhile.
void zcm_queue_done (zcm_queue_t *self, const char *key);
//  Keys popped and not done.
size_t zcm_queue_processing (zcm_queue_t *self);
size_t zcm_queue_length (zcm_queue_t *self);
size_t zcm_queue_waiting (zcm_queue_t *self);

//  ---------------------------------------------------------------------
//  zcm_manager: informers, controllers, the bus service, the loop.

typedef struct _zcm_manager_t zcm_manager_t;

typedef struct {
    zube_bus_config_t bus;
    //  --controllers (NULL: "*").
    const char *controllers;
    const char *plugin_path;
    //  NAME.KEY=VALUE settings, count of them.
    const char *const *settings;
    size_t setting_count;
    //  Leader election (false: always the leader).
    bool leader_elect;
    int lease_duration_ms;
    int renew_deadline_ms;
    int retry_period_ms;
    const char *lease_namespace;
    const char *lease_name;
    //  This instance's identity (NULL: <hostname>_<pid>).
    const char *identity;
} zcm_config_t;

zcm_manager_t *zcm_manager_new (const zcm_config_t *config, char *error,
                                size_t error_size);
void zcm_manager_destroy (zcm_manager_t **self_p);
//  Runs until *interrupted. 0 after a clean stop; -1 with error (the
//  leader lease was lost, the bus is unusable).
int zcm_manager_run (zcm_manager_t *self, volatile int *interrupted, char *error,
                     size_t error_size);

//  Gives up the leader lease when holding it (a clean stop), so a standby
//  takes over at its next retry. Call it after zcm_manager_run returned
//  and the interrupt flag was cleared: the bus answers no call while it
//  is set.
void zcm_manager_release (zcm_manager_t *self);

//  Kubernetes' --controllers semantics: "*" all defaults, "name" on,
//  "-name" off; the first word naming it wins, else "*" decides (and
//  without "*" nothing else runs).
//  Answers whether name runs.
bool zcm_controller_enabled (const char *list, const char *name);

#endif
