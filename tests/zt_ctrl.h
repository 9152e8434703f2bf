/*  zt_ctrl - what the controller tests share: a zube-controller-manager
    started against a zt_cluster_t, its stats, zubelets hosting hollow
    nodes, and waits on objects through the test's own api client. */
#ifndef ZT_CTRL_H_INCLUDED
#define ZT_CTRL_H_INCLUDED

#include "apps.pb-c.h"
#include "core.pb-c.h"
#include "zt_cluster.h"
#include "zube/informer.h"

//  Starts a tied zube-controller-manager on the cluster with the given
//  extra flags (NULL-terminated, may be NULL), logging into <dir>/<log>.
static inline pid_t
zt_ctrl_start (zt_cluster_t *cluster, const char *log, const char *const *extra)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = zt_program ("zube-controller-manager");
    argv[argc++] = "--bus";
    argv[argc++] = cluster->endpoint;
    argv[argc++] = "--insecure";
    for (int i = 0; extra && extra[i] && argc < 63; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    char path[700];
    snprintf (path, sizeof path, "%s/%s", cluster->dir, log);
    return zt_spawn_tied ((char *const *)argv, path);
}

//  The controller-manager's stats (JSON, malloc'd), NULL when no instance
//  answers within timeout_ms.
static inline char *
zt_ctrl_stats (zt_cluster_t *cluster, int timeout_ms)
{
    return zt_bus_call_text (cluster->bus, "controllers", "stats", timeout_ms);
}

//  zubectl ARGS... (NULL-terminated) against cluster's broker, insecure:
//  its exit status and output (zt_run_free it).
static inline zt_run_t
zt_ctrl_zubectl (zt_cluster_t *cluster, const char *first, ...)
{
    const char *head[] = {zt_program ("zubectl"), "--broker", cluster->endpoint,
                          "--insecure",           first,      NULL};
    va_list args;
    va_start (args, first);
    zt_run_t result = zt_run_capture_va (20000, head, args);
    va_end (args);
    return result;
}

//  Waits until a controller-manager answers with `"leader": true` and
//  every controller ready.
static inline bool
zt_ctrl_wait_ready (zt_cluster_t *cluster, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        char *stats = zt_ctrl_stats (cluster, 1000);
        bool ready = stats && strstr (stats, "\"leader\": true") &&
                     !strstr (stats, "\"ready\": false");
        free (stats);
        if (ready)
            return true;
        zube_bus_poll (cluster->bus, 100);
    }
    return false;
}

//  Starts a tied zubelet hosting count hollow nodes named <prefix>NNNN.
static inline pid_t
zt_ctrl_zubelet (zt_cluster_t *cluster, int count, const char *prefix)
{
    char nodes[16], state[700], log[700];
    snprintf (nodes, sizeof nodes, "%d", count);
    snprintf (state, sizeof state, "%s/zubelet-%s", cluster->dir, prefix);
    snprintf (log, sizeof log, "%s/zubelet-%s.log", cluster->dir, prefix);
    char *argv[] = {(char *)zt_program ("zubelet"),
                    "--bus",
                    cluster->endpoint,
                    "--insecure",
                    "--nodes",
                    nodes,
                    "--node-name-prefix",
                    (char *)prefix,
                    "--state-dir",
                    state,
                    NULL};
    return zt_spawn_tied (argv, log);
}

//  Starts a tied zube-scheduler (default profile).
static inline pid_t
zt_ctrl_scheduler (zt_cluster_t *cluster)
{
    char log[700];
    snprintf (log, sizeof log, "%s/scheduler.log", cluster->dir);
    char *argv[] = {(char *)zt_program ("zube-scheduler"), "--bus", cluster->endpoint,
                    "--insecure", NULL};
    return zt_spawn_tied (argv, log);
}

//  One object through the test's client, NULL when absent.
static inline ProtobufCMessage *
zt_ctrl_get (zt_cluster_t *cluster, const char *resource, const char *namespace_,
             const char *name)
{
    ProtobufCMessage *object = NULL;
    if (zube_api_get (cluster->api, resource, namespace_, name, &object, NULL) != ZUBE_OK)
        return NULL;
    return object;
}

//  Waits until the object exists (want true) or is gone (want false).
static inline bool
zt_ctrl_wait_exists (zt_cluster_t *cluster, const char *resource, const char *namespace_,
                     const char *name, bool want, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        ProtobufCMessage *object = zt_ctrl_get (cluster, resource, namespace_, name);
        bool exists = object != NULL;
        if (object)
            protobuf_c_message_free_unpacked (object, NULL);
        if (exists == want)
            return true;
        zube_bus_poll (cluster->bus, 50);
    } while (zt_now_ms () < until);
    return false;
}

//  --------------------------------------------------------------------------
//  A watcher: an informer on the pods of a label selector, on a bus
//  connection of its own, that counts the active ones (no
//  deletionTimestamp, not Succeeded or Failed) after every event and
//  keeps the highest count seen since the last reset, and the ready ones.

typedef struct {
    zube_bus_t *bus;
    zube_informer_t *informer;
    int64_t active;
    int64_t max_active;
    int64_t ready;
    //  The fewest ready active pods seen since min_ready was last set to
    //  INT64_MAX (by the test)
    int64_t min_ready;
    //  What a check wants to know after each event, set by the test
    int64_t limit;
    int64_t over_limit; //  events after which active > limit
} zt_watcher_t;

static inline bool
zt_watch_active (const Zube__Pod *pod)
{
    const char *phase = pod->status ? pod->status->phase : NULL;
    bool done = phase && (!strcmp (phase, "Succeeded") || !strcmp (phase, "Failed"));
    return !done && pod->metadata &&
           !(pod->metadata->deletion_timestamp && *pod->metadata->deletion_timestamp);
}

