/*  pod - the pods bound to the process's nodes: workers and status.

    A pod record holds the newest Pod seen, the sandbox, and one slot per
    container (init containers first). s_pod_sync is level-triggered:
    whenever something changes (an event, a runtime event from tick, a
    timer: back-off over, probe due) it compares what should run with
    what runs, takes the next steps through the runtime, and arms the
    pod's one sync timer for the next thing it waits for. There is no
    thread per pod.

    Status: the sync marks the pod; its status timer, at most every
    status_min_interval_ms, builds the PodStatus from the slots, compares
    it with the last one written and, if it differs, writes it through
    pods/status at the pod's resourceVersion (Conflict: get, retry). So
    several changes close together become one write. */
#define _GNU_SOURCE
#include "zubelet.h"
#include "zube/log.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZL_SANDBOX_RETRY_MS 2000
#define ZL_STOP_POLL_MS 200
#define ZL_STOP_SLACK_MS 2000
#define ZL_STATUS_RETRY_MS 1000
#define ZL_BACKOFF_RESET_MS (10 * 60 * 1000)

enum { ZL_PROBE_LIVENESS = 0, ZL_PROBE_READINESS = 1, ZL_PROBE_STARTUP = 2 };

//  The conditions the zubelet writes; others' are kept (readiness gates)
static const char *s_owned_conditions[ZL_COND_COUNT] = {"PodScheduled", "Initialized",
                                                        "ContainersReady", "Ready"};


static void s_pod_sync (zubelet_t *self, zl_pod_t *p);
static void s_status_mark (zubelet_t *self, zl_pod_t *p);
static Zube__Probe *s_probe_spec (Zube__Container *spec, int kind);

//  ---------------------------------------------------------------------
//  Helpers

static char *
s_str (const char *text)
{
    return strdup (text ? text : "");
}

static Zube__Container *
s_spec (zl_pod_t *p, zl_container_t *c)
{
    Zube__PodSpec *spec = p->pod->spec;
    if (!spec)
        return NULL;
    if (c->init)
        return c->index < spec->n_init_containers ? spec->init_containers[c->index] : NULL;
    return c->index < spec->n_containers ? spec->containers[c->index] : NULL;
}

static const char *
s_restart_policy (zl_pod_t *p)
{
    const char *policy = p->pod->spec ? p->pod->spec->restart_policy : NULL;
    return policy && *policy ? policy : "Always";
}

//  spec.terminationGracePeriodSeconds (30 when not given)
static int64_t
s_grace_s (zl_pod_t *p)
{
    Zube__PodSpec *spec = p->pod->spec;
    return spec && spec->has_termination_grace_period_seconds
               ? spec->termination_grace_period_seconds
               : 30;
}

static zl_container_t *
s_container_by_id (zl_pod_t *p, const char *id)
{
    for (size_t i = 0; i < p->container_count; i++)
        if (p->containers[i].id[0] && streq (p->containers[i].id, id))
            return &p->containers[i];
    return NULL;
}

static zl_container_t *
s_container_by_name (zl_pod_t *p, const char *name, bool init)
{
    for (size_t i = 0; i < p->container_count; i++)
        if (p->containers[i].init == init && streq (p->containers[i].name, name))
            return &p->containers[i];
    return NULL;
}

//  Go's time.Duration text for whole milliseconds: 500ms, 10s, 1m20s, 5m0s
static void
s_go_duration (int64_t ms, char *buf, size_t size)
{
    if (ms < 1000) {
        snprintf (buf, size, "%" PRId64 "ms", ms);
        return;
    }
    int64_t minutes = ms / 60000;
    int64_t seconds_ms = ms % 60000;
    char seconds[32];
    if (seconds_ms % 1000)
        snprintf (seconds, sizeof seconds, "%" PRId64 ".%03" PRId64, seconds_ms / 1000,
                  seconds_ms % 1000);
    else
        snprintf (seconds, sizeof seconds, "%" PRId64, seconds_ms / 1000);
    //  Go trims trailing zeros of the fraction
    char *dot = strchr (seconds, '.');
    if (dot) {
        char *end = seconds + strlen (seconds) - 1;
        while (end > dot && *end == '0')
            *end-- = 0;
    }
    if (minutes >= 60)
        snprintf (buf, size, "%" PRId64 "h%" PRId64 "m%ss", minutes / 60, minutes % 60,
                  seconds);
    else if (minutes)
        snprintf (buf, size, "%" PRId64 "m%ss", minutes, seconds);
    else
        snprintf (buf, size, "%ss", seconds);
}

static void
s_set_waiting (zl_container_t *c, const char *reason, const char *message)
{
    snprintf (c->waiting_reason, sizeof c->waiting_reason, "%s", reason ? reason : "");
    free (c->waiting_message);
    c->waiting_message = message && *message ? strdup (message) : NULL;
}

static void
s_terminated_from (zl_terminated_t *t, const zube_runtime_container_status_t *st)
{
    t->valid = true;
    t->exit_code = st->exit_code;
    snprintf (t->reason, sizeof t->reason, "%s",
              st->reason[0] ? st->reason : (st->exit_code == 0 ? "Completed" : "Error"));
    snprintf (t->message, sizeof t->message, "%s", st->message);
    t->started_ms = st->started_ms;
    t->finished_ms = st->finished_ms;
    snprintf (t->id, sizeof t->id, "%s", st->id);
}

static void
s_container_update (zl_container_t *c, const zube_runtime_container_status_t *st)
{
    c->state = st->state;
    c->started_ms = st->started_ms;
    c->finished_ms = st->finished_ms;
    if (st->state == ZUBE_RUNTIME_CONTAINER_EXITED)
        s_terminated_from (&c->term, st);
    else
        c->term.valid = false;
    if (st->image_id[0] && (!c->image_id || !streq (c->image_id, st->image_id))) {
        free (c->image_id);
        c->image_id = strdup (st->image_id);
    }
}

static void
s_container_refresh (zubelet_t *self, zl_container_t *c)
{
    zube_runtime_container_status_t st = {.struct_size = sizeof st};
    if (zube_runtime_container_status (self->runtime, c->id, &st) == ZUBE_OK)
        s_container_update (c, &st);
}

//  ---------------------------------------------------------------------
//  Records

static void
s_pod_free (zl_pod_t *p)
{
    for (size_t i = 0; i < p->container_count; i++) {
        free (p->containers[i].name);
        free (p->containers[i].image_id);
        free (p->containers[i].waiting_message);
    }
    free (p->containers);
    if (p->pod)
        protobuf_c_message_free_unpacked (&p->pod->base, NULL);
    free (p->key);
    free (p->uid);
    free (p->sandbox_error);
    free (p->sent);
    free (p);
}

static void
s_pod_unref (zl_pod_t *p)
{
    if (--p->refs <= 0 && p->dead)
        s_pod_free (p);
}

//  Forgets the pod: no more timers, no index entries; freed now or when
//  the last call in flight for it ends.
static void
s_pod_forget (zubelet_t *self, zl_pod_t *p)
{
    if (p->dead)
        return;
    zl_timer_cancel (self, &p->sync_timer);
    zl_timer_cancel (self, &p->status_timer);
    if (zhashx_lookup (self->pods, p->key) == p)
        zhashx_delete (self->pods, p->key);
    if (p->sandbox_id[0] && zhashx_lookup (self->pod_by_sandbox, p->sandbox_id) == p)
        zhashx_delete (self->pod_by_sandbox, p->sandbox_id);
    if (p->node && p->node->pod_count)
        p->node->pod_count--;
    if (p->prev)
        p->prev->next = p->next;
    else
        self->pod_list = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
    p->dead = true;
    if (p->refs <= 0)
        s_pod_free (p);
}

void
zl_pod_destroy_all (zubelet_t *self)
{
    while (self->pod_list) {
        zl_pod_t *p = self->pod_list;
        p->refs = 0;
        s_pod_forget (self, p);
    }
}

static void
s_sync_timer (zubelet_t *self, zl_timer_t *timer)
{
    zl_pod_t *p = (zl_pod_t *)((char *)timer - offsetof (zl_pod_t, sync_timer));
    s_pod_sync (self, p);
}

static void s_status_timer (zubelet_t *self, zl_timer_t *timer);

static void
s_sync_soon (zubelet_t *self, zl_pod_t *p)
{
    zl_timer_set (self, &p->sync_timer, 0);
}

