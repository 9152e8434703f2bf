/*  test_replicaset - the replicaset controller against a real broker,
    apiserver, scheduler and a zubelet hosting hollow nodes: a ReplicaSet
    gets its pods (owned, from its template, status counted); a deleted
    pod is replaced; an orphan that matches is adopted (and the surplus
    deleted), a pod whose labels stop matching is released and replaced;
    and issue 6's fault test: while the controller-manager is killed
    (kill -9, a new one started at once) every 15 s, a ReplicaSet scales
    0 -> 500 -> 0, each scale requested just before a kill so that the
    kill lands while pods are being made (deleted): a watcher sees never
    more than 500 active pods after any event and no pod made while
    scaling down, and the ends are exactly 500, then 0. */
#include "../zt_ctrl.h"

static zt_ctrl_env_t s_env;

static const char *s_manager_flags[] = {"--controllers",
                                        "replicaset",
                                        "--leader-elect-lease-duration",
                                        "2s",
                                        "--leader-elect-renew-deadline",
                                        "1500ms",
                                        "--leader-elect-retry-period",
                                        "300ms",
                                        NULL};

static void
s_create_rs (const char *name, int replicas)
{
    char yaml[1024];
    snprintf (yaml, sizeof yaml,
              "apiVersion: apps/v1\nkind: ReplicaSet\n"
              "metadata: {name: %s, namespace: default}\n"
              "spec:\n  replicas: %d\n  selector: {matchLabels: {app: %s}}\n"
              "  template:\n    metadata: {labels: {app: %s, tier: web}}\n"
              "    spec: {containers: [{name: c, image: busybox}]}\n",
              name, replicas, name, name);
    zt_cluster_create_yaml (&s_env.cluster, "replicasets", "default",
                            &zube__replica_set__descriptor, yaml, NULL);
}

static void
s_scale (const char *name, int replicas)
{
    char patch[128];
    snprintf (patch, sizeof patch, "{\"spec\":{\"replicas\":%d}}", replicas);
    zt_cluster_patch (&s_env.cluster, "replicasets", "default", name, patch);
}

static Zube__ReplicaSet *
s_get_rs (const char *name)
{
    return (Zube__ReplicaSet *)zt_ctrl_get (&s_env.cluster, "replicasets", "default",
                                            name);
}

//  Waits until the ReplicaSet's status says replicas and ready.
static bool
s_wait_status (const char *name, int replicas, int ready, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        Zube__ReplicaSet *rs = s_get_rs (name);
        bool done = rs && rs->status && rs->status->replicas == replicas &&
                    rs->status->ready_replicas == ready &&
                    rs->status->fully_labeled_replicas == replicas &&
                    rs->status->observed_generation == rs->metadata->generation;
        if (rs)
            protobuf_c_message_free_unpacked (&rs->base, NULL);
        if (done)
            return true;
        zube_bus_poll (s_env.cluster.bus, 100);
    } while (zt_now_ms () < until);
    return false;
}

static zube_api_list_t *
s_pods (const char *selector)
{
    return zt_cluster_list (&s_env.cluster, "pods", "default", selector);
}

static void
test_makes_pods (void)
{
    zt_watcher_t watcher;
    ZT_ASSERT (zt_watcher_start (&watcher, &s_env.cluster, "default", "app=web"));
    s_create_rs ("web", 5);
    bool made = zt_watcher_wait (&watcher, 5, true, 30000);
    int64_t max = watcher.max_active;
    zt_watcher_stop (&watcher);
    ZT_ASSERT_MSG (made, "5 ready pods expected");
    ZT_ASSERT_INT_EQ (max, 5);
    ZT_ASSERT_MSG (s_wait_status ("web", 5, 5, 20000), "status not 5 replicas, 5 ready");
    zube_api_list_t *pods = s_pods ("app=web");
    ZT_ASSERT (pods && pods->count == 5);
    Zube__ReplicaSet *rs = s_get_rs ("web");
    for (size_t i = 0; i < pods->count; i++) {
        Zube__Pod *pod = (Zube__Pod *)pods->items[i];
        ZT_ASSERT_INT_EQ (pod->metadata->n_owner_references, 1);
        Zube__OwnerReference *ref = pod->metadata->owner_references[0];
        ZT_ASSERT_STR_EQ (ref->kind, "ReplicaSet");
        ZT_ASSERT_STR_EQ (ref->uid, rs->metadata->uid);
        ZT_ASSERT (ref->controller);
        ZT_ASSERT (strncmp (pod->metadata->name, "web-", 4) == 0);
    }
    protobuf_c_message_free_unpacked (&rs->base, NULL);
    zube_api_list_destroy (&pods);
}

