/*  zs_permit - what framework.c adds to zs_sched.h for waiting at permit
    (Kubernetes' framework.WaitingPod), the plugins' handle
    (zube_sched_handle_t) and filtering on a pool of threads. The
    scheduler (scheduler.c) keeps a waiting pod in flight and asks the
    profile, between two cycles, which waits have ended. */
#ifndef ZS_PERMIT_H_INCLUDED
#define ZS_PERMIT_H_INCLUDED

#include "zs_sched.h"

//  zs_profile_schedule answers this when the pod is assumed and reserved
//  on result->node but waits at permit: it is neither bound nor
//  requeued until zs_profile_waiting_next hands it back.
#define ZS_SCHEDULE_WAITING 2

//  What the handle's each_object, get_object and activate reach: the
//  scheduler's watch caches and queue (unset: nothing is found, activate
//  does nothing). Functions as zube_sched_handle_t's, with arg first.
typedef struct {
    void (*each) (void *arg, const char *resource, const char *namespace_,
                  const char *label_key, const char *label_value,
                  zube_sched_object_fn *fn, void *fn_arg);
    const void *(*get) (void *arg, const char *resource, const char *namespace_,
                        const char *name);
    void (*activate) (void *arg, const char *namespace_, const char *name);
    void *arg;
} zs_lister_t;

//  Every profile built from the registry (now and later) reaches lister
//  (copied) through its plugins' handles.
void zs_registry_set_lister (zs_registry_t *self, const zs_lister_t *lister);

//  A wait that ended.
typedef struct {
    //  The pod zs_profile_schedule was given (the caller's).
    zs_pod_t *pod;
    char node[256];
    //  True: every plugin allowed it and pre-bind and bind plugins ran;
    //  host_bind says the host writes the binding. False: rejected (a
    //  plugin, its timeout, or pre-bind/bind refused), every plugin
    //  unreserved and the assumed pod forgotten; message says who and why.
    bool allowed;
    bool host_bind;
    char message[768];
} zs_waited_t;

//  Ends the waits that timed out by now_ms (monotonic milliseconds, the
//  clock of zclock_mono), then hands back one pod whose wait ended: true
//  with *waited filled, false when none has. Call until false.
bool zs_profile_waiting_next (zs_profile_t *self, zs_cache_t *cache, int64_t now_ms,
                              zs_waited_t *waited);
//  Milliseconds until zs_profile_waiting_next has something to hand back
//  (0: now), -1 when no pod waits.
int64_t zs_profile_waiting_due (zs_profile_t *self, int64_t now_ms);
size_t zs_profile_waiting_count (zs_profile_t *self);
//  Rejects the waiting pod of key ("namespace/name"; NULL: every waiting
//  pod) with message, as a plugin's reject does; false when none waits.
bool zs_profile_waiting_reject (zs_profile_t *self, const char *key, const char *message);

//  How many threads filter nodes (1: the loop thread alone; at most the
//  online CPUs are used). A pool of threads runs a cycle's filters once
//  it has at least zs_parallel_min_nodes nodes to look at.
void zs_profile_set_parallelism (zs_profile_t *self, int threads);
int zs_profile_parallelism (zs_profile_t *self);
extern size_t zs_parallel_min_nodes;
//  Seeds the random tie-break between equal best nodes (seeded from the
//  clock otherwise), so two runs over the same nodes pick the same ones.
void zs_profile_set_seed (zs_profile_t *self, uint64_t seed);

#endif