//  Conditions and startTime the API already has (an adopted pod keeps
//  its transition times)
static void
s_pod_take_status (zl_pod_t *p)
{
    Zube__PodStatus *status = p->pod->status;
    if (!status)
        return;
    if (status->start_time && !p->start_time_s)
        p->start_time_s = zl_parse_time_ms (status->start_time) / 1000;
    for (size_t i = 0; i < status->n_conditions; i++) {
        Zube__PodCondition *cond = status->conditions[i];
        for (int k = 0; k < ZL_COND_COUNT; k++)
            if (cond->type && streq (cond->type, s_owned_conditions[k]) && !p->cond_status[k]) {
                p->cond_status[k] = cond->status && streq (cond->status, "True") ? 2 : 1;
                p->cond_time_s[k] = zl_parse_time_ms (cond->last_transition_time) / 1000;
            }
    }
    for (size_t i = 0; i < status->n_container_statuses + status->n_init_container_statuses;
         i++) {
        bool init = i >= status->n_container_statuses;
        Zube__ContainerStatus *cs =
            init ? status->init_container_statuses[i - status->n_container_statuses]
                 : status->container_statuses[i];
        zl_container_t *c = cs->name ? s_container_by_name (p, cs->name, init) : NULL;
        if (c && cs->restart_count > (int32_t)c->restart_count)
            c->restart_count = (uint32_t)cs->restart_count;
    }
}

static zl_pod_t *
s_pod_new (zubelet_t *self, zl_node_t *node, const char *key, Zube__Pod *pod)
{
    zl_pod_t *p = calloc (1, sizeof *p);
    if (!p)
        return NULL;
    p->key = strdup (key);
    p->uid = s_str (pod->metadata->uid);
    p->node = node;
    p->pod = pod;
    size_t init = pod->spec ? pod->spec->n_init_containers : 0;
    size_t app = pod->spec ? pod->spec->n_containers : 0;
    p->init_count = init;
    p->container_count = init + app;
    p->containers = calloc (p->container_count ? p->container_count : 1, sizeof *p->containers);
    if (!p->key || !p->uid || !p->containers) {
        p->pod = NULL;
        s_pod_free (p);
        return NULL;
    }
    for (size_t i = 0; i < p->container_count; i++) {
        zl_container_t *c = &p->containers[i];
        c->init = i < init;
        c->index = (uint32_t)(c->init ? i : i - init);
        Zube__Container *spec = s_spec (p, c);
        c->name = s_str (spec ? spec->name : "");
        c->sidecar = c->init && spec && spec->restart_policy && streq (spec->restart_policy, "Always");
        c->backoff_ms = self->config.backoff_base_ms;
    }
    p->sync_timer.fn = s_sync_timer;
    p->status_timer.fn = s_status_timer;
    s_pod_take_status (p);
    if (!p->start_time_s)
        p->start_time_s = zl_now_wall_ms () / 1000;
    p->next = self->pod_list;
    if (p->next)
        p->next->prev = p;
    self->pod_list = p;
    node->pod_count++;
    zhashx_insert (self->pods, key, p);
    return p;
}

//  ---------------------------------------------------------------------
//  Adoption

typedef struct {
    zl_pod_t *p;
    int64_t *current;       //  attempt of the current instance, -1: none
    int64_t *previous;      //  attempt of the last state, -1: none
} s_adopt_t;

//  The newest instance of each container is its current one, the newest
//  exited one before it its last state
static int
s_adopt_container (void *arg, const zube_runtime_container_status_t *st)
{
    s_adopt_t *adopt = (s_adopt_t *)arg;
    zl_pod_t *p = adopt->p;
    zl_container_t *c = s_container_by_name (p, st->name, st->init);
    if (!c)
        return 0;
    size_t i = (size_t)(c - p->containers);
    int64_t attempt = st->attempt;
    if (attempt > adopt->current[i]) {
        if (adopt->current[i] >= 0 && c->term.valid && adopt->current[i] > adopt->previous[i]) {
            c->last = c->term;
            adopt->previous[i] = adopt->current[i];
        }
        adopt->current[i] = attempt;
        snprintf (c->id, sizeof c->id, "%s", st->id);
        s_container_update (c, st);
    } else if (st->state == ZUBE_RUNTIME_CONTAINER_EXITED && attempt > adopt->previous[i]) {
        s_terminated_from (&c->last, st);
        adopt->previous[i] = attempt;
    }
    return 0;
}

static void
s_pod_adopt (zubelet_t *self, zl_pod_t *p, const char *sandbox_id)
{
    zube_runtime_sandbox_status_t sandbox = {.struct_size = sizeof sandbox};
    if (zube_runtime_sandbox_status (self->runtime, sandbox_id, &sandbox) != ZUBE_OK)
        return;
    snprintf (p->sandbox_id, sizeof p->sandbox_id, "%s", sandbox_id);
    snprintf (p->ip, sizeof p->ip, "%s", sandbox.ip);
    zhashx_update (self->pod_by_sandbox, p->sandbox_id, p);
    size_t n = p->container_count ? p->container_count : 1;
    s_adopt_t adopt = {.p = p,
                       .current = malloc (n * sizeof (int64_t)),
                       .previous = malloc (n * sizeof (int64_t))};
    if (!adopt.current || !adopt.previous) {
        free (adopt.current);
        free (adopt.previous);
        return;
    }
    for (size_t i = 0; i < n; i++)
        adopt.current[i] = adopt.previous[i] = -1;
    zube_runtime_list_containers (self->runtime, sandbox_id, s_adopt_container, &adopt);
    for (size_t i = 0; i < p->container_count; i++) {
        zl_container_t *c = &p->containers[i];
        if (adopt.current[i] > (int64_t)c->restart_count)
            c->restart_count = (uint32_t)adopt.current[i];
        if (c->state == ZUBE_RUNTIME_CONTAINER_RUNNING) {
            c->running_since_mono = zl_now_mono () - (zl_now_wall_ms () - c->started_ms);
            c->started = false;
        }
        //  A sidecar that ran before the restart let the next init go then
        if (c->sidecar && c->id[0])
            c->ever_started = true;
        //  Back-off as far as the restarts went
        for (uint32_t r = 0; r < c->restart_count && c->backoff_ms < self->config.backoff_max_ms;
             r++)
            c->backoff_ms *= 2;
        if (c->backoff_ms > self->config.backoff_max_ms)
            c->backoff_ms = self->config.backoff_max_ms;
    }
    free (adopt.current);
    free (adopt.previous);
    zube_log_info ("msg=\"pod adopted\" pod=%s uid=%s sandbox=%s node=%s", p->key, p->uid,
                   sandbox_id, p->node->name);
}

void
zl_pod_adoption_done (zubelet_t *self)
{
    for (char *sandbox = (char *)zhashx_first (self->adoptable); sandbox;
         sandbox = (char *)zhashx_next (self->adoptable)) {
        zube_log_info ("msg=\"removing the sandbox of a pod that is gone\" sandbox=%s uid=%s",
                       sandbox, (const char *)zhashx_cursor (self->adoptable));
        zube_runtime_stop_sandbox (self->runtime, sandbox, 0);
        if (zube_runtime_remove_sandbox (self->runtime, sandbox) != ZUBE_OK)
            zube_log_warn ("msg=\"cannot remove sandbox\" sandbox=%s error=\"%s\"", sandbox,
                           zube_runtime_error (self->runtime));
        zl_pod_volumes_remove (self, (const char *)zhashx_cursor (self->adoptable));
    }
    zhashx_purge (self->adoptable);
    zl_runtime_poke (self);
}

//  ---------------------------------------------------------------------
//  Events

void
zl_pod_apply (zubelet_t *self, zl_node_t *node, const char *type, Zube__Pod **pod_p,
              int64_t rv)
{
    Zube__Pod *pod = *pod_p;
    if (!pod->metadata || !pod->metadata->name || !pod->metadata->namespace_ ||
        !pod->metadata->uid)
        return;
    char key[600];
    snprintf (key, sizeof key, "%s/%s", pod->metadata->namespace_, pod->metadata->name);
    zl_pod_t *p = (zl_pod_t *)zhashx_lookup (self->pods, key);
    if (p && !streq (p->uid, pod->metadata->uid)) {
        //  Another pod of the same name: the old one is gone
        p->gone = true;
        zhashx_delete (self->pods, key);
        s_sync_soon (self, p);
        p = NULL;
    }
    if (type && streq (type, "DELETED")) {
        if (p && rv > p->rv) {
            p->gone = true;
            p->deleting = true;
            s_sync_soon (self, p);
        }
        return;
    }
    if (p && rv <= p->rv)
        return;
    if (!p) {
        p = s_pod_new (self, node, key, pod);
        if (!p)
            return;
        *pod_p = NULL;
        const char *sandbox = (const char *)zhashx_lookup (self->adoptable, p->uid);
        if (sandbox) {
            s_pod_adopt (self, p, sandbox);
            zhashx_delete (self->adoptable, p->uid);
        }
    } else {
        protobuf_c_message_free_unpacked (&p->pod->base, NULL);
        p->pod = pod;
        *pod_p = NULL;
    }
    p->rv = rv;
    if (pod->metadata->deletion_timestamp && *pod->metadata->deletion_timestamp)
        p->deleting = true;
    s_sync_soon (self, p);
}