static void
test_replaces_deleted_pod (void)
{
    zube_api_list_t *pods = s_pods ("app=web");
    ZT_ASSERT (pods && pods->count == 5);
    char victim[256];
    snprintf (victim, sizeof victim, "%s", ((Zube__Pod *)pods->items[0])->metadata->name);
    zube_api_list_destroy (&pods);
    zube_api_delete_options_t now = {.grace_period_seconds = 0};
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_env.cluster.api, "pods", "default", victim, &now, NULL, NULL),
        ZUBE_OK);
    zt_watcher_t watcher;
    ZT_ASSERT (zt_watcher_start (&watcher, &s_env.cluster, "default", "app=web"));
    bool back = zt_watcher_wait (&watcher, 5, true, 30000);
    zt_watcher_stop (&watcher);
    ZT_ASSERT_MSG (back, "the deleted pod was not replaced");
    pods = s_pods ("app=web");
    for (size_t i = 0; pods && i < pods->count; i++)
        ZT_ASSERT (strcmp (((Zube__Pod *)pods->items[i])->metadata->name, victim) != 0 ||
                   ((Zube__Pod *)pods->items[i])->metadata->deletion_timestamp);
    zube_api_list_destroy (&pods);
}

static void
test_adopts_and_releases (void)
{
    //  An orphan that matches: adopted, and one of six deleted
    zt_cluster_create_yaml (&s_env.cluster, "pods", "default", &zube__pod__descriptor,
                            "apiVersion: v1\nkind: Pod\n"
                            "metadata: {name: stray, namespace: default, labels: {app: "
                            "web}}\n"
                            "spec: {containers: [{name: c, image: busybox}]}\n",
                            NULL);
    zt_watcher_t watcher;
    ZT_ASSERT (zt_watcher_start (&watcher, &s_env.cluster, "default", "app=web"));
    bool five = false;
    int64_t until = zt_now_ms () + 20000;
    bool adopted_or_gone = false;
    while (zt_now_ms () < until && !(five && adopted_or_gone)) {
        zt_watcher_poll (&watcher, 100);
        five = watcher.active == 5;
        Zube__Pod *stray =
            (Zube__Pod *)zt_ctrl_get (&s_env.cluster, "pods", "default", "stray");
        adopted_or_gone = !stray || stray->metadata->deletion_timestamp ||
                          stray->metadata->n_owner_references == 1;
        if (stray)
            protobuf_c_message_free_unpacked (&stray->base, NULL);
    }
    ZT_ASSERT_MSG (five && adopted_or_gone, "the orphan was not adopted (active %lld)",
                   (long long)watcher.active);
    //  The stray pod is unassigned or newest: it ranks first for deletion,
    //  unless it was scheduled and ready already; either way five remain.
    //  Release: relabel one owned pod
    zube_api_list_t *pods = s_pods ("app=web");
    char released[256] = "";
    for (size_t i = 0; pods && i < pods->count && !released[0]; i++) {
        Zube__Pod *pod = (Zube__Pod *)pods->items[i];
        if (!pod->metadata->deletion_timestamp)
            snprintf (released, sizeof released, "%s", pod->metadata->name);
    }
    zube_api_list_destroy (&pods);
    ZT_ASSERT (released[0]);
    ZT_ASSERT_INT_EQ (zube_api_patch (s_env.cluster.api, "pods", "default", released,
                                      NULL,
                                      "{\"metadata\":{\"labels\":{\"app\":\"other\"}}}",
                                      NULL, false, NULL, NULL),
                      ZUBE_OK);
    bool replaced = zt_watcher_wait (&watcher, 5, true, 30000);
    zt_watcher_stop (&watcher);
    ZT_ASSERT_MSG (replaced, "no replacement for the released pod");
    bool orphaned = false;
    until = zt_now_ms () + 20000;
    while (!orphaned && zt_now_ms () < until) {
        Zube__Pod *pod =
            (Zube__Pod *)zt_ctrl_get (&s_env.cluster, "pods", "default", released);
        orphaned = pod && pod->metadata->n_owner_references == 0;
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    ZT_ASSERT_MSG (orphaned, "the relabelled pod kept its ownerReference");
    zube_api_delete (s_env.cluster.api, "pods", "default", released, NULL, NULL, NULL);
}

//  A selector that does not match the template: the apiserver refuses it
//  (Kubernetes' validation), or the controller makes no pod and says why
//  (else each pod made would be released and replaced without end).
static void
test_selector_mismatch (void)
{
    const char *yaml = "apiVersion: apps/v1\nkind: ReplicaSet\n"
                       "metadata: {name: mismatch, namespace: default}\n"
                       "spec:\n  replicas: 2\n  selector: {matchLabels: {app: x}}\n"
                       "  template:\n    metadata: {labels: {app: y}}\n"
                       "    spec: {containers: [{name: c, image: busybox}]}\n";
    ProtobufCMessage *object = NULL;
    ZT_ASSERT (zube_codec_decode (yaml, strlen (yaml), &zube__replica_set__descriptor,
                                  &object, NULL) == 0);
    zube_status_t status = zube_api_create (s_env.cluster.api, "replicasets", "default",
                                            object, false, NULL, NULL);
    protobuf_c_message_free_unpacked (object, NULL);
    if (status != ZUBE_OK) {
        ZT_ASSERT_INT_EQ (status, ZUBE_INVALID);
        return;
    }
    bool warned = false;
    int64_t until = zt_now_ms () + 10000;
    while (!warned && zt_now_ms () < until) {
        zube_api_list_t *events = NULL;
        zube_api_list (s_env.cluster.api, "events",
                       &(zube_api_list_options_t){.namespace = "default"}, &events, NULL);
        for (size_t i = 0; events && i < events->count; i++) {
            Zube__Event *event = (Zube__Event *)events->items[i];
            warned |= event->reason && !strcmp (event->reason, "InvalidSelector") &&
                      event->involved_object && event->involved_object->name &&
                      !strcmp (event->involved_object->name, "mismatch");
        }
        zube_api_list_destroy (&events);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    zube_api_list_t *pods = s_pods ("app=y");
    size_t count = pods ? pods->count : 0;
    zube_api_list_destroy (&pods);
    ZT_ASSERT_MSG (warned, "no InvalidSelector event");
    ZT_ASSERT_INT_EQ (count, 0);
    zube_api_delete (s_env.cluster.api, "replicasets", "default", "mismatch", NULL, NULL,
                     NULL);
}

//  Issue 6's fault test: kill -9 of the controller-manager every 15 s
//  while the ReplicaSet scales 0 -> 500 -> 0. Each scale is requested
//  S_LEAD_MS before a kill is due, so that kill lands while the
//  controller creates (deletes) the pods; the pods are counted through
//  the apiserver after each kill, before the next manager starts, so a
//  count between the ends proves the kill landed mid-scale.
#define S_TARGET 500
#define S_KILL_PERIOD_MS 15000
#define S_LEAD_MS 1000

typedef struct {
    zt_watcher_t watcher;
    int64_t next_kill; //  zt_now_ms of the next kill
    int kills;
    int64_t from, to; //  the scale under way
    int64_t asked;    //  zt_now_ms of the scale's request
    int64_t began;    //  ... and of the watcher's first change after it
    int mid_scale;    //  kills of this scale that landed mid-scale
    int lost_leases;  //  managers that exited on their own, code 2
    int crashes;      //  managers that exited on their own otherwise
} s_chaos_t;

//  The active and ready pods of selector, through the apiserver (-1 when
//  the list fails).
static void
s_count_pods (const char *selector, int64_t *active_p, int64_t *ready_p)
{
    zube_api_list_t *pods = s_pods (selector);
    *active_p = *ready_p = pods ? 0 : -1;
    for (size_t i = 0; pods && i < pods->count; i++) {
        const Zube__Pod *pod = (const Zube__Pod *)pods->items[i];
        if (zt_watch_active (pod)) {
            (*active_p)++;
            *ready_p += zt_watch_ready (pod);
        }
    }
    zube_api_list_destroy (&pods);
}

//  Stops the controller-manager with SIGKILL (if it still runs) and
//  answers whether it still ran. One that exited on its own lost its
//  short lease on a loaded machine (code 2, as Kubernetes' exits), or
//  crashed: anything else.
static bool
s_chaos_stop_manager (s_chaos_t *self)
{
    bool alive = zt_process_alive (s_env.manager);
    int status = zt_stop (s_env.manager, SIGKILL, 5000);
    s_env.manager = 0;
    if (alive)
        return true;
    if (WIFEXITED (status) && WEXITSTATUS (status) == 2)
        self->lost_leases++;
    else {
        self->crashes++;
        printf ("# the controller-manager exited on its own, wait status %d\n", status);
    }
    return false;
}

static void
s_chaos_start_manager (void)
{
    s_env.manager =
        zt_ctrl_start (&s_env.cluster, "controller-manager.log", s_manager_flags);
}

//  kill -9 of the controller-manager; the pods counted while none runs;
//  a new one started.
static void
s_chaos_kill (s_chaos_t *self)
{
    bool alive = s_chaos_stop_manager (self);
    int64_t active, ready;
    s_count_pods ("app=crash", &active, &ready);
    s_chaos_start_manager ();
    self->kills++;
    int64_t low = self->from < self->to ? self->from : self->to;
    int64_t high = self->from < self->to ? self->to : self->from;
    bool mid = alive && active > low && active < high;
    self->mid_scale += mid;
    printf ("# kill %d (%lld -> %lld)%s: %lld active, %lld ready, watcher %lld%s\n",
            self->kills, (long long)self->from, (long long)self->to,
            alive ? "" : " of an exited manager", (long long)active, (long long)ready,
            (long long)self->watcher.active, mid ? ", mid-scale" : "");
    self->next_kill += S_KILL_PERIOD_MS;
}

//  Runs the watcher until `until` (at least once), killing whenever a kill
//  is due; a manager that exited on its own is replaced at once, off the
//  rhythm.
static void
s_chaos_poll (s_chaos_t *self, int64_t until)
{
    do {
        int64_t now = zt_now_ms ();
        int64_t stop = self->next_kill < until ? self->next_kill : until;
        if (stop > now + 200)
            stop = now + 200;
        if (stop > now)
            zt_watcher_poll (&self->watcher, (int)(stop - now));
        if (self->asked && !self->began && self->watcher.active != self->from)
            self->began = zt_now_ms ();
        if (zt_now_ms () >= self->next_kill)
            s_chaos_kill (self);
        else if (!zt_process_alive (s_env.manager)) {
            s_chaos_stop_manager (self);
            s_chaos_start_manager ();
        }
    } while (zt_now_ms () < until);
}

//  Whether the ReplicaSet has finished its scale to `to`: the watcher sees
//  exactly `to` active pods, all ready, and the status says so.
static bool
s_chaos_done (s_chaos_t *self)
{
    if (self->watcher.active != self->to || self->watcher.ready != self->to)
        return false;
    Zube__ReplicaSet *rs = s_get_rs ("crash");
    bool done = rs && rs->status && rs->status->replicas == self->to &&
                rs->status->ready_replicas == self->to &&
                rs->status->observed_generation == rs->metadata->generation;
    if (rs)
        protobuf_c_message_free_unpacked (&rs->base, NULL);
    return done;
}

//  Whether the controller-manager answers that it leads, every controller
//  ready.
static bool
s_chaos_leads (void)
{
    char *stats = zt_ctrl_stats (&s_env.cluster, 500);
    bool leads = stats && strstr (stats, "\"leader\": true") &&
                 !strstr (stats, "\"ready\": false");
    free (stats);
    return leads;
}

//  Requests the scale to `to` S_LEAD_MS before the next kill, then runs
//  until it is done (true) or timeout_ms passed.
static bool
s_chaos_scale (s_chaos_t *self, int64_t to, int timeout_ms)
{
    //  Before the next kill, or the one after when the last scale ran too
    //  close to it or the manager does not lead yet (one that replaced a
    //  manager that lost its lease, and would be killed as a standby)
    while (true) {
        while (self->next_kill - S_LEAD_MS - 1000 < zt_now_ms ())
            s_chaos_poll (self, self->next_kill);
        s_chaos_poll (self, self->next_kill - S_LEAD_MS - 1000);
        if (s_chaos_leads ())
            break;
        printf ("# the controller-manager does not lead yet: the scale waits a kill\n");
        s_chaos_poll (self, self->next_kill);
    }
    s_chaos_poll (self, self->next_kill - S_LEAD_MS);
    self->from = self->watcher.active;
    self->to = to;
    self->mid_scale = 0;
    self->began = 0;
    self->asked = zt_now_ms ();
    s_scale ("crash", (int)to);
    int64_t until = zt_now_ms () + timeout_ms;
    while (!s_chaos_done (self) && zt_now_ms () < until)
        s_chaos_poll (self, zt_now_ms () + 100);
    bool done = s_chaos_done (self);
    printf ("# %lld -> %lld: the watcher saw it begin %lld ms after the request, %s "
            "after %.1f s, %d kills mid-scale\n",
            (long long)self->from, (long long)to,
            (long long)(self->began ? self->began - self->asked : -1),
            done ? "done" : "not done", (double)(zt_now_ms () - self->asked) / 1000,
            self->mid_scale);
    return done;
}

//  A whole round: 0 -> S_TARGET -> 0 under the kills. Whether a kill
//  lands mid-scale depends on how fast the machine is at that moment, so
//  test_kill_while_scaling runs rounds until one has landed each way.
typedef struct {
    bool up, down;
    int mid_up, mid_down;
    int64_t active_up, active_down;
    uint64_t made_down;     //  pods made while scaling down
} s_round_t;

static void
s_chaos_round (s_chaos_t *chaos, s_round_t *round)
{
    round->up = s_chaos_scale (chaos, S_TARGET, 120000);
    round->mid_up = chaos->mid_scale;
    //  Settle: nothing more comes
    s_chaos_poll (chaos, zt_now_ms () + 1000);
    int64_t ready;
    s_count_pods ("app=crash", &round->active_up, &ready);
    //  Scaling down, no pod may be made at all
    zube_informer_stats_t before, after;
    zube_informer_stats (chaos->watcher.informer, &before);
    round->down = round->up && s_chaos_scale (chaos, 0, 120000);
    round->mid_down = chaos->mid_scale;
    s_chaos_poll (chaos, zt_now_ms () + 1000);
    zube_informer_stats (chaos->watcher.informer, &after);
    s_count_pods ("app=crash", &round->active_down, &ready);
    round->made_down = after.adds - before.adds;
}

static void
test_kill_while_scaling (void)
{
    s_chaos_t chaos = {0};
    ZT_ASSERT (zt_watcher_start (&chaos.watcher, &s_env.cluster, "default", "app=crash"));
    s_create_rs ("crash", 0);
    chaos.watcher.limit = S_TARGET;
    int64_t started = zt_now_ms ();
    chaos.next_kill = started + S_LEAD_MS + 1200;
    int mid_up = 0, mid_down = 0, rounds = 0;
    bool correct = true;
    s_round_t round = {0};
    while (correct && (mid_up == 0 || mid_down == 0) && rounds < 3) {
        s_chaos_round (&chaos, &round);
        rounds++;
        mid_up += round.mid_up;
        mid_down += round.mid_down;
        correct = round.up && round.down && round.active_up == S_TARGET
                  && round.active_down == 0 && round.made_down == 0;
    }
    int64_t over = chaos.watcher.over_limit;
    int64_t max = chaos.watcher.max_active;
    zt_watcher_stop (&chaos.watcher);
    printf ("# %d kills of the controller-manager in %.1f s (and %d lost leases), %d "
            "round(s), %d mid-scale up and %d down; max active seen %lld; %lld active "
            "after the last scale up, %lld after the last scale down\n",
            chaos.kills, (double)(zt_now_ms () - started) / 1000, chaos.lost_leases, rounds,
            mid_up, mid_down, (long long)max, (long long)round.active_up,
            (long long)round.active_down);
    ZT_ASSERT_MSG (chaos.crashes == 0, "the controller-manager crashed %d times",
                   chaos.crashes);
    ZT_ASSERT_MSG (round.up, "the ReplicaSet did not reach %d ready pods", S_TARGET);
    ZT_ASSERT_INT_EQ (round.active_up, S_TARGET);
    ZT_ASSERT_MSG (over == 0 && max == S_TARGET,
                   "more than %d active pods at some moment (max %lld)", S_TARGET,
                   (long long)max);
    ZT_ASSERT_MSG (round.down, "the ReplicaSet did not scale down to 0");
    ZT_ASSERT_INT_EQ (round.active_down, 0);
    ZT_ASSERT_MSG (round.made_down == 0, "%llu pods made while scaling down",
                   (unsigned long long)round.made_down);
    ZT_ASSERT_MSG (mid_up >= 1, "no kill landed while scaling up in %d rounds", rounds);
    ZT_ASSERT_MSG (mid_down >= 1, "no kill landed while scaling down in %d rounds", rounds);
}

int
main (void)
{
    if (zt_ctrl_env_start (&s_env, "replicaset", 10, s_manager_flags)) {
        ZT_RUN (test_makes_pods);
        ZT_RUN (test_replaces_deleted_pod);
        ZT_RUN (test_adopts_and_releases);
        ZT_RUN (test_selector_mismatch);
        ZT_RUN (test_kill_while_scaling);
    }
    return zt_ctrl_env_finish (&s_env);
}