static inline bool
zt_watch_ready (const Zube__Pod *pod)
{
    for (size_t i = 0; pod->status && i < pod->status->n_conditions; i++)
        if (!strcmp (pod->status->conditions[i]->type, "Ready"))
            return pod->status->conditions[i]->status &&
                   !strcmp (pod->status->conditions[i]->status, "True");
    return false;
}

static inline bool
zt_watch_count (const char *key, const ProtobufCMessage *object, void *arg)
{
    (void)key;
    zt_watcher_t *self = arg;
    const Zube__Pod *pod = (const Zube__Pod *)object;
    if (zt_watch_active (pod)) {
        self->active++;
        if (zt_watch_ready (pod))
            self->ready++;
    }
    return true;
}

static inline void
zt_watch_recount (zt_watcher_t *self)
{
    self->active = self->ready = 0;
    zube_informer_each (self->informer, zt_watch_count, self);
    if (self->active > self->max_active)
        self->max_active = self->active;
    if (self->ready < self->min_ready)
        self->min_ready = self->ready;
    if (self->limit >= 0 && self->active > self->limit)
        self->over_limit++;
}

static inline void
zt_watch_added (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer, (void)object;
    zt_watch_recount (arg);
}

static inline void
zt_watch_updated (zube_informer_t *informer, const ProtobufCMessage *old_object,
                  const ProtobufCMessage *new_object, void *arg)
{
    (void)informer, (void)old_object, (void)new_object;
    zt_watch_recount (arg);
}

//  Counting after the deleted object left the cache: the next event does;
//  counting now with the object still in would not lower the count.
static inline void
zt_watch_deleted (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer, (void)object, (void)arg;
}

static inline bool
zt_watcher_start (zt_watcher_t *self, zt_cluster_t *cluster, const char *namespace_,
                  const char *label_selector)
{
    *self = (zt_watcher_t){.limit = -1, .min_ready = INT64_MAX};
    self->bus = zt_cluster_bus_new (cluster, NULL);
    if (!self->bus)
        return false;
    self->informer = zube_informer_new (
        self->bus, &(zube_informer_config_t){.resource = "pods",
                                             .namespace = namespace_,
                                             .label_selector = label_selector,
                                             .on_add = zt_watch_added,
                                             .on_update = zt_watch_updated,
                                             .on_delete = zt_watch_deleted,
                                             .arg = self});
    return self->informer && zube_informer_start (self->informer) == 0 &&
           zube_informer_wait_synced (self->informer, 10000);
}

//  Runs the watcher's connection for up to ms.
static inline void
zt_watcher_poll (zt_watcher_t *self, int ms)
{
    int64_t until = zt_now_ms () + ms;
    do {
        zube_bus_poll (self->bus, 20);
        zt_watch_recount (self);
    } while (zt_now_ms () < until);
}

//  Polls until active == want (and, with ready, ready == want too).
static inline bool
zt_watcher_wait (zt_watcher_t *self, int64_t want, bool ready, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        zt_watcher_poll (self, 50);
        if (self->active == want && (!ready || self->ready == want))
            return true;
    } while (zt_now_ms () < until);
    return false;
}

static inline void
zt_watcher_stop (zt_watcher_t *self)
{
    zube_informer_destroy (&self->informer);
    zube_bus_destroy (&self->bus);
}

//  --------------------------------------------------------------------------
//  A whole environment: cluster, a zubelet of hollow nodes, the scheduler
//  and a controller-manager, as the workload tests use it.

typedef struct {
    zt_cluster_t cluster;
    pid_t zubelet;
    pid_t scheduler;
    pid_t manager;
    bool ready;
    char why[512];
} zt_ctrl_env_t;

//  Starts everything and waits until the controller-manager leads with
//  every controller ready; false with why set.
static inline bool
zt_ctrl_env_start (zt_ctrl_env_t *env, const char *tag, int nodes,
                   const char *const *manager_flags)
{
    memset (env, 0, sizeof *env);
    if (!zt_cluster_start (&env->cluster, &(zt_cluster_options_t){.tag = tag})) {
        snprintf (env->why, sizeof env->why, "%.300s", env->cluster.why);
        return false;
    }
    env->zubelet = zt_ctrl_zubelet (&env->cluster, nodes, "sim-");
    env->scheduler = zt_ctrl_scheduler (&env->cluster);
    env->manager = zt_ctrl_start (&env->cluster, "controller-manager.log", manager_flags);
    if (!zt_ctrl_wait_ready (&env->cluster, 30000)) {
        zt_cluster_log_tail (&env->cluster, "controller-manager.log", 30);
        snprintf (env->why, sizeof env->why,
                  "the controller-manager did not become ready");
        return false;
    }
    env->ready = true;
    return true;
}

//  Stops everything (logs shown and the directory kept on failure) and
//  answers the test's exit code.
static inline int
zt_ctrl_env_finish (zt_ctrl_env_t *env)
{
    bool failed = !env->ready || zt_failed_count > 0;
    if (!env->ready)
        printf ("not ok 1 - setup\n# %s\n", env->why);
    if (failed)
        zt_cluster_log_tail (&env->cluster, "controller-manager.log", 40);
    if (env->manager > 0)
        zt_stop (env->manager, SIGTERM, 10000);
    if (env->scheduler > 0)
        zt_stop (env->scheduler, SIGTERM, 10000);
    if (env->zubelet > 0)
        zt_stop (env->zubelet, SIGTERM, 10000);
    zt_cluster_stop (&env->cluster, failed);
    if (!env->ready) {
        printf ("1..1\n");
        return 1;
    }
    return zt_done ();
}

#endif