zl_pod_t *
zl_pod_find (zubelet_t *self, const char *pod_namespace, const char *name)
{
    char key[600];
    snprintf (key, sizeof key, "%s/%s", pod_namespace, name);
    return (zl_pod_t *)zhashx_lookup (self->pods, key);
}

void
zl_pod_forget_unseen (zubelet_t *self, zhashx_t *seen)
{
    for (zl_pod_t *p = self->pod_list; p; p = p->next)
        if (!p->gone && !zhashx_lookup (seen, p->key)) {
            p->gone = true;
            p->deleting = true;
            if (zhashx_lookup (self->pods, p->key) == p)
                zhashx_delete (self->pods, p->key);
            s_sync_soon (self, p);
        }
}

void
zl_pod_runtime_event (zubelet_t *self, const zube_runtime_container_status_t *st)
{
    zl_pod_t *p = (zl_pod_t *)zhashx_lookup (self->pod_by_sandbox, st->sandbox_id);
    if (!p)
        return;
    zl_container_t *c = s_container_by_id (p, st->id);
    if (!c)
        return;
    //  The runtime reports a start the sync that made it already saw
    //  (sim starts at once): without probes to schedule (the next sync
    //  does that) there is nothing to do and no status to build again
    Zube__Container *spec = s_spec (p, c);
    if (c->state == st->state && c->started_ms == st->started_ms &&
        c->finished_ms == st->finished_ms && st->state == ZUBE_RUNTIME_CONTAINER_RUNNING &&
        !s_probe_spec (spec, ZL_PROBE_LIVENESS) && !s_probe_spec (spec, ZL_PROBE_READINESS) &&
        !s_probe_spec (spec, ZL_PROBE_STARTUP))
        return;
    s_container_update (c, st);
    if (st->state == ZUBE_RUNTIME_CONTAINER_RUNNING && !c->running_since_mono)
        c->running_since_mono = zl_now_mono ();
    s_sync_soon (self, p);
}

//  ---------------------------------------------------------------------
//  Probes

static Zube__Probe *
s_probe_spec (Zube__Container *spec, int kind)
{
    if (!spec)
        return NULL;
    return kind == ZL_PROBE_LIVENESS    ? spec->liveness_probe
           : kind == ZL_PROBE_READINESS ? spec->readiness_probe
                                        : spec->startup_probe;
}

static int64_t
s_probe_period_ms (Zube__Probe *probe)
{
    return (probe->has_period_seconds && probe->period_seconds > 0 ? probe->period_seconds : 10) *
           1000;
}

//  Applies one probe outcome with the probe's thresholds; false when a
//  liveness or startup probe failed for good (the container is being
//  killed)
static bool
s_probe_outcome (zubelet_t *self, zl_pod_t *p, zl_container_t *c, int k, bool success,
                 const char *message, int64_t now)
{
    Zube__Probe *probe = s_probe_spec (s_spec (p, c), k);
    if (!probe)
        return true;
    zl_probe_state_t *state = &c->probes[k];
    int success_threshold =
        probe->has_success_threshold && probe->success_threshold > 0 ? probe->success_threshold : 1;
    int failure_threshold =
        probe->has_failure_threshold && probe->failure_threshold > 0 ? probe->failure_threshold : 3;
    if (success) {
        state->failures = 0;
        if (++state->successes >= success_threshold)
            state->ok = true;
    } else {
        state->successes = 0;
        if (++state->failures >= failure_threshold)
            state->ok = false;
        zube_log_debug ("msg=\"probe failed\" pod=%s container=%s probe=%s message=\"%s\"",
                        p->key, c->name,
                        k == ZL_PROBE_LIVENESS    ? "liveness"
                        : k == ZL_PROBE_READINESS ? "readiness"
                                                  : "startup",
                        message);
    }
    if (k == ZL_PROBE_STARTUP && state->ok) {
        c->started = true;
        //  Liveness and readiness start now
        c->running_since_mono = now;
        s_sync_soon (self, p);
    }
    if ((k == ZL_PROBE_LIVENESS || k == ZL_PROBE_STARTUP) && !success &&
        state->failures >= failure_threshold) {
        zube_log_info ("msg=\"%s probe failed: killing the container\" pod=%s "
                       "container=%s message=\"%s\"",
                       k == ZL_PROBE_LIVENESS ? "liveness" : "startup", p->key, c->name,
                       message);
        int64_t grace = s_grace_s (p);
        if (probe->has_termination_grace_period_seconds)
            grace = probe->termination_grace_period_seconds;
        zube_runtime_stop_container (self->runtime, c->id, grace * 1000);
        zl_runtime_poke (self);
        return false;
    }
    return true;
}

//  A host probe's outcome (prober.c): applied if the container instance
//  still runs
void
zl_pod_probe_done (zubelet_t *self, zl_pod_t *p, const char *container_id, int kind,
                   bool success, const char *message)
{
    bool dead = p->dead;
    s_pod_unref (p);
    if (dead || self->closing)
        return;
    zl_container_t *c = s_container_by_id (p, container_id);
    if (!c || c->state != ZUBE_RUNTIME_CONTAINER_RUNNING)
        return;
    c->probes[kind].in_flight = false;
    if (s_probe_outcome (self, p, c, kind, success, message, zl_now_mono ())) {
        Zube__Probe *readiness = s_probe_spec (s_spec (p, c), ZL_PROBE_READINESS);
        c->ready = c->started && (!readiness || c->probes[ZL_PROBE_READINESS].ok);
    }
    s_sync_soon (self, p);
}

//  Runs the probes that are due; false when liveness or startup failed
//  for good (the container is being killed)
static bool
s_probes (zubelet_t *self, zl_pod_t *p, zl_container_t *c, int64_t now, int64_t *wake)
{
    Zube__Container *spec = s_spec (p, c);
    Zube__Probe *startup = s_probe_spec (spec, ZL_PROBE_STARTUP);
    if (!startup)
        c->started = true;
    static const zube_runtime_probe_kind_t kinds[3] = {
        ZUBE_RUNTIME_PROBE_LIVENESS, ZUBE_RUNTIME_PROBE_READINESS, ZUBE_RUNTIME_PROBE_STARTUP};
    for (int k = ZL_PROBE_STARTUP; k >= 0; k--) {
        Zube__Probe *probe = s_probe_spec (spec, k);
        if (!probe)
            continue;
        if (k == ZL_PROBE_STARTUP && c->started)
            continue;
        if (k != ZL_PROBE_STARTUP && !c->started)
            continue;
        zl_probe_state_t *state = &c->probes[k];
        if (!state->next_ms) {
            int64_t delay =
                probe->has_initial_delay_seconds ? probe->initial_delay_seconds * 1000 : 0;
            state->next_ms = (c->running_since_mono ? c->running_since_mono : now) + delay;
            if (k == ZL_PROBE_LIVENESS)
                state->ok = true;
        }
        if (state->next_ms > now) {
            if (state->next_ms < *wake)
                *wake = state->next_ms;
            continue;
        }
        state->next_ms = now + s_probe_period_ms (probe);
        if (state->next_ms < *wake)
            *wake = state->next_ms;
        bool success = true;
        char message[256] = "";
        int64_t timeout = (probe->has_timeout_seconds && probe->timeout_seconds > 0
                               ? probe->timeout_seconds
                               : 1) *
                          1000;
        zube_status_t status = zube_runtime_probe (self->runtime, c->id, kinds[k], timeout,
                                                   &success, message, sizeof message);
        if (status == ZUBE_UNAVAILABLE) {
            //  The runtime does not probe: the zubelet does (prober.c),
            //  one probe of a kind at a time; its outcome comes later
            if (state->in_flight)
                continue;
            if (zl_prober_start (self, p, c, k, probe, timeout, message, sizeof message) == 0) {
                state->in_flight = true;
                continue;
            }
            success = false;
        } else if (status != ZUBE_OK)
            success = false;
        if (!s_probe_outcome (self, p, c, k, success, message, now))
            return false;
    }
    Zube__Probe *readiness = s_probe_spec (spec, ZL_PROBE_READINESS);
    c->ready = c->started && (!readiness || c->probes[ZL_PROBE_READINESS].ok);
    return true;
}

