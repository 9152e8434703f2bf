/*  zt_ctrl - what the controller tests share: a zube-controller-manager
    started against a zt_cluster_t, its stats, zubelets hosting hollow
    nodes, and waits on objects through the test's own api client. */
#ifndef ZT_CTRL_H_INCLUDED
#define ZT_CTRL_H_INCLUDED

#include "apps.pb-c.h"
#include "core.pb-c.h"
#include "zt_cluster.h"

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
    zube_bus_reply_t *reply = NULL;
    char *text = NULL;
    if (zube_bus_call (cluster->bus, "controllers", "stats", NULL, 0, timeout_ms,
                       &reply) == 0 &&
        reply->status == ZUBE_OK) {
        text = calloc (1, reply->payload_size + 1);
        if (text)
            memcpy (text, reply->payload, reply->payload_size);
    }
    zube_bus_reply_destroy (&reply);
    return text;
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

#endif