//  ---------------------------------------------------------------------
//  Starting containers

static void
s_arm_wake (int64_t *wake, int64_t when)
{
    if (when < *wake)
        *wake = when;
}

//  Starts (or restarts, after its back-off) container c. Answers true
//  when it was started now.
static bool
s_container_start (zubelet_t *self, zl_pod_t *p, zl_container_t *c, int64_t *wake)
{
    int64_t now_wall = zl_now_wall_ms ();
    int64_t now = zl_now_mono ();
    Zube__Container *spec = s_spec (p, c);
    bool restart = c->id[0] && c->state == ZUBE_RUNTIME_CONTAINER_EXITED;
    if (restart && !c->next_start_ms) {
        //  A new exit: the next back-off
        int64_t ran = c->term.finished_ms - c->term.started_ms;
        if (ran >= ZL_BACKOFF_RESET_MS)
            c->backoff_ms = self->config.backoff_base_ms;
        int64_t delay = c->backoff_ms;
        int64_t finished = c->term.finished_ms ? c->term.finished_ms : now_wall;
        c->next_start_ms = finished + delay;
        c->backoff_ms = delay * 2 > self->config.backoff_max_ms ? self->config.backoff_max_ms
                                                                : delay * 2;
        char duration[32], message[600];
        s_go_duration (delay, duration, sizeof duration);
        snprintf (message, sizeof message,
                  "back-off %s restarting failed container=%s pod=%s_%s(%s)", duration, c->name,
                  p->pod->metadata->name, p->pod->metadata->namespace_, p->uid);
        s_set_waiting (c, "CrashLoopBackOff", message);
    }
    if (c->next_start_ms > now_wall) {
        s_arm_wake (wake, now + (c->next_start_ms - now_wall));
        return false;
    }
    uint32_t attempt = c->restart_count;
    if (restart) {
        //  The exited instance becomes the last state; the one before goes
        if (c->last.valid && c->last.id[0] && !streq (c->last.id, c->id))
            zube_runtime_remove_container (self->runtime, c->last.id);
        c->last = c->term;
        attempt = c->restart_count + 1;
    }
    zube_runtime_container_config_t config = {.struct_size = sizeof config,
                                              .name = c->name,
                                              .init = c->init,
                                              .index = c->index,
                                              .attempt = attempt};
    char id[ZUBE_RUNTIME_ID_MAX] = "";
    zube_status_t status =
        zube_runtime_create_container (self->runtime, p->sandbox_id, &config, id, sizeof id);
    zl_runtime_poke (self);
    if (status != ZUBE_OK) {
        const char *why = zube_runtime_error (self->runtime);
        const char *policy = spec && spec->image_pull_policy ? spec->image_pull_policy : "";
        char message[700];
        if (status == ZUBE_BAD_REQUEST && streq (policy, "Never")) {
            snprintf (message, sizeof message,
                      "Container image \"%s\" is not present with pull policy of Never",
                      spec && spec->image ? spec->image : "");
            s_set_waiting (c, "ErrImageNeverPull", message);
        } else if (status == ZUBE_BAD_REQUEST)
            s_set_waiting (c, "ImagePullBackOff", why);
        else
            s_set_waiting (c, "CreateContainerError", why);
        //  Retry with the same back-off as a crash
        int64_t delay = c->backoff_ms;
        c->backoff_ms = delay * 2 > self->config.backoff_max_ms ? self->config.backoff_max_ms
                                                                : delay * 2;
        c->next_start_ms = now_wall + delay;
        s_arm_wake (wake, now + delay);
        if (restart) {
            //  Keep showing the exited instance until a new one exists
            c->next_start_ms = now_wall + delay;
        }
        return false;
    }
    if (restart)
        c->restart_count = attempt;
    snprintf (c->id, sizeof c->id, "%s", id);
    zhashx_update (self->pod_by_sandbox, p->sandbox_id, p);
    c->state = ZUBE_RUNTIME_CONTAINER_CREATED;
    c->term.valid = false;
    c->next_start_ms = 0;
    c->ready = false;
    c->started = false;
    c->running_since_mono = 0;
    memset (c->probes, 0, sizeof c->probes);
    status = zube_runtime_start_container (self->runtime, id);
    if (status != ZUBE_OK) {
        s_set_waiting (c, "RunContainerError", zube_runtime_error (self->runtime));
        s_container_refresh (self, c);
        return false;
    }
    s_set_waiting (c, "", NULL);
    s_container_refresh (self, c);
    if (c->state == ZUBE_RUNTIME_CONTAINER_RUNNING) {
        c->running_since_mono = now;
        //  As the kubelet's prober manager: without a startup probe a
        //  running container has started, without a readiness probe it
        //  is ready. So the status written after this sync is the
        //  Running, Ready one, not an unready step before it.
        c->started = !s_probe_spec (spec, ZL_PROBE_STARTUP);
        c->ready = c->started && !s_probe_spec (spec, ZL_PROBE_READINESS);
    }
    return true;
}

//  ---------------------------------------------------------------------
//  Termination

static void
s_delete_done (zubelet_t *self, zube_status_t status, ProtobufCMessage *object,
               const zube_api_error_t *error, void *arg)
{
    (void)object;
    zl_pod_t *p = (zl_pod_t *)arg;
    p->delete_in_flight = false;
    bool dead = p->dead;
    s_pod_unref (p);
    if (dead || self->closing)
        return;
    if (status == ZUBE_OK || status == ZUBE_NOT_FOUND || status == ZUBE_CONFLICT) {
        zube_log_debug ("msg=\"pod deleted\" pod=%s", p->key);
        s_pod_forget (self, p);
        return;
    }
    zube_log_warn ("msg=\"cannot delete pod\" pod=%s error=\"%s\"", p->key,
                   error ? error->message : "");
    zl_timer_set (self, &p->sync_timer, zl_now_mono () + ZL_STATUS_RETRY_MS);
}

static bool
s_all_stopped (zubelet_t *self, zl_pod_t *p)
{
    bool stopped = true;
    for (size_t i = 0; i < p->container_count; i++) {
        zl_container_t *c = &p->containers[i];
        if (!c->id[0])
            continue;
        s_container_refresh (self, c);
        if (c->state == ZUBE_RUNTIME_CONTAINER_RUNNING)
            stopped = false;
    }
    return stopped;
}

//  A pod with sidecars stops its main containers first and its sidecars
//  (with the sandbox) once they exited, or once their grace ran out.
//  Answers whether the sandbox may be stopped now.
static bool
s_mains_stopped (zubelet_t *self, zl_pod_t *p)
{
    bool sidecars = false;
    for (size_t i = 0; i < p->init_count; i++)
        sidecars = sidecars || p->containers[i].sidecar;
    if (!sidecars)
        return true;
    int64_t now = zl_now_mono ();
    int64_t grace = 0;
    if (!p->gone && p->pod->metadata->has_deletion_grace_period_seconds)
        grace = p->pod->metadata->deletion_grace_period_seconds;
    if (!p->mains_stop_sent) {
        p->mains_stop_sent = true;
        p->sidecars_stopping = true;
        p->stop_deadline_ms = now + grace * 1000 + ZL_STOP_SLACK_MS;
        zube_log_info ("msg=\"stopping the main containers before the sidecars\" pod=%s "
                       "grace_s=%" PRId64,
                       p->key, grace);
        for (size_t i = p->init_count; i < p->container_count; i++)
            if (p->containers[i].id[0])
                zube_runtime_stop_container (self->runtime, p->containers[i].id, grace * 1000);
        zl_runtime_poke (self);
    }
    if (now >= p->stop_deadline_ms)
        return true;
    for (size_t i = p->init_count; i < p->container_count; i++) {
        zl_container_t *c = &p->containers[i];
        if (!c->id[0])
            continue;
        s_container_refresh (self, c);
        if (c->state == ZUBE_RUNTIME_CONTAINER_RUNNING)
            return false;
    }
    return true;
}

static void
s_pod_terminate (zubelet_t *self, zl_pod_t *p)
{
    int64_t now = zl_now_mono ();
    if (p->sandbox_id[0] && !p->sandbox_removed && !p->stop_sent && !s_mains_stopped (self, p)) {
        zl_timer_set (self, &p->sync_timer, now + ZL_STOP_POLL_MS);
        return;
    }
    if (p->sandbox_id[0] && !p->sandbox_removed) {
        if (!p->stop_sent) {
            int64_t grace = 0;
            if (!p->gone && p->pod->metadata->has_deletion_grace_period_seconds)
                grace = p->pod->metadata->deletion_grace_period_seconds;
            zube_log_info ("msg=\"stopping pod\" pod=%s grace_s=%" PRId64, p->key, grace);
            zube_runtime_stop_sandbox (self->runtime, p->sandbox_id, grace * 1000);
            zl_runtime_poke (self);
            p->stop_sent = true;
            p->stop_deadline_ms = now + grace * 1000 + ZL_STOP_SLACK_MS;
        }
        if (!s_all_stopped (self, p) && now < p->stop_deadline_ms) {
            zl_timer_set (self, &p->sync_timer, now + ZL_STOP_POLL_MS);
            return;
        }
        if (zube_runtime_remove_sandbox (self->runtime, p->sandbox_id) != ZUBE_OK &&
            now < p->stop_deadline_ms + ZL_STOP_SLACK_MS) {
            zl_timer_set (self, &p->sync_timer, now + ZL_STOP_POLL_MS);
            return;
        }
        zl_runtime_poke (self);
        if (zhashx_lookup (self->pod_by_sandbox, p->sandbox_id) == p)
            zhashx_delete (self->pod_by_sandbox, p->sandbox_id);
    }
    p->sandbox_removed = true;
    zl_pod_volumes_remove (self, p->uid);
    if (p->gone) {
        s_pod_forget (self, p);
        return;
    }
    if (p->delete_in_flight)
        return;
    Zube__DeleteRequest request = ZUBE__DELETE_REQUEST__INIT;
    Zube__Preconditions preconditions = ZUBE__PRECONDITIONS__INIT;
    request.resource = "pods";
    request.namespace_ = p->pod->metadata->namespace_;
    request.name = p->pod->metadata->name;
    request.has_grace_period_seconds = true;
    request.grace_period_seconds = 0;
    preconditions.uid = p->uid;
    request.preconditions = &preconditions;
    if (zl_call (self, "delete", &request.base, NULL, s_delete_done, p) == 0) {
        p->delete_in_flight = true;
        p->refs++;
    } else
        zl_timer_set (self, &p->sync_timer, now + ZL_STATUS_RETRY_MS);
}

//  ---------------------------------------------------------------------
//  The worker

static bool
s_sandbox (zubelet_t *self, zl_pod_t *p, int64_t *wake)
{
    if (p->sandbox_id[0])
        return true;
    int64_t now = zl_now_mono ();
    if (p->sandbox_retry_ms > now) {
        s_arm_wake (wake, p->sandbox_retry_ms);
        return false;
    }
    //  configMap and secret volumes written, env references resolved
    uint8_t *packed;
    size_t size;
    char view_error[1024];
    if (zl_pod_view_pack (self, p->pod, &packed, &size, view_error, sizeof view_error) != 0) {
        free (p->sandbox_error);
        p->sandbox_error = strdup (view_error);
        zube_log_warn ("msg=\"cannot prepare the pod's volumes and env\" pod=%s error=\"%s\"",
                       p->key, view_error);
        p->sandbox_retry_ms = now + ZL_SANDBOX_RETRY_MS;
        s_arm_wake (wake, p->sandbox_retry_ms);
        return false;
    }
    char log_dir[4400];
    snprintf (log_dir, sizeof log_dir, "%s/pods/%s_%s_%s", self->config.state_dir,
              p->pod->metadata->namespace_, p->pod->metadata->name, p->uid);
    zube_runtime_sandbox_config_t config = {.struct_size = sizeof config,
                                            .node_name = p->node->name,
                                            .pod_namespace = p->pod->metadata->namespace_,
                                            .pod_name = p->pod->metadata->name,
                                            .pod_uid = p->uid,
                                            .pod = packed,
                                            .pod_size = size,
                                            .log_dir = NULL};
    char id[ZUBE_RUNTIME_ID_MAX] = "";
    zube_status_t status = zube_runtime_run_sandbox (self->runtime, &config, id, sizeof id);
    free (packed);
    zl_runtime_poke (self);
    if (status != ZUBE_OK) {
        free (p->sandbox_error);
        p->sandbox_error = strdup (zube_runtime_error (self->runtime));
        zube_log_warn ("msg=\"cannot run the pod sandbox\" pod=%s error=\"%s\"", p->key,
                       p->sandbox_error ? p->sandbox_error : "");
        p->sandbox_retry_ms = now + ZL_SANDBOX_RETRY_MS;
        s_arm_wake (wake, p->sandbox_retry_ms);
        return false;
    }
    free (p->sandbox_error);
    p->sandbox_error = NULL;
    snprintf (p->sandbox_id, sizeof p->sandbox_id, "%s", id);
    zhashx_update (self->pod_by_sandbox, p->sandbox_id, p);
    zube_runtime_sandbox_status_t st = {.struct_size = sizeof st};
    if (zube_runtime_sandbox_status (self->runtime, id, &st) == ZUBE_OK)
        snprintf (p->ip, sizeof p->ip, "%s", st.ip);
    return true;
}

//  spec.activeDeadlineSeconds, counted from status.startTime as the
//  kubelet does: past it the pod is killed and Failed (DeadlineExceeded).
//  Answers true when it has run out.
static bool
s_deadline (zubelet_t *self, zl_pod_t *p, int64_t *wake)
{
    Zube__PodSpec *spec = p->pod->spec;
    if (p->deadline_exceeded)
        return true;
    if (!spec || !spec->has_active_deadline_seconds || spec->active_deadline_seconds <= 0)
        return false;
    int64_t now_wall = zl_now_wall_ms ();
    int64_t deadline = (p->start_time_s + spec->active_deadline_seconds) * 1000;
    if (now_wall < deadline) {
        s_arm_wake (wake, zl_now_mono () + (deadline - now_wall));
        return false;
    }
    p->deadline_exceeded = true;
    int64_t grace = s_grace_s (p);
    zube_log_info ("msg=\"pod ran past its active deadline: killing it\" pod=%s "
                   "active_deadline_s=%" PRId64,
                   p->key, spec->active_deadline_seconds);
    if (p->sandbox_id[0]) {
        for (size_t i = 0; i < p->container_count; i++)
            if (p->containers[i].id[0] &&
                p->containers[i].state != ZUBE_RUNTIME_CONTAINER_EXITED)
                zube_runtime_stop_container (self->runtime, p->containers[i].id, grace * 1000);
        zl_runtime_poke (self);
    }
    return true;
}

//  Whether the exited container c runs again under the pod's policy
static bool
s_restarts (zl_pod_t *p, zl_container_t *c)
{
    if (c->sidecar)
        return !p->sidecars_stopping;
    const char *policy = s_restart_policy (p);
    if (streq (policy, "Never"))
        return false;
    if (streq (policy, "OnFailure"))
        return c->term.exit_code != 0;
    return c->init ? c->term.exit_code != 0 : true;
}

//  A main container or a sidecar: started, restarted under its policy
//  after its back-off, or probed while it runs
static void
s_container_sync (zubelet_t *self, zl_pod_t *p, zl_container_t *c, int64_t now, int64_t *wake)
{
    if (c->done)
        return;
    if (!c->id[0])
        s_container_start (self, p, c, wake);
    else if (c->state == ZUBE_RUNTIME_CONTAINER_EXITED) {
        c->ready = false;
        c->started = false;
        if (!s_restarts (p, c)) {
            c->done = true;
            s_set_waiting (c, "", NULL);
        } else
            s_container_start (self, p, c, wake);
    } else if (c->state == ZUBE_RUNTIME_CONTAINER_RUNNING)
        s_probes (self, p, c, now, wake);
}

//  A sidecar: started (and restarted whatever the pod's restartPolicy)
//  and probed like a regular container. Answers whether the next init
//  container may go: once it has started (its startup probe passed, or
//  it runs and has none), for good.
static bool
s_sidecar_sync (zubelet_t *self, zl_pod_t *p, zl_container_t *c, int64_t now, int64_t *wake)
{
    s_container_sync (self, p, c, now, wake);
    if (c->state == ZUBE_RUNTIME_CONTAINER_RUNNING && c->started)
        c->ever_started = true;
    return c->ever_started;
}

//  Kubernetes 1.29: once every main container is done for good (a pod
//  with restartPolicy Never or OnFailure), the sidecars are stopped, in
//  reverse order, and the pod completes
static void
s_sidecars_stop_when_done (zubelet_t *self, zl_pod_t *p)
{
    if (p->sidecars_stopping || p->container_count == p->init_count)
        return;
    for (size_t i = p->init_count; i < p->container_count; i++)
        if (!p->containers[i].done)
            return;
    p->sidecars_stopping = true;
    for (size_t i = p->init_count; i-- > 0;) {
        zl_container_t *c = &p->containers[i];
        if (!c->sidecar || !c->id[0] || c->state == ZUBE_RUNTIME_CONTAINER_EXITED)
            continue;
        zube_log_info ("msg=\"main containers done: stopping sidecar\" pod=%s container=%s",
                       p->key, c->name);
        zube_runtime_stop_container (self->runtime, c->id, s_grace_s (p) * 1000);
        zl_runtime_poke (self);
    }
}

static void
s_pod_sync (zubelet_t *self, zl_pod_t *p)
{
    if (p->dead)
        return;
    if (p->deleting || p->gone) {
        s_status_mark (self, p);
        s_pod_terminate (self, p);
        return;
    }
    int64_t wake = INT64_MAX;
    int64_t now = zl_now_mono ();
    if (p->finished || s_deadline (self, p, &wake) || !s_sandbox (self, p, &wake))
        goto done;

    //  Init containers, one after the other, each to success; a sidecar
    //  only until it started, and it keeps running
    bool init_done = true;
    for (size_t i = 0; i < p->init_count; i++) {
        zl_container_t *c = &p->containers[i];
        if (c->sidecar) {
            if (s_sidecar_sync (self, p, c, now, &wake))
                continue;
            init_done = false;
            break;
        }
        if (c->id[0] && c->state == ZUBE_RUNTIME_CONTAINER_EXITED && c->term.valid &&
            c->term.exit_code == 0) {
            c->done = true;
            continue;
        }
        init_done = false;
        if (c->id[0] && c->state != ZUBE_RUNTIME_CONTAINER_EXITED)
            break;      //  running: wait for it
        if (c->id[0] && !s_restarts (p, c)) {
            c->done = true;
            p->init_failed = true;
            break;
        }
        s_container_start (self, p, c, &wake);
        break;
    }
    if (!init_done)
        goto done;

    for (size_t i = p->init_count; i < p->container_count; i++)
        s_container_sync (self, p, &p->containers[i], now, &wake);
    s_sidecars_stop_when_done (self, p);
done:
    s_status_mark (self, p);
    if (wake != INT64_MAX)
        zl_timer_set (self, &p->sync_timer, wake);
}

//  ---------------------------------------------------------------------
//  Status

static const char *
s_phase (zl_pod_t *p)
{
    if (p->init_failed || p->deadline_exceeded)
        return "Failed";
    for (size_t i = 0; i < p->init_count; i++)
        if (p->containers[i].sidecar ? !p->containers[i].ever_started : !p->containers[i].done)
            return "Pending";
    size_t unstarted = 0, running = 0, failed = 0, done = 0;
    for (size_t i = p->init_count; i < p->container_count; i++) {
        zl_container_t *c = &p->containers[i];
        if (c->done) {
            done++;
            if (c->term.valid && c->term.exit_code != 0)
                failed++;
        } else if (c->state == ZUBE_RUNTIME_CONTAINER_RUNNING ||
                   (c->id[0] && c->state == ZUBE_RUNTIME_CONTAINER_EXITED) || c->last.valid)
            running++;
        else
            unstarted++;
    }
    if (p->container_count == p->init_count)
        return "Pending";
    if (unstarted)
        return "Pending";
    if (running)
        return "Running";
    return failed ? "Failed" : "Succeeded";
}

static char *
s_time (int64_t wall_ms)
{
    char buf[40];
    zl_format_time (wall_ms, buf, sizeof buf);
    return strdup (buf);
}

static Zube__ContainerState *
s_state_new (void)
{
    Zube__ContainerState *state = malloc (sizeof *state);
    if (state)
        zube__container_state__init (state);
    return state;
}

static Zube__ContainerState *
s_state_terminated (zubelet_t *self, const zl_terminated_t *t)
{
    Zube__ContainerState *state = s_state_new ();
    Zube__ContainerStateTerminated *term = malloc (sizeof *term);
    if (!state || !term) {
        free (state);
        free (term);
        return NULL;
    }
    zube__container_state_terminated__init (term);
    term->has_exit_code = true;
    term->exit_code = t->exit_code;
    term->reason = s_str (t->reason);
    if (t->message[0])
        term->message = s_str (t->message);
    term->started_at = s_time (t->started_ms);
    term->finished_at = s_time (t->finished_ms);
    char id[200];
    snprintf (id, sizeof id, "%s://%s", zube_runtime_name (self->runtime), t->id);
    term->container_id = s_str (id);
    state->terminated = term;
    return state;
}

static Zube__ContainerState *
s_state_waiting (const char *reason, const char *message)
{
    Zube__ContainerState *state = s_state_new ();
    Zube__ContainerStateWaiting *waiting = malloc (sizeof *waiting);
    if (!state || !waiting) {
        free (state);
        free (waiting);
        return NULL;
    }
    zube__container_state_waiting__init (waiting);
    waiting->reason = s_str (reason);
    if (message && *message)
        waiting->message = s_str (message);
    state->waiting = waiting;
    return state;
}

static Zube__ContainerStatus *
s_container_status (zubelet_t *self, zl_pod_t *p, zl_container_t *c, bool initializing)
{
    Zube__ContainerStatus *cs = malloc (sizeof *cs);
    if (!cs)
        return NULL;
    zube__container_status__init (cs);
    Zube__Container *spec = s_spec (p, c);
    cs->name = s_str (c->name);
    cs->image = s_str (spec ? spec->image : "");
    cs->image_id = s_str (c->image_id);
    if (c->id[0]) {
        char id[200];
        snprintf (id, sizeof id, "%s://%s", zube_runtime_name (self->runtime), c->id);
        cs->container_id = s_str (id);
    }
    cs->has_restart_count = true;
    cs->restart_count = (int32_t)c->restart_count;
    cs->has_ready = true;
    cs->ready = c->ready && c->state == ZUBE_RUNTIME_CONTAINER_RUNNING;
    cs->has_started = true;
    cs->started = c->started && c->state == ZUBE_RUNTIME_CONTAINER_RUNNING;
    const zl_terminated_t *last = c->last.valid ? &c->last : NULL;
    if (c->id[0] && c->state == ZUBE_RUNTIME_CONTAINER_RUNNING) {
        cs->state = s_state_new ();
        Zube__ContainerStateRunning *running = malloc (sizeof *running);
        if (cs->state && running) {
            zube__container_state_running__init (running);
            running->started_at = s_time (c->started_ms);
            cs->state->running = running;
        } else
            free (running);
    } else if (c->id[0] && c->state == ZUBE_RUNTIME_CONTAINER_EXITED && c->term.valid &&
               !c->done && c->waiting_reason[0]) {
        //  Waiting to restart: the exited instance is the last state
        cs->state = s_state_waiting (c->waiting_reason, c->waiting_message);
        last = &c->term;
    } else if (c->id[0] && c->state == ZUBE_RUNTIME_CONTAINER_EXITED && c->term.valid)
        cs->state = s_state_terminated (self, &c->term);
    else if (c->waiting_reason[0])
        cs->state = s_state_waiting (c->waiting_reason, c->waiting_message);
    else
        cs->state = s_state_waiting (initializing ? "PodInitializing" : "ContainerCreating",
                                     NULL);
    if (last)
        cs->last_state = s_state_terminated (self, last);
    else {
        cs->last_state = s_state_new ();
    }
    return cs;
}

static const char *
s_qos_class (zl_pod_t *p)
{
    Zube__PodSpec *spec = p->pod->spec;
    bool any = false, guaranteed = true;
    for (size_t i = 0; spec && i < spec->n_init_containers + spec->n_containers; i++) {
        Zube__Container *c = i < spec->n_init_containers
                                 ? spec->init_containers[i]
                                 : spec->containers[i - spec->n_init_containers];
        Zube__ResourceRequirements *r = c->resources;
        const char *names[2] = {"cpu", "memory"};
        for (int n = 0; n < 2; n++) {
            const char *request = NULL, *limit = NULL;
            for (size_t j = 0; r && j < r->n_requests; j++)
                if (streq (r->requests[j]->key, names[n]) && r->requests[j]->value)
                    request = r->requests[j]->value->string;
            for (size_t j = 0; r && j < r->n_limits; j++)
                if (streq (r->limits[j]->key, names[n]) && r->limits[j]->value)
                    limit = r->limits[j]->value->string;
            if (request || limit)
                any = true;
            if (!limit || (request && !streq (request, limit)))
                guaranteed = false;
        }
    }
    if (!any)
        return "BestEffort";
    return guaranteed ? "Guaranteed" : "Burstable";
}

static void
s_condition_set (zl_pod_t *p, int k, bool value, int64_t now_s)
{
    uint8_t status = value ? 2 : 1;
    if (p->cond_status[k] != status) {
        p->cond_status[k] = status;
        p->cond_time_s[k] = now_s;
    }
}

static Zube__PodCondition *
s_condition (zl_pod_t *p, int k, const char *type, const char *reason, const char *message)
{
    Zube__PodCondition *cond = malloc (sizeof *cond);
    if (!cond)
        return NULL;
    zube__pod_condition__init (cond);
    cond->type = s_str (type);
    cond->status = s_str (p->cond_status[k] == 2 ? "True" : "False");
    cond->last_transition_time = s_time (p->cond_time_s[k] * 1000);
    if (reason && p->cond_status[k] != 2)
        cond->reason = s_str (reason);
    if (message && p->cond_status[k] != 2)
        cond->message = s_str (message);
    return cond;
}

static void
s_names_list (zl_pod_t *p, size_t from, size_t to, bool (*pick) (zl_container_t *c),
              char *buf, size_t size)
{
    size_t used = (size_t)snprintf (buf, size, "[");
    bool first = true;
    for (size_t i = from; i < to && used < size; i++)
        if (pick (&p->containers[i])) {
            used += (size_t)snprintf (buf + used, size - used, "%s%s", first ? "" : " ",
                                      p->containers[i].name);
            first = false;
        }
    if (used < size)
        snprintf (buf + used, size - used, "]");
}

static bool
s_not_done (zl_container_t *c)
{
    if (c->sidecar)
        return !c->ever_started;
    return !(c->done && c->term.valid && c->term.exit_code == 0);
}

//  Main containers and sidecars count for ContainersReady
static bool
s_not_ready (zl_container_t *c)
{
    if (c->init && !c->sidecar)
        return false;
    return !(c->ready && c->state == ZUBE_RUNTIME_CONTAINER_RUNNING);
}

static Zube__PodCondition *
s_condition_find (Zube__PodStatus *status, const char *type)
{
    for (size_t i = 0; status && i < status->n_conditions; i++)
        if (status->conditions[i]->type && streq (status->conditions[i]->type, type))
            return status->conditions[i];
    return NULL;
}

//  spec.readinessGates: each gate's condition, set by others, must be
//  True. false with the kubelet's message for the first that is not.
static bool
s_readiness_gates (zl_pod_t *p, char *message, size_t size)
{
    Zube__PodSpec *spec = p->pod->spec;
    for (size_t i = 0; spec && i < spec->n_readiness_gates; i++) {
        const char *type = spec->readiness_gates[i]->condition_type;
        if (!type || !*type)
            continue;
        Zube__PodCondition *cond = s_condition_find (p->pod->status, type);
        if (!cond) {
            snprintf (message, size,
                      "corresponding condition of pod readiness gate \"%s\" does not exist.",
                      type);
            return false;
        }
        if (!cond->status || !streq (cond->status, "True")) {
            snprintf (message, size,
                      "the status of pod readiness gate \"%s\" is not \"True\", but %s", type,
                      cond->status ? cond->status : "");
            return false;
        }
    }
    return true;
}

//  Appends the conditions of the stored status that the zubelet does not
//  own (readiness gates, DisruptionTarget, ...): a status write keeps them.
static void
s_conditions_keep_others (zl_pod_t *p, Zube__PodStatus *status)
{
    Zube__PodStatus *stored = p->pod->status;
    for (size_t i = 0; stored && i < stored->n_conditions; i++) {
        bool owned = false;
        for (int k = 0; k < ZL_COND_COUNT && !owned; k++)
            owned = stored->conditions[i]->type &&
                    streq (stored->conditions[i]->type, s_owned_conditions[k]);
        if (owned)
            continue;
        Zube__PodCondition **grown = realloc (
            status->conditions, (status->n_conditions + 1) * sizeof *status->conditions);
        if (!grown)
            return;
        status->conditions = grown;
        const ProtobufCMessage *cond = &stored->conditions[i]->base;
        size_t size = protobuf_c_message_get_packed_size (cond);
        uint8_t *data = malloc (size ? size : 1);
        if (!data)
            return;
        protobuf_c_message_pack (cond, data);
        Zube__PodCondition *copy = zube__pod_condition__unpack (NULL, size, data);
        free (data);
        if (copy)
            status->conditions[status->n_conditions++] = copy;
    }
}

static Zube__PodStatus *
s_status_build (zubelet_t *self, zl_pod_t *p)
{
    Zube__PodStatus *status = malloc (sizeof *status);
    if (!status)
        return NULL;
    zube__pod_status__init (status);
    int64_t now_s = zl_now_wall_ms () / 1000;
    const char *phase = s_phase (p);
    bool terminal = streq (phase, "Succeeded") || streq (phase, "Failed");
    status->phase = s_str (phase);
    bool initialized = true;
    for (size_t i = 0; i < p->init_count; i++)
        if (s_not_done (&p->containers[i]))
            initialized = false;
    bool ready = p->container_count > p->init_count;
    for (size_t i = 0; i < p->container_count; i++)
        if (s_not_ready (&p->containers[i]))
            ready = false;
    if (!p->cond_status[ZL_COND_SCHEDULED]) {
        p->cond_status[ZL_COND_SCHEDULED] = 2;
        p->cond_time_s[ZL_COND_SCHEDULED] =
            zl_parse_time_ms (p->pod->metadata->creation_timestamp) / 1000;
    }
    s_condition_set (p, ZL_COND_INITIALIZED, initialized, now_s);
    s_condition_set (p, ZL_COND_CONTAINERS_READY, ready, now_s);
    char gates[600] = "";
    bool gates_ready = s_readiness_gates (p, gates, sizeof gates);
    s_condition_set (p, ZL_COND_READY, ready && gates_ready, now_s);
    char incomplete[600], unready[600], message[700];
    s_names_list (p, 0, p->init_count, s_not_done, incomplete, sizeof incomplete);
    s_names_list (p, 0, p->container_count, s_not_ready, unready, sizeof unready);
    status->conditions = calloc (ZL_COND_COUNT, sizeof *status->conditions);
    if (status->conditions) {
        status->n_conditions = ZL_COND_COUNT;
        status->conditions[0] = s_condition (p, ZL_COND_SCHEDULED, "PodScheduled", NULL, NULL);
        snprintf (message, sizeof message, "containers with incomplete status: %s", incomplete);
        status->conditions[1] = s_condition (p, ZL_COND_INITIALIZED, "Initialized",
                                             "ContainersNotInitialized", message);
        snprintf (message, sizeof message, "containers with unready status: %s", unready);
        status->conditions[2] =
            s_condition (p, ZL_COND_CONTAINERS_READY, "ContainersReady",
                         terminal ? "PodCompleted" : "ContainersNotReady",
                         terminal ? NULL : message);
        status->conditions[3] =
            s_condition (p, ZL_COND_READY, "Ready",
                         terminal ? "PodCompleted"
                         : ready  ? "ReadinessGatesNotReady"
                                  : "ContainersNotReady",
                         terminal ? NULL
                         : ready  ? gates
                                  : message);
        s_conditions_keep_others (p, status);
    }
    if (p->deadline_exceeded) {
        status->reason = s_str ("DeadlineExceeded");
        status->message = s_str ("Pod was active on the node longer than the specified "
                                 "deadline");
    } else if (p->sandbox_error && !p->sandbox_id[0]) {
        status->reason = s_str ("SandboxCreateError");
        status->message = s_str (p->sandbox_error);
    }
    char host_ip[64];
    zl_node_address (self, p->node, host_ip, sizeof host_ip);
    status->host_ip = s_str (host_ip);
    status->host_ips = calloc (1, sizeof *status->host_ips);
    if (status->host_ips) {
        status->host_ips[0] = malloc (sizeof (Zube__HostIP));
        if (status->host_ips[0]) {
            zube__host_ip__init (status->host_ips[0]);
            status->host_ips[0]->ip = s_str (host_ip);
            status->n_host_ips = 1;
        }
    }
    const char *pod_ip = p->ip[0] ? p->ip
                         : (p->pod->spec && p->pod->spec->host_network) ? host_ip
                                                                        : NULL;
    if (pod_ip) {
        status->pod_ip = s_str (pod_ip);
        status->pod_ips = calloc (1, sizeof *status->pod_ips);
        if (status->pod_ips) {
            status->pod_ips[0] = malloc (sizeof (Zube__PodIP));
            if (status->pod_ips[0]) {
                zube__pod_ip__init (status->pod_ips[0]);
                status->pod_ips[0]->ip = s_str (pod_ip);
                status->n_pod_ips = 1;
            }
        }
    }
    status->start_time = s_time (p->start_time_s * 1000);
    status->qos_class = s_str (s_qos_class (p));
    size_t app = p->container_count - p->init_count;
    if (p->init_count) {
        status->init_container_statuses =
            calloc (p->init_count, sizeof *status->init_container_statuses);
        if (status->init_container_statuses) {
            status->n_init_container_statuses = p->init_count;
            for (size_t i = 0; i < p->init_count; i++)
                status->init_container_statuses[i] =
                    s_container_status (self, p, &p->containers[i], false);
        }
    }
    if (app) {
        status->container_statuses = calloc (app, sizeof *status->container_statuses);
        if (status->container_statuses) {
            status->n_container_statuses = app;
            for (size_t i = 0; i < app; i++)
                status->container_statuses[i] =
                    s_container_status (self, p, &p->containers[p->init_count + i], !initialized);
        }
    }
    if (terminal)
        p->finished = true;
    return status;
}

static void
s_status_mark (zubelet_t *self, zl_pod_t *p)
{
    if (p->status_in_flight) {
        p->status_dirty = true;
        return;
    }
    int64_t when = p->last_write_ms + self->config.status_min_interval_ms;
    int64_t now = zl_now_mono ();
    zl_timer_set (self, &p->status_timer, when > now ? when : now);
}

static void s_status_flush (zubelet_t *self, zl_pod_t *p);

static void
s_pod_got (zubelet_t *self, zube_status_t status, ProtobufCMessage *object,
           const zube_api_error_t *error, void *arg)
{
    (void)error;
    zl_pod_t *p = (zl_pod_t *)arg;
    p->status_in_flight = false;
    bool dead = p->dead;
    s_pod_unref (p);
    if (dead || self->closing)
        return;
    if (status == ZUBE_OK && object) {
        Zube__Pod *pod = (Zube__Pod *)object;
        int64_t rv = pod->metadata ? strtoll (pod->metadata->resource_version
                                                  ? pod->metadata->resource_version
                                                  : "0",
                                              NULL, 10)
                                   : 0;
        if (pod->metadata && pod->metadata->uid && streq (pod->metadata->uid, p->uid) &&
            rv > p->rv) {
            //  A copy: the object belongs to the call
            size_t size = protobuf_c_message_get_packed_size (object);
            uint8_t *data = malloc (size ? size : 1);
            if (data) {
                protobuf_c_message_pack (object, data);
                Zube__Pod *fresh = zube__pod__unpack (NULL, size, data);
                free (data);
                if (fresh) {
                    protobuf_c_message_free_unpacked (&p->pod->base, NULL);
                    p->pod = fresh;
                    p->rv = rv;
                }
            }
        }
    }
    zl_timer_set (self, &p->status_timer, zl_now_mono () + (status == ZUBE_OK ? 0 : ZL_STATUS_RETRY_MS));
}

static void
s_status_written (zubelet_t *self, zube_status_t status, ProtobufCMessage *reply,
                  const zube_api_error_t *error, void *arg)
{
    zl_pod_t *p = (zl_pod_t *)arg;
    const char *version = reply ? ((Zube__ObjectReply *)reply)->resource_version : NULL;
    p->status_in_flight = false;
    bool dead = p->dead;
    s_pod_unref (p);
    if (dead || self->closing)
        return;
    if (status == ZUBE_OK) {
        self->stats.status_writes++;
        int64_t rv = version ? strtoll (version, NULL, 10) : 0;
        //  The write succeeded at the pod's resourceVersion, so nobody
        //  wrote in between: the stored pod is ours with the status sent
        //  and the reply's resourceVersion. Only that is taken (the pod
        //  in the reply is not even decoded); the next write keeps the
        //  others' conditions of p->pod's status, which are unchanged.
        char *copy = rv > p->rv ? strdup (version) : NULL;
        if (copy) {
            free (p->pod->metadata->resource_version);
            p->pod->metadata->resource_version = copy;
            p->rv = rv;
        }
        if (p->status_dirty) {
            p->status_dirty = false;
            s_status_mark (self, p);
        }
        return;
    }
    //  What was sent did not land: compare with nothing next time
    free (p->sent);
    p->sent = NULL;
    p->sent_size = 0;
    if (status == ZUBE_CONFLICT) {
        self->stats.status_conflicts++;
        Zube__GetRequest request = ZUBE__GET_REQUEST__INIT;
        request.resource = "pods";
        request.namespace_ = p->pod->metadata->namespace_;
        request.name = p->pod->metadata->name;
        if (zl_call (self, "get", &request.base, &zube__pod__descriptor, s_pod_got, p) == 0) {
            p->status_in_flight = true;
            p->refs++;
            return;
        }
    }
    if (status == ZUBE_NOT_FOUND)
        return;     //  the DELETED event follows
    zube_log_debug ("msg=\"pod status write failed\" pod=%s error=\"%s\"", p->key,
                    error ? error->message : "");
    zl_timer_set (self, &p->status_timer, zl_now_mono () + ZL_STATUS_RETRY_MS);
}

static void
s_status_flush (zubelet_t *self, zl_pod_t *p)
{
    if (p->status_in_flight) {
        p->status_dirty = true;
        return;
    }
    Zube__PodStatus *status = s_status_build (self, p);
    if (!status)
        return;
    size_t size = zube__pod_status__get_packed_size (status);
    uint8_t *packed = malloc (size ? size : 1);
    if (!packed) {
        zube__pod_status__free_unpacked (status, NULL);
        return;
    }
    zube__pod_status__pack (status, packed);
    if (p->sent && p->sent_size == size && memcmp (p->sent, packed, size) == 0) {
        free (packed);
        zube__pod_status__free_unpacked (status, NULL);
        return;
    }
    Zube__PodStatus *theirs = p->pod->status;
    p->pod->status = status;
    size_t pod_size = protobuf_c_message_get_packed_size (&p->pod->base);
    uint8_t *pod_data = malloc (pod_size ? pod_size : 1);
    if (pod_data)
        protobuf_c_message_pack (&p->pod->base, pod_data);
    p->pod->status = theirs;
    zube__pod_status__free_unpacked (status, NULL);
    if (!pod_data) {
        free (packed);
        return;
    }
    Zube__UpdateRequest request = ZUBE__UPDATE_REQUEST__INIT;
    request.resource = "pods";
    request.namespace_ = p->pod->metadata->namespace_;
    request.name = p->pod->metadata->name;
    request.subresource = "status";
    request.has_object = true;
    request.object.data = pod_data;
    request.object.len = pod_size;
    if (zl_call (self, "update", &request.base, NULL, s_status_written, p) == 0) {
        p->status_in_flight = true;
        p->refs++;
        p->last_write_ms = zl_now_mono ();
        free (p->sent);
        p->sent = packed;
        p->sent_size = size;
    } else {
        free (packed);
        zl_timer_set (self, &p->status_timer, zl_now_mono () + ZL_STATUS_RETRY_MS);
    }
    free (pod_data);
}

static void
s_status_timer (zubelet_t *self, zl_timer_t *timer)
{
    zl_pod_t *p = (zl_pod_t *)((char *)timer - offsetof (zl_pod_t, status_timer));
    if (p->dead || p->gone || p->sandbox_removed)
        return;
    s_status_flush (self, p);
}
