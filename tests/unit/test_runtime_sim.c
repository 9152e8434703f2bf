#define _GNU_SOURCE
/*  test_runtime_sim - the sim runtime plugin (sim.so), loaded through the
    plugin host and zube_runtime_open_host with a mock host table whose
    clock the test moves (collectd-style): container lifecycles from
    annotations, exit codes and reasons, init containers, stop, tick order
    and next-timer values, probes, missing images, logs and exec, the
    state file across close and open (adoption), listing by node, and the
    cost of 50,000 containers: heap steps per timer and bytes per pod. */
#include <malloc.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include "zube/runtime_client.h"
#include "core.pb-c.h"
#include "../../plugins/runtime/sim/sim_behaviour.h"
#include "../zube_test.h"
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zube_testproc.h"

//  ZT_ASSERT_STR_CONTAINS does not compile (its zt_n_ is shadowed).
#define S_ASSERT_CONTAINS(haystack, needle)                                   \
    do {                                                                      \
        const char *s_h_ = (haystack), *s_needle_ = (needle);                 \
        if (!s_h_ || !strstr (s_h_, s_needle_))                               \
            ZT_FAIL ("%s == \"%s\" does not contain \"%s\"", #haystack,       \
                     s_h_ ? s_h_ : "(null)", s_needle_);                      \
    } while (0)

//  ---------------------------------------------------------------------
//  The mock host: a clock the test sets, counters it reads.

#define S_WALL_BASE 1700000000000LL

typedef struct {
    zube_host_t host; //  first: the plugin calls with &mock.host
    int64_t now_ms;   //  monotonic milliseconds
    struct {
        char name[64];
        uint64_t value;
    } counters[16];
    int counter_count;
} s_mock_t;

static s_mock_t s_mock;

static void
s_mock_log (const zube_host_t *host, zube_log_level_t level, const char *format, ...)
{
    (void) host;
    va_list args;
    va_start (args, format);
    printf ("# sim log %d: ", (int) level);
    vprintf (format, args);
    printf ("\n");
    va_end (args);
}

static bool
s_mock_log_enabled (const zube_host_t *host, zube_log_level_t level)
{
    (void) host;
    return level >= ZUBE_LOG_WARN;
}

static const char *
s_mock_config_get (const zube_host_t *host, const char *key)
{
    (void) host;
    (void) key;
    return NULL;
}

static void
s_mock_counter_add (const zube_host_t *host, const char *name, uint64_t delta)
{
    s_mock_t *mock = (s_mock_t *) host;
    for (int i = 0; i < mock->counter_count; i++)
        if (strcmp (mock->counters[i].name, name) == 0) {
            mock->counters[i].value += delta;
            return;
        }
    if (mock->counter_count < 16) {
        snprintf (mock->counters[mock->counter_count].name, 64, "%s", name);
        mock->counters[mock->counter_count++].value = delta;
    }
}

static uint64_t
s_counter (const char *name)
{
    for (int i = 0; i < s_mock.counter_count; i++)
        if (strcmp (s_mock.counters[i].name, name) == 0)
            return s_mock.counters[i].value;
    return 0;
}

static int64_t
s_mock_time_ms (const zube_host_t *host)
{
    return S_WALL_BASE + ((const s_mock_t *) host)->now_ms;
}

static int64_t
s_mock_monotonic_ns (const zube_host_t *host)
{
    return ((const s_mock_t *) host)->now_ms * 1000000;
}

static zube_plugin_host_t *s_plugins;

static void
s_mock_reset (void)
{
    s_mock = (s_mock_t) {
        .host = {.struct_size = sizeof (zube_host_t),
                 .version = ZUBE_HOST_VERSION,
                 .log = s_mock_log,
                 .log_enabled = s_mock_log_enabled,
                 .config_get = s_mock_config_get,
                 .counter_add = s_mock_counter_add,
                 .time_ms = s_mock_time_ms,
                 .monotonic_ns = s_mock_monotonic_ns},
        .now_ms = 1000000,
    };
}

static zube_runtime_t *
s_open (const char *const *options)
{
    char *error = NULL;
    zube_runtime_t *runtime = zube_runtime_open_host (s_plugins, "sim", &s_mock.host, options,
                                                      &error);
    ZT_ASSERT_MSG (runtime, "open: %s", error ? error : "?");
    return runtime;
}

//  ---------------------------------------------------------------------
//  Pods

//  A packed zube.Pod: annotations as "key", "value" pairs, init and
//  regular containers as "name", "image" pairs; each list NULL-ended.
static void *
s_pod (const char *const *annotations, const char *const *init, const char *const *regular,
       size_t *size_p)
{
    Zube__Pod pod = ZUBE__POD__INIT;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    Zube__PodSpec spec = ZUBE__POD_SPEC__INIT;
    Zube__ObjectMeta__AnnotationsEntry entries[16];
    Zube__ObjectMeta__AnnotationsEntry *entry_list[16];
    Zube__Container containers[2][16];
    Zube__Container *container_lists[2][16];
    size_t n = 0;
    for (; annotations && annotations[2 * n]; n++) {
        zube__object_meta__annotations_entry__init (&entries[n]);
        entries[n].key = (char *) annotations[2 * n];
        entries[n].value = (char *) annotations[2 * n + 1];
        entry_list[n] = &entries[n];
    }
    meta.n_annotations = n;
    meta.annotations = entry_list;
    meta.name = (char *) "pod";
    const char *const *lists[2] = {init, regular};
    size_t counts[2] = {0, 0};
    for (int l = 0; l < 2; l++)
        for (; lists[l] && lists[l][2 * counts[l]]; counts[l]++) {
            Zube__Container *container = &containers[l][counts[l]];
            zube__container__init (container);
            container->name = (char *) lists[l][2 * counts[l]];
            container->image = (char *) lists[l][2 * counts[l] + 1];
            container_lists[l][counts[l]] = container;
        }
    spec.n_init_containers = counts[0];
    spec.init_containers = container_lists[0];
    spec.n_containers = counts[1];
    spec.containers = container_lists[1];
    pod.metadata = &meta;
    pod.spec = &spec;
    size_t size = zube__pod__get_packed_size (&pod);
    void *bytes = malloc (size ? size : 1);
    zube__pod__pack (&pod, bytes);
    *size_p = size;
    return bytes;
}

static zube_status_t
s_sandbox_try (zube_runtime_t *runtime, const char *node, const char *name,
               const char *const *annotations, const char *const *init,
               const char *const *regular, char *id)
{
    size_t size;
    void *pod = s_pod (annotations, init, regular, &size);
    char uid[64];
    snprintf (uid, sizeof uid, "uid-%s-%s", node, name);
    zube_runtime_sandbox_config_t config = {.struct_size = sizeof config,
                                            .node_name = node,
                                            .pod_namespace = "default",
                                            .pod_name = name,
                                            .pod_uid = uid,
                                            .pod = pod,
                                            .pod_size = size};
    zube_status_t status = zube_runtime_run_sandbox (runtime, &config, id, ZUBE_RUNTIME_ID_MAX);
    free (pod);
    return status;
}

static void
s_sandbox (zube_runtime_t *runtime, const char *node, const char *name,
           const char *const *annotations, const char *const *init, const char *const *regular,
           char *id)
{
    zube_status_t status = s_sandbox_try (runtime, node, name, annotations, init, regular, id);
    ZT_ASSERT_MSG (status == ZUBE_OK, "run_sandbox %s: %s", name, zube_runtime_error (runtime));
}

static void
s_container (zube_runtime_t *runtime, const char *sandbox, const char *name, bool init,
             uint32_t index, char *id)
{
    zube_runtime_container_config_t config = {
        .struct_size = sizeof config, .name = name, .init = init, .index = index};
    zube_status_t status = zube_runtime_create_container (runtime, sandbox, &config, id,
                                                          ZUBE_RUNTIME_ID_MAX);
    ZT_ASSERT_MSG (status == ZUBE_OK, "create %s: %s", name, zube_runtime_error (runtime));
}

static zube_runtime_container_status_t
s_status (zube_runtime_t *runtime, const char *id)
{
    zube_runtime_container_status_t status;
    ZT_ASSERT_MSG (zube_runtime_container_status (runtime, id, &status) == ZUBE_OK, "status: %s",
                   zube_runtime_error (runtime));
    return status;
}

//  Events a tick reported.
typedef struct {
    int count;
    struct {
        char name[64];
        char id[ZUBE_RUNTIME_ID_MAX];
        int state;
        int exit_code;
        char reason[64];
        int64_t started_ms;
        int64_t finished_ms;
    } items[64];
} s_events_t;

static void
s_on_event (void *arg, const zube_runtime_event_t *event)
{
    s_events_t *events = arg;
    if (events->count == 64)
        return;
    const zube_runtime_container_status_t *c = event->container;
    int i = events->count++;
    snprintf (events->items[i].name, sizeof events->items[i].name, "%s", c->name);
    snprintf (events->items[i].id, sizeof events->items[i].id, "%s", c->id);
    events->items[i].state = c->state;
    events->items[i].exit_code = c->exit_code;
    snprintf (events->items[i].reason, sizeof events->items[i].reason, "%s", c->reason);
    events->items[i].started_ms = c->started_ms;
    events->items[i].finished_ms = c->finished_ms;
}

static int64_t
s_tick (zube_runtime_t *runtime, s_events_t *events)
{
    memset (events, 0, sizeof *events);
    return zube_runtime_tick (runtime, s_on_event, events);
}

#define RUNNING ZUBE_RUNTIME_CONTAINER_RUNNING
#define EXITED ZUBE_RUNTIME_CONTAINER_EXITED
#define CREATED ZUBE_RUNTIME_CONTAINER_CREATED

//  ---------------------------------------------------------------------
//  Cases

static void
test_lifecycle_start_delay_and_run_duration (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    char sandbox[ZUBE_RUNTIME_ID_MAX], id[ZUBE_RUNTIME_ID_MAX];
    s_sandbox (runtime, "node-a", "web",
               (const char *[]) {"sim.zube.io/start-delay", "2s", "sim.zube.io/run-duration",
                                 "1m30.5s", "sim.zube.io/exit-code", "3", "other.io/x", "y",
                                 NULL},
               NULL, (const char *[]) {"app", "busybox", NULL}, sandbox);
    s_container (runtime, sandbox, "app", false, 0, id);
    int64_t created = S_WALL_BASE + s_mock.now_ms;
    s_events_t events;
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), -1);
    ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, id), ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_status (runtime, id).state, CREATED);
    ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, id), ZUBE_CONFLICT);
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), 2000);
    ZT_ASSERT_INT_EQ (events.count, 0);

    s_mock.now_ms += 1999;
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), 1);
    ZT_ASSERT_INT_EQ (events.count, 0);
    s_mock.now_ms += 1;
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), 90500);
    ZT_ASSERT_INT_EQ (events.count, 1);
    ZT_ASSERT_INT_EQ (events.items[0].state, RUNNING);
    ZT_ASSERT_STR_EQ (events.items[0].id, id);
    ZT_ASSERT_INT_EQ (events.items[0].started_ms, created + 2000);

    zube_runtime_container_status_t status = s_status (runtime, id);
    ZT_ASSERT_INT_EQ (status.state, RUNNING);
    ZT_ASSERT_INT_EQ (status.created_ms, created);
    ZT_ASSERT_INT_EQ (status.started_ms, created + 2000);
    ZT_ASSERT_STR_EQ (status.sandbox_id, sandbox);
    ZT_ASSERT_STR_EQ (status.name, "app");
    ZT_ASSERT_STR_EQ (status.image, "docker.io/library/busybox:latest");
    S_ASSERT_CONTAINS (status.image_id, "docker.io/library/busybox@sha256:");
    ZT_ASSERT_INT_EQ (strlen (status.image_id), strlen ("docker.io/library/busybox@sha256:") + 64);

    //  Late ticks report the exit at the time it happened.
    s_mock.now_ms += 100000;
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), -1);
    ZT_ASSERT_INT_EQ (events.count, 1);
    ZT_ASSERT_INT_EQ (events.items[0].state, EXITED);
    ZT_ASSERT_INT_EQ (events.items[0].exit_code, 3);
    ZT_ASSERT_STR_EQ (events.items[0].reason, "Error");
    ZT_ASSERT_INT_EQ (events.items[0].finished_ms, created + 2000 + 90500);
    ZT_ASSERT_INT_EQ (s_status (runtime, id).state, EXITED);
    zube_runtime_close (&runtime);
}

static void
test_exit_codes_and_reasons (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    char sandbox[ZUBE_RUNTIME_ID_MAX], ok[ZUBE_RUNTIME_ID_MAX], side[ZUBE_RUNTIME_ID_MAX],
        forever[ZUBE_RUNTIME_ID_MAX], oom_sandbox[ZUBE_RUNTIME_ID_MAX], oom[ZUBE_RUNTIME_ID_MAX];
    s_sandbox (runtime, "node-a", "job",
               (const char *[]) {"sim.zube.io/run-duration", "100ms",
                                 "sim.zube.io/exit-code.side", "7",
                                 "sim.zube.io/run-duration.forever", "forever", NULL},
               NULL,
               (const char *[]) {"main", "busybox", "side", "busybox", "forever", "pause",
                                 NULL},
               sandbox);
    s_container (runtime, sandbox, "main", false, 0, ok);
    s_container (runtime, sandbox, "side", false, 1, side);
    s_container (runtime, sandbox, "forever", false, 2, forever);
    s_sandbox (runtime, "node-a", "hog", (const char *[]) {"sim.zube.io/oom", "true", NULL},
               NULL, (const char *[]) {"hog", "stress", NULL}, oom_sandbox);
    s_container (runtime, oom_sandbox, "hog", false, 0, oom);
    const char *ids[] = {ok, side, forever, oom};
    for (int i = 0; i < 4; i++)
        ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, ids[i]), ZUBE_OK);
    //  oom without a run-duration is killed at once.
    ZT_ASSERT_INT_EQ (s_status (runtime, oom).state, EXITED);
    s_mock.now_ms += 100;
    s_events_t events;
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), -1);
    zube_runtime_container_status_t status = s_status (runtime, ok);
    ZT_ASSERT_INT_EQ (status.state, EXITED);
    ZT_ASSERT_INT_EQ (status.exit_code, 0);
    ZT_ASSERT_STR_EQ (status.reason, "Completed");
    status = s_status (runtime, side);
    ZT_ASSERT_INT_EQ (status.exit_code, 7);
    ZT_ASSERT_STR_EQ (status.reason, "Error");
    ZT_ASSERT_INT_EQ (s_status (runtime, forever).state, RUNNING);
    status = s_status (runtime, oom);
    ZT_ASSERT_INT_EQ (status.exit_code, 137);
    ZT_ASSERT_STR_EQ (status.reason, "OOMKilled");
    ZT_ASSERT_STR_EQ (status.image, "docker.io/library/stress:latest");
    zube_runtime_close (&runtime);
}

static void
test_init_containers (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    char sandbox[ZUBE_RUNTIME_ID_MAX], quick[ZUBE_RUNTIME_ID_MAX], slow[ZUBE_RUNTIME_ID_MAX],
        app[ZUBE_RUNTIME_ID_MAX];
    //  The pod-wide run-duration and exit-code are the app's, not the
    //  init containers'.
    s_sandbox (runtime, "node-a", "init",
               (const char *[]) {"sim.zube.io/run-duration.slow", "3s",
                                 "sim.zube.io/run-duration", "1s", "sim.zube.io/exit-code", "1",
                                 NULL},
               (const char *[]) {"quick", "busybox", "slow", "busybox", NULL},
               (const char *[]) {"app", "nginx:1.25", NULL}, sandbox);
    s_container (runtime, sandbox, "quick", true, 0, quick);
    ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, quick), ZUBE_OK);
    zube_runtime_container_status_t status = s_status (runtime, quick);
    ZT_ASSERT_INT_EQ (status.state, EXITED);
    ZT_ASSERT_INT_EQ (status.exit_code, 0);
    ZT_ASSERT_STR_EQ (status.reason, "Completed");
    ZT_ASSERT (status.init);
    s_events_t events;
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), -1);
    ZT_ASSERT_INT_EQ (events.count, 2);
    ZT_ASSERT_INT_EQ (events.items[0].state, RUNNING);
    ZT_ASSERT_INT_EQ (events.items[1].state, EXITED);

    s_container (runtime, sandbox, "slow", true, 1, slow);
    ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, slow), ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), 3000);
    s_mock.now_ms += 3000;
    s_tick (runtime, &events);
    ZT_ASSERT_INT_EQ (events.count, 1);
    ZT_ASSERT_INT_EQ (events.items[0].exit_code, 0);

    s_container (runtime, sandbox, "app", false, 0, app);
    ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, app), ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), 1000);
    status = s_status (runtime, app);
    ZT_ASSERT_STR_EQ (status.image, "docker.io/library/nginx:1.25");
    s_mock.now_ms += 1000;
    ZT_ASSERT_INT_EQ (s_status (runtime, app).exit_code, 1);

    //  Mistakes of the host: wrong name for the index, index out of range,
    //  the same attempt twice.
    char other[ZUBE_RUNTIME_ID_MAX];
    zube_runtime_container_config_t config = {
        .struct_size = sizeof config, .name = "app", .init = true, .index = 0};
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (runtime, sandbox, &config, other,
                                                     sizeof other), ZUBE_BAD_REQUEST);
    S_ASSERT_CONTAINS (zube_runtime_error (runtime), "is named \"quick\"");
    config.index = 5;
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (runtime, sandbox, &config, other,
                                                     sizeof other), ZUBE_BAD_REQUEST);
    config = (zube_runtime_container_config_t) {
        .struct_size = sizeof config, .name = "app", .index = 0};
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (runtime, sandbox, &config, other,
                                                     sizeof other), ZUBE_CONFLICT);
    config.attempt = 1;
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (runtime, sandbox, &config, other,
                                                     sizeof other), ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_status (runtime, other).attempt, 1);
    zube_runtime_close (&runtime);
}

static void
test_stop_with_grace (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    char sandbox[ZUBE_RUNTIME_ID_MAX], a[ZUBE_RUNTIME_ID_MAX], b[ZUBE_RUNTIME_ID_MAX],
        c[ZUBE_RUNTIME_ID_MAX], sandbox2[ZUBE_RUNTIME_ID_MAX], d[ZUBE_RUNTIME_ID_MAX];
    s_sandbox (runtime, "node-a", "svc",
               (const char *[]) {"sim.zube.io/stop-exit-code.c", "0", NULL}, NULL,
               (const char *[]) {"a", "busybox", "b", "busybox", "c", "busybox", NULL}, sandbox);
    s_container (runtime, sandbox, "a", false, 0, a);
    s_container (runtime, sandbox, "b", false, 1, b);
    s_container (runtime, sandbox, "c", false, 2, c);
    zube_runtime_start_container (runtime, a);
    zube_runtime_start_container (runtime, b);
    zube_runtime_start_container (runtime, c);
    s_mock.now_ms += 5000;
    ZT_ASSERT_INT_EQ (zube_runtime_stop_container (runtime, a, 30000), ZUBE_OK);
    zube_runtime_container_status_t status = s_status (runtime, a);
    ZT_ASSERT_INT_EQ (status.state, EXITED);
    ZT_ASSERT_INT_EQ (status.exit_code, 143);
    ZT_ASSERT_STR_EQ (status.reason, "Error");
    ZT_ASSERT_INT_EQ (status.finished_ms, S_WALL_BASE + s_mock.now_ms);
    ZT_ASSERT_INT_EQ (zube_runtime_stop_container (runtime, b, 0), ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_status (runtime, b).exit_code, 137);
    //  Stopping again changes nothing.
    s_mock.now_ms += 10;
    ZT_ASSERT_INT_EQ (zube_runtime_stop_container (runtime, b, 30000), ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_status (runtime, b).exit_code, 137);

    //  The sandbox: every container stopped, no IP, still listed.
    zube_runtime_sandbox_status_t sandbox_status;
    ZT_ASSERT_INT_EQ (zube_runtime_sandbox_status (runtime, sandbox, &sandbox_status), ZUBE_OK);
    ZT_ASSERT_INT_EQ (sandbox_status.state, ZUBE_RUNTIME_SANDBOX_READY);
    S_ASSERT_CONTAINS (sandbox_status.ip, "10.");
    ZT_ASSERT_STR_EQ (sandbox_status.node_name, "node-a");
    ZT_ASSERT_STR_EQ (sandbox_status.pod_name, "svc");
    ZT_ASSERT_STR_EQ (sandbox_status.pod_namespace, "default");
    ZT_ASSERT_STR_EQ (sandbox_status.pod_uid, "uid-node-a-svc");
    ZT_ASSERT_INT_EQ (zube_runtime_stop_sandbox (runtime, sandbox, 30000), ZUBE_OK);
    status = s_status (runtime, c);
    ZT_ASSERT_INT_EQ (status.exit_code, 0);
    ZT_ASSERT_STR_EQ (status.reason, "Completed");
    zube_runtime_sandbox_status (runtime, sandbox, &sandbox_status);
    ZT_ASSERT_INT_EQ (sandbox_status.state, ZUBE_RUNTIME_SANDBOX_NOT_READY);
    ZT_ASSERT_STR_EQ (sandbox_status.ip, "");
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (
                          runtime, sandbox,
                          &(zube_runtime_container_config_t) {.struct_size = 64, .name = "a"},
                          d, sizeof d),
                      ZUBE_CONFLICT);

    s_events_t events;
    s_tick (runtime, &events);
    ZT_ASSERT_INT_EQ (events.count, 6); //  3 running, 3 exited, in time order
    ZT_ASSERT_INT_EQ (events.items[2].state, RUNNING);
    ZT_ASSERT_STR_EQ (events.items[3].name, "a");
    ZT_ASSERT_INT_EQ (events.items[3].state, EXITED);

    //  A created container that never ran, stopped; then the removals.
    s_sandbox (runtime, "node-a", "idle", NULL, NULL, (const char *[]) {"d", "busybox", NULL},
               sandbox2);
    s_container (runtime, sandbox2, "d", false, 0, d);
    ZT_ASSERT_INT_EQ (zube_runtime_stop_container (runtime, d, 1000), ZUBE_OK);
    status = s_status (runtime, d);
    ZT_ASSERT_INT_EQ (status.state, EXITED);
    ZT_ASSERT_INT_EQ (status.started_ms, 0);
    ZT_ASSERT_INT_EQ (zube_runtime_remove_container (runtime, d), ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_runtime_container_status (runtime, d, &status), ZUBE_NOT_FOUND);
    S_ASSERT_CONTAINS (zube_runtime_error (runtime), "not found");
    s_tick (runtime, &events);
    ZT_ASSERT_INT_EQ (events.count, 0); //  d's exit went with it
    ZT_ASSERT_INT_EQ (zube_runtime_remove_sandbox (runtime, sandbox), ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_runtime_container_status (runtime, a, &status), ZUBE_NOT_FOUND);
    ZT_ASSERT_INT_EQ (zube_runtime_sandbox_status (runtime, sandbox, &sandbox_status),
                      ZUBE_NOT_FOUND);
    ZT_ASSERT_INT_EQ (zube_runtime_remove_sandbox (runtime, sandbox), ZUBE_NOT_FOUND);
    ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, "not-an-id"), ZUBE_NOT_FOUND);
    zube_runtime_close (&runtime);
}

static void
test_tick_order_and_next_timer (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    const char *durations[] = {"3s", "1s", "2s", "1s"};
    const char *names[] = {"p3", "p1", "p2", "p1b"};
    char ids[4][ZUBE_RUNTIME_ID_MAX];
    for (int i = 0; i < 4; i++) {
        char sandbox[ZUBE_RUNTIME_ID_MAX];
        s_sandbox (runtime, i % 2 ? "node-b" : "node-a", names[i],
                   (const char *[]) {"sim.zube.io/run-duration", durations[i], NULL}, NULL,
                   (const char *[]) {names[i], "busybox", NULL}, sandbox);
        s_container (runtime, sandbox, names[i], false, 0, ids[i]);
    }
    s_events_t events;
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), -1);
    for (int i = 0; i < 4; i++) {
        ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, ids[i]), ZUBE_OK);
        s_mock.now_ms += 10;
    }
    //  Started at 0, 10, 20, 30 ms: due at 3000, 1010, 2020, 1030.
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), 1010 - 40);
    ZT_ASSERT_INT_EQ (events.count, 4);
    s_mock.now_ms += 5000;
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), -1);
    ZT_ASSERT_INT_EQ (events.count, 4);
    const char *order[] = {"p1", "p1b", "p2", "p3"};
    for (int i = 0; i < 4; i++) {
        ZT_ASSERT_STR_EQ (events.items[i].name, order[i]);
        ZT_ASSERT_INT_EQ (events.items[i].state, EXITED);
        if (i > 0)
            ZT_ASSERT (events.items[i].finished_ms >= events.items[i - 1].finished_ms);
    }
    zube_runtime_close (&runtime);
}

static void
test_probes (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    char sandbox[ZUBE_RUNTIME_ID_MAX], web[ZUBE_RUNTIME_ID_MAX], db[ZUBE_RUNTIME_ID_MAX];
    s_sandbox (runtime, "node-a", "probed",
               (const char *[]) {"sim.zube.io/readiness-delay", "10s",
                                 "sim.zube.io/fail-probe.web",
                                 "liveness:after=30s, startup:always", NULL},
               NULL, (const char *[]) {"web", "nginx", "db", "postgres:16", NULL}, sandbox);
    s_container (runtime, sandbox, "web", false, 0, web);
    s_container (runtime, sandbox, "db", false, 1, db);
    bool success = true;
    char message[256];
    ZT_ASSERT_INT_EQ (zube_runtime_probe (runtime, web, ZUBE_RUNTIME_PROBE_LIVENESS, 1000,
                                          &success, message, sizeof message), ZUBE_OK);
    ZT_ASSERT (!success);
    ZT_ASSERT_STR_EQ (message, "container is not running");
    zube_runtime_start_container (runtime, web);
    zube_runtime_start_container (runtime, db);

    zube_runtime_probe (runtime, web, ZUBE_RUNTIME_PROBE_READINESS, 1000, &success, message,
                        sizeof message);
    ZT_ASSERT (!success);
    S_ASSERT_CONTAINS (message, "readiness-delay");
    zube_runtime_probe (runtime, web, ZUBE_RUNTIME_PROBE_LIVENESS, 1000, &success, message,
                        sizeof message);
    ZT_ASSERT (success);
    zube_runtime_probe (runtime, web, ZUBE_RUNTIME_PROBE_STARTUP, 1000, &success, message,
                        sizeof message);
    ZT_ASSERT (!success);
    S_ASSERT_CONTAINS (message, "startup probe failed");
    zube_runtime_probe (runtime, db, ZUBE_RUNTIME_PROBE_STARTUP, 1000, &success, message,
                        sizeof message);
    ZT_ASSERT (success);

    s_mock.now_ms += 10000;
    zube_runtime_probe (runtime, web, ZUBE_RUNTIME_PROBE_READINESS, 1000, &success, message,
                        sizeof message);
    ZT_ASSERT (success);
    s_mock.now_ms += 19999;
    zube_runtime_probe (runtime, web, ZUBE_RUNTIME_PROBE_LIVENESS, 1000, &success, message,
                        sizeof message);
    ZT_ASSERT (success);
    s_mock.now_ms += 1;
    zube_runtime_probe (runtime, web, ZUBE_RUNTIME_PROBE_LIVENESS, 1000, &success, message,
                        sizeof message);
    ZT_ASSERT (!success);
    S_ASSERT_CONTAINS (message, "liveness probe failed");
    zube_runtime_probe (runtime, db, ZUBE_RUNTIME_PROBE_LIVENESS, 1000, &success, message,
                        sizeof message);
    ZT_ASSERT (success);
    zube_runtime_close (&runtime);
}

static void
test_image_missing (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime =
        s_open ((const char *[]) {"missing_images=ghost:1.0,docker.io/library/gone:latest",
                                  NULL});
    char sandbox[ZUBE_RUNTIME_ID_MAX], id[ZUBE_RUNTIME_ID_MAX];
    s_sandbox (runtime, "node-a", "pull",
               (const char *[]) {"sim.zube.io/image-missing.bad", "true", NULL}, NULL,
               (const char *[]) {"good", "busybox", "bad", "registry.example.com/team/bad:v2",
                                 "ghost", "ghost:1.0", "gone", "gone", NULL},
               sandbox);
    s_container (runtime, sandbox, "good", false, 0, id);
    zube_runtime_container_config_t config = {.struct_size = sizeof config, .name = "bad",
                                              .index = 1};
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (runtime, sandbox, &config, id, sizeof id),
                      ZUBE_BAD_REQUEST);
    ZT_ASSERT_STR_EQ (zube_runtime_error (runtime),
                      "Failed to pull image \"registry.example.com/team/bad:v2\": not found "
                      "(sim.zube.io/image-missing)");
    config = (zube_runtime_container_config_t) {.struct_size = sizeof config, .name = "ghost",
                                                .index = 2};
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (runtime, sandbox, &config, id, sizeof id),
                      ZUBE_BAD_REQUEST);
    ZT_ASSERT_STR_EQ (zube_runtime_error (runtime),
                      "Failed to pull image \"ghost:1.0\": not found (sim option "
                      "missing_images)");
    config = (zube_runtime_container_config_t) {.struct_size = sizeof config, .name = "gone",
                                                .index = 3};
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (runtime, sandbox, &config, id, sizeof id),
                      ZUBE_BAD_REQUEST);
    zube_runtime_close (&runtime);
}

static void
test_bad_annotations_and_options (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    char sandbox[ZUBE_RUNTIME_ID_MAX];
    const char *app[] = {"app", "busybox", NULL};
    ZT_ASSERT_INT_EQ (s_sandbox_try (runtime, "n", "p",
                                     (const char *[]) {"sim.zube.io/run-duration", "soon", NULL},
                                     NULL, app, sandbox),
                      ZUBE_BAD_REQUEST);
    S_ASSERT_CONTAINS (zube_runtime_error (runtime), "sim.zube.io/run-duration=\"soon\"");
    ZT_ASSERT_INT_EQ (s_sandbox_try (runtime, "n", "p",
                                     (const char *[]) {"sim.zube.io/exit-kode", "1", NULL}, NULL,
                                     app, sandbox),
                      ZUBE_BAD_REQUEST);
    S_ASSERT_CONTAINS (zube_runtime_error (runtime), "unknown");
    ZT_ASSERT_INT_EQ (s_sandbox_try (runtime, "n", "p",
                                     (const char *[]) {"sim.zube.io/exit-code.nope", "1", NULL},
                                     NULL, app, sandbox),
                      ZUBE_BAD_REQUEST);
    S_ASSERT_CONTAINS (zube_runtime_error (runtime), "no container \"nope\"");
    ZT_ASSERT_INT_EQ (s_sandbox_try (runtime, "n", "p",
                                     (const char *[]) {"sim.zube.io/fail-probe", "liveness:soon",
                                                       NULL},
                                     NULL, app, sandbox),
                      ZUBE_BAD_REQUEST);
    ZT_ASSERT_INT_EQ (s_sandbox_try (runtime, "n", "p",
                                     (const char *[]) {"sim.zube.io/exit-code", "256", NULL},
                                     NULL, app, sandbox),
                      ZUBE_BAD_REQUEST);
    zube_runtime_sandbox_config_t config = {.struct_size = sizeof config, .node_name = "n"};
    ZT_ASSERT_INT_EQ (zube_runtime_run_sandbox (runtime, &config, sandbox, sizeof sandbox),
                      ZUBE_BAD_REQUEST);
    S_ASSERT_CONTAINS (zube_runtime_error (runtime), "pod_namespace");
    zube_runtime_close (&runtime);

    char *error = NULL;
    runtime = zube_runtime_open_host (s_plugins, "sim", &s_mock.host,
                                      (const char *[]) {"colour=blue", NULL}, &error);
    ZT_ASSERT (!runtime);
    S_ASSERT_CONTAINS (error, "runtime sim: BadRequest: sim: unknown option \"colour\"");
    free (error);
}

static int
s_write_output (void *arg, const char *data, size_t size, bool stderr_stream)
{
    char *buffer = arg;
    (void) stderr_stream;
    strncat (buffer, data, size);
    return 0;
}

static void
test_logs_and_exec (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    char sandbox[ZUBE_RUNTIME_ID_MAX], first[ZUBE_RUNTIME_ID_MAX], second[ZUBE_RUNTIME_ID_MAX];
    s_sandbox (runtime, "node-a", "logs",
               (const char *[]) {"sim.zube.io/run-duration", "1s", "sim.zube.io/exit-code", "2",
                                 NULL},
               NULL, (const char *[]) {"app", "busybox", NULL}, sandbox);
    s_container (runtime, sandbox, "app", false, 0, first);
    zube_runtime_start_container (runtime, first);
    char output[2048] = "";
    int exit_code = -1;
    ZT_ASSERT_INT_EQ (zube_runtime_exec (runtime, first, (const char *[]) {"echo", "hi", NULL},
                                         NULL, 0, 1000, s_write_output, output, &exit_code),
                      ZUBE_OK);
    ZT_ASSERT_STR_EQ (output, "hi\n");
    ZT_ASSERT_INT_EQ (exit_code, 0);
    s_mock.now_ms += 1000;
    ZT_ASSERT_INT_EQ (zube_runtime_exec (runtime, first, (const char *[]) {"true", NULL}, NULL,
                                         0, 1000, s_write_output, output, &exit_code),
                      ZUBE_CONFLICT);
    output[0] = 0;
    ZT_ASSERT_INT_EQ (zube_runtime_logs (runtime, first, NULL, s_write_output, output), ZUBE_OK);
    S_ASSERT_CONTAINS (output, "sim: container app started at 2023-11-14T22:");
    S_ASSERT_CONTAINS (output, "\nsim: container app exited with code 2 (Error) at ");
    output[0] = 0;
    zube_runtime_logs_options_t options = {.struct_size = sizeof options, .tail_lines = 1};
    zube_runtime_logs (runtime, first, &options, s_write_output, output);
    ZT_ASSERT (strncmp (output, "sim: container app exited", 25) == 0);

    zube_runtime_container_config_t config = {.struct_size = sizeof config, .name = "app",
                                              .attempt = 1};
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (runtime, sandbox, &config, second,
                                                     sizeof second), ZUBE_OK);
    options = (zube_runtime_logs_options_t) {.struct_size = sizeof options, .tail_lines = -1,
                                             .previous = true};
    output[0] = 0;
    ZT_ASSERT_INT_EQ (zube_runtime_logs (runtime, second, &options, s_write_output, output),
                      ZUBE_OK);
    S_ASSERT_CONTAINS (output, "exited with code 2");
    ZT_ASSERT_INT_EQ (zube_runtime_logs (runtime, first, &options, s_write_output, output),
                      ZUBE_NOT_FOUND);
    S_ASSERT_CONTAINS (zube_runtime_error (runtime), "previous terminated container \"app\"");
    zube_runtime_close (&runtime);
}

typedef struct {
    char out[1024];
    char err[1024];
} s_streams_t;

static int
s_write_streams (void *arg, const char *data, size_t size, bool stderr_stream)
{
    s_streams_t *streams = arg;
    strncat (stderr_stream ? streams->err : streams->out, data, size);
    return 0;
}

static int
s_exec_run (zube_runtime_t *runtime, const char *id, const char *const *argv,
            const char *input, s_streams_t *streams)
{
    memset (streams, 0, sizeof *streams);
    int exit_code = -1;
    zube_status_t status =
        zube_runtime_exec (runtime, id, argv, input, input ? strlen (input) : 0, 1000,
                           s_write_streams, streams, &exit_code);
    ZT_ASSERT_MSG (status == ZUBE_OK, "exec %s: %s", argv[0], zube_runtime_error (runtime));
    return exit_code;
}

//  sim.zube.io/logs gives the log lines, sim.zube.io/exec the answers of
//  commands the runtime does not emulate itself
static void
test_scripted_logs_and_exec (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    char sandbox[ZUBE_RUNTIME_ID_MAX], app[ZUBE_RUNTIME_ID_MAX];
    s_sandbox (runtime, "node-a", "scripted",
               (const char *[]) {"sim.zube.io/logs.app", "line one\nline two\nline three",
                                 "sim.zube.io/exec.app",
                                 "ls /data => 0: a.txt\n\nfail hard => 3: broken", NULL},
               NULL, (const char *[]) {"app", "busybox", NULL}, sandbox);
    s_container (runtime, sandbox, "app", false, 0, app);
    zube_runtime_start_container (runtime, app);
    char output[2048] = "";
    ZT_ASSERT_INT_EQ (zube_runtime_logs (runtime, app, NULL, s_write_output, output), ZUBE_OK);
    S_ASSERT_CONTAINS (output, "started at");
    S_ASSERT_CONTAINS (output, "\nline one\nline two\nline three\n");
    output[0] = 0;
    zube_runtime_logs_options_t options = {.struct_size = sizeof options, .tail_lines = 2};
    zube_runtime_logs (runtime, app, &options, s_write_output, output);
    ZT_ASSERT_STR_EQ (output, "line two\nline three\n");
    //  since: lines written before it are left out (all at the start here)
    output[0] = 0;
    options = (zube_runtime_logs_options_t) {.struct_size = sizeof options, .tail_lines = -1,
                                             .since_ms = S_WALL_BASE + s_mock.now_ms + 1};
    zube_runtime_logs (runtime, app, &options, s_write_output, output);
    ZT_ASSERT_STR_EQ (output, "");

    s_streams_t streams;
    ZT_ASSERT_INT_EQ (s_exec_run (runtime, app, (const char *[]) {"ls", "/data", NULL}, NULL,
                                  &streams), 0);
    ZT_ASSERT_STR_EQ (streams.out, "a.txt\n");
    ZT_ASSERT_INT_EQ (s_exec_run (runtime, app, (const char *[]) {"fail", "hard", NULL}, NULL,
                                  &streams), 3);
    ZT_ASSERT_STR_EQ (streams.out, "broken\n");
    ZT_ASSERT_INT_EQ (s_exec_run (runtime, app, (const char *[]) {"false", NULL}, NULL,
                                  &streams), 1);
    ZT_ASSERT_INT_EQ (s_exec_run (runtime, app, (const char *[]) {"/bin/true", NULL}, NULL,
                                  &streams), 0);
    ZT_ASSERT_INT_EQ (s_exec_run (runtime, app, (const char *[]) {"sh", "-c", "exit 42", NULL},
                                  NULL, &streams), 42);
    ZT_ASSERT_INT_EQ (s_exec_run (runtime, app, (const char *[]) {"cat", NULL}, "from stdin",
                                  &streams), 0);
    ZT_ASSERT_STR_EQ (streams.out, "from stdin");
    ZT_ASSERT_INT_EQ (s_exec_run (runtime, app, (const char *[]) {"date", NULL}, NULL,
                                  &streams), 127);
    ZT_ASSERT_STR_EQ (streams.out, "");
    S_ASSERT_CONTAINS (streams.err, "\"date\": executable file not found");

    //  A malformed rule fails the sandbox, naming the line
    ZT_ASSERT_INT_EQ (s_sandbox_try (runtime, "node-a", "bad-exec",
                                     (const char *[]) {"sim.zube.io/exec", "ls => 0\nls -l", NULL},
                                     NULL, (const char *[]) {"app", "busybox", NULL}, sandbox),
                      ZUBE_BAD_REQUEST);
    S_ASSERT_CONTAINS (zube_runtime_error (runtime), "sim.zube.io/exec");
    S_ASSERT_CONTAINS (zube_runtime_error (runtime), "line 2: expected");

    //  host-probes: the runtime declines, the host probes
    char declined[ZUBE_RUNTIME_ID_MAX], web[ZUBE_RUNTIME_ID_MAX];
    s_sandbox (runtime, "node-a", "host-probed",
               (const char *[]) {"sim.zube.io/host-probes", "true", NULL}, NULL,
               (const char *[]) {"web", "nginx", NULL}, declined);
    s_container (runtime, declined, "web", false, 0, web);
    zube_runtime_start_container (runtime, web);
    bool success = true;
    char message[256];
    ZT_ASSERT_INT_EQ (zube_runtime_probe (runtime, web, ZUBE_RUNTIME_PROBE_READINESS, 1000,
                                          &success, message, sizeof message),
                      ZUBE_UNAVAILABLE);
    zube_runtime_close (&runtime);
}

typedef struct {
    int count;
    char ids[16][ZUBE_RUNTIME_ID_MAX];
    char names[16][64];
} s_listed_t;

static int
s_on_sandbox (void *arg, const zube_runtime_sandbox_status_t *sandbox)
{
    s_listed_t *listed = arg;
    if (listed->count < 16) {
        snprintf (listed->ids[listed->count], ZUBE_RUNTIME_ID_MAX, "%s", sandbox->id);
        snprintf (listed->names[listed->count], 64, "%s", sandbox->pod_name);
    }
    listed->count++;
    return 0;
}

static int
s_on_container (void *arg, const zube_runtime_container_status_t *container)
{
    s_listed_t *listed = arg;
    if (listed->count < 16) {
        snprintf (listed->ids[listed->count], ZUBE_RUNTIME_ID_MAX, "%s", container->id);
        snprintf (listed->names[listed->count], 64, "%s", container->name);
    }
    listed->count++;
    return 0;
}

static void
test_list_by_node (void)
{
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    char sandboxes[6][ZUBE_RUNTIME_ID_MAX], id[ZUBE_RUNTIME_ID_MAX];
    const char *nodes[] = {"node-a", "node-b", "node-c"};
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf (name, sizeof name, "pod-%d", i);
        s_sandbox (runtime, nodes[i % 3], name, NULL, NULL,
                   (const char *[]) {"one", "busybox", "two", "busybox", NULL}, sandboxes[i]);
    }
    s_container (runtime, sandboxes[4], "two", false, 1, id);
    s_container (runtime, sandboxes[4], "one", false, 0, id);
    s_listed_t listed = {0};
    ZT_ASSERT_INT_EQ (zube_runtime_list_sandboxes (runtime, "node-b", s_on_sandbox, &listed),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (listed.count, 2);
    ZT_ASSERT ((strcmp (listed.names[0], "pod-1") == 0 && strcmp (listed.names[1], "pod-4") == 0)
               || (strcmp (listed.names[0], "pod-4") == 0
                   && strcmp (listed.names[1], "pod-1") == 0));
    listed = (s_listed_t) {0};
    zube_runtime_list_sandboxes (runtime, "node-z", s_on_sandbox, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 0);
    zube_runtime_list_sandboxes (runtime, NULL, s_on_sandbox, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 6);

    //  A removed sandbox leaves its node's list.
    zube_runtime_remove_sandbox (runtime, sandboxes[1]);
    listed = (s_listed_t) {0};
    zube_runtime_list_sandboxes (runtime, "node-b", s_on_sandbox, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 1);
    ZT_ASSERT_STR_EQ (listed.names[0], "pod-4");

    listed = (s_listed_t) {0};
    ZT_ASSERT_INT_EQ (zube_runtime_list_containers (runtime, sandboxes[4], s_on_container,
                                                    &listed), ZUBE_OK);
    ZT_ASSERT_INT_EQ (listed.count, 2);
    ZT_ASSERT_STR_EQ (listed.names[0], "two");
    ZT_ASSERT_STR_EQ (listed.names[1], "one");
    listed = (s_listed_t) {0};
    zube_runtime_list_containers (runtime, sandboxes[0], s_on_container, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 0);
    zube_runtime_list_containers (runtime, NULL, s_on_container, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 2);
    ZT_ASSERT_INT_EQ (zube_runtime_list_containers (runtime, sandboxes[1], s_on_container,
                                                    &listed), ZUBE_NOT_FOUND);
    zube_runtime_close (&runtime);
}

static void
test_state_dir_adoption (void)
{
    s_mock_reset ();
    char *dir = zt_tempdir ("sim");
    ZT_ASSERT (dir);
    char option[512], path[600];
    //  The directory is made at open, parents included.
    snprintf (option, sizeof option, "state_dir=%s/zubelet/runtime", dir);
    snprintf (path, sizeof path, "%s/zubelet/runtime/sim-state", dir);
    const char *options[] = {option, NULL};
    zube_runtime_t *runtime = s_open (options);
    char sandboxes[3][ZUBE_RUNTIME_ID_MAX], ids[3][ZUBE_RUNTIME_ID_MAX];
    const char *annotations[3][5] = {
        {"sim.zube.io/readiness-delay", "1s", NULL},
        {"sim.zube.io/run-duration", "10s", "sim.zube.io/exit-code", "4", NULL},
        {"sim.zube.io/start-delay", "5s", NULL},
    };
    const char *names[] = {"forever", "short", "late"};
    for (int i = 0; i < 3; i++) {
        s_sandbox (runtime, i == 2 ? "node-b" : "node-a", names[i], annotations[i], NULL,
                   (const char *[]) {"app", "k8s.gcr.io/pause:3.9", NULL}, sandboxes[i]);
        s_container (runtime, sandboxes[i], "app", false, 0, ids[i]);
        ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, ids[i]), ZUBE_OK);
    }
    int64_t started = S_WALL_BASE + s_mock.now_ms;
    //  Writes are batched: none before the interval has passed since open.
    s_events_t events;
    int64_t next = s_tick (runtime, &events);
    ZT_ASSERT (next >= 0 && next <= 100);
    ZT_ASSERT (access (path, F_OK) != 0);
    s_mock.now_ms += 100;
    ZT_ASSERT_INT_EQ (s_tick (runtime, &events), 4900);
    ZT_ASSERT_MSG (access (path, F_OK) == 0, "%s not written", path);
    char *text = zt_read_file (path);
    S_ASSERT_CONTAINS (text, "zube-sim-state 1 ");
    S_ASSERT_CONTAINS (text, "k8s.gcr.io/pause:3.9");
    free (text);
    zube_runtime_close (&runtime);

    //  The host is down for 20 s: the short run ends, the late start
    //  happens, and both are reported at the first tick, in time order.
    s_mock.now_ms += 20000;
    runtime = s_open (options);
    s_listed_t listed = {0};
    zube_runtime_list_sandboxes (runtime, NULL, s_on_sandbox, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 3);
    listed = (s_listed_t) {0};
    zube_runtime_list_sandboxes (runtime, "node-b", s_on_sandbox, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 1);
    ZT_ASSERT_STR_EQ (listed.ids[0], sandboxes[2]);
    s_tick (runtime, &events);
    ZT_ASSERT_INT_EQ (events.count, 2);
    ZT_ASSERT_STR_EQ (events.items[0].id, ids[2]);
    ZT_ASSERT_INT_EQ (events.items[0].state, RUNNING);
    ZT_ASSERT_INT_EQ (events.items[0].started_ms, started + 5000);
    ZT_ASSERT_STR_EQ (events.items[1].id, ids[1]);
    ZT_ASSERT_INT_EQ (events.items[1].state, EXITED);
    ZT_ASSERT_INT_EQ (events.items[1].exit_code, 4);
    ZT_ASSERT_INT_EQ (events.items[1].finished_ms, started + 10000);

    zube_runtime_container_status_t status = s_status (runtime, ids[0]);
    ZT_ASSERT_INT_EQ (status.state, RUNNING);
    ZT_ASSERT_INT_EQ (status.started_ms, started);
    ZT_ASSERT_STR_EQ (status.image, "k8s.gcr.io/pause:3.9");
    bool ready = false;
    zube_runtime_probe (runtime, ids[0], ZUBE_RUNTIME_PROBE_READINESS, 1000, &ready, NULL, 0);
    ZT_ASSERT (ready);
    zube_runtime_sandbox_status_t sandbox_status;
    ZT_ASSERT_INT_EQ (zube_runtime_sandbox_status (runtime, sandboxes[1], &sandbox_status),
                      ZUBE_OK);
    ZT_ASSERT_STR_EQ (sandbox_status.pod_name, "short");
    ZT_ASSERT_STR_EQ (sandbox_status.pod_uid, "uid-node-a-short");

    //  New records get new ids, never an adopted one's.
    char fresh[ZUBE_RUNTIME_ID_MAX], fresh_container[ZUBE_RUNTIME_ID_MAX];
    zube_runtime_stop_sandbox (runtime, sandboxes[1], 0);
    zube_runtime_remove_sandbox (runtime, sandboxes[1]);
    s_sandbox (runtime, "node-a", "new", NULL, NULL, (const char *[]) {"app", "busybox", NULL},
               fresh);
    s_container (runtime, fresh, "app", false, 0, fresh_container);
    for (int i = 0; i < 3; i++) {
        ZT_ASSERT (strcmp (fresh, sandboxes[i]) != 0);
        ZT_ASSERT (strcmp (fresh_container, ids[i]) != 0);
    }
    //  Closing writes what changed since the last write.
    zube_runtime_close (&runtime);
    runtime = s_open (options);
    listed = (s_listed_t) {0};
    zube_runtime_list_sandboxes (runtime, "node-a", s_on_sandbox, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 2);
    ZT_ASSERT_INT_EQ (s_status (runtime, fresh_container).state, CREATED);
    zube_runtime_close (&runtime);

    //  A damaged file refuses the open rather than dropping pods.
    FILE *file = fopen (path, "a");
    fputs ("S garbage\n", file);
    fclose (file);
    char *error = NULL;
    runtime = zube_runtime_open_host (s_plugins, "sim", &s_mock.host, options, &error);
    ZT_ASSERT (!runtime);
    S_ASSERT_CONTAINS (error, "malformed record");
    free (error);
    zt_rmtree (dir);
    free (dir);
}

//  After the first write, a write appends what changed (a journal): the
//  changed records again, removed ones as "-S"/"-C" lines. A reopen
//  replays it, skips a torn last line, and writes whole again; a journal
//  that outgrows the last whole write is compacted.
static off_t
s_file_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? st.st_size : -1;
}

static void
test_state_journal (void)
{
    s_mock_reset ();
    char *dir = zt_tempdir ("sim");
    ZT_ASSERT (dir);
    char option[512], path[600];
    snprintf (option, sizeof option, "state_dir=%s", dir);
    snprintf (path, sizeof path, "%s/sim-state", dir);
    const char *options[] = {option, NULL};
    zube_runtime_t *runtime = s_open (options);
    char sandboxes[4][ZUBE_RUNTIME_ID_MAX], ids[4][ZUBE_RUNTIME_ID_MAX];
    const char *names[] = {"keep", "short", "gone", "late"};
    const char *short_run[] = {"sim.zube.io/run-duration", "10s", "sim.zube.io/exit-code", "3",
                               NULL};
    for (int i = 0; i < 3; i++) {
        s_sandbox (runtime, "node-a", names[i], i == 1 ? short_run : NULL, NULL,
                   (const char *[]) {"app", "busybox", NULL}, sandboxes[i]);
        s_container (runtime, sandboxes[i], "app", false, 0, ids[i]);
        ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, ids[i]), ZUBE_OK);
    }
    s_events_t events;
    s_mock.now_ms += 100;
    s_tick (runtime, &events);
    off_t whole = s_file_size (path);
    ZT_ASSERT (whole > 0);
    char *text = zt_read_file (path);
    S_ASSERT_CONTAINS (text, "uid-node-a-gone");
    free (text);

    //  One removed, one added, one exited: appended
    ZT_ASSERT_INT_EQ (zube_runtime_stop_sandbox (runtime, sandboxes[2], 0), ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_runtime_remove_sandbox (runtime, sandboxes[2]), ZUBE_OK);
    s_sandbox (runtime, "node-a", names[3], NULL, NULL,
               (const char *[]) {"app", "busybox", NULL}, sandboxes[3]);
    s_container (runtime, sandboxes[3], "app", false, 0, ids[3]);
    s_mock.now_ms += 10000;
    s_tick (runtime, &events);
    ZT_ASSERT_INT_EQ (events.count, 1);
    ZT_ASSERT_STR_EQ (events.items[0].id, ids[1]);
    ZT_ASSERT (s_file_size (path) > whole);
    text = zt_read_file (path);
    ZT_ASSERT_MSG (strncmp (text, "zube-sim-state 1 ", 17) == 0, "%.40s", text);
    S_ASSERT_CONTAINS (text, "uid-node-a-gone");
    S_ASSERT_CONTAINS (text, "\n-C ");
    S_ASSERT_CONTAINS (text, "\n-S ");
    S_ASSERT_CONTAINS (text, "uid-node-a-late");
    free (text);
    //  The host dies in the middle of a write
    FILE *file = fopen (path, "a");
    fputs ("C 7 12", file);
    fclose (file);
    zube_runtime_close (&runtime);

    runtime = s_open (options);
    s_listed_t listed = {0};
    zube_runtime_list_sandboxes (runtime, "node-a", s_on_sandbox, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 3);
    zube_runtime_sandbox_status_t sandbox_status;
    ZT_ASSERT_INT_EQ (zube_runtime_sandbox_status (runtime, sandboxes[2], &sandbox_status),
                      ZUBE_NOT_FOUND);
    ZT_ASSERT_INT_EQ (s_status (runtime, ids[0]).state, RUNNING);
    zube_runtime_container_status_t status = s_status (runtime, ids[1]);
    ZT_ASSERT_INT_EQ (status.state, EXITED);
    ZT_ASSERT_INT_EQ (status.exit_code, 3);
    ZT_ASSERT_INT_EQ (s_status (runtime, ids[3]).state, CREATED);
    //  The first write after an open is whole: the journal and the torn
    //  line are gone
    ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, ids[3]), ZUBE_OK);
    s_mock.now_ms += 100;
    s_tick (runtime, &events);
    text = zt_read_file (path);
    ZT_ASSERT (!strstr (text, "uid-node-a-gone"));
    ZT_ASSERT (!strstr (text, "\n-S "));
    ZT_ASSERT (!strstr (text, "C 7 12"));
    free (text);

    //  Many changes: the file is compacted now and then, not grown by all
    off_t appended = 0, largest = 0;
    for (int round = 0; round < 100; round++) {
        char batch[50][ZUBE_RUNTIME_ID_MAX], container[ZUBE_RUNTIME_ID_MAX];
        for (int i = 0; i < 50; i++) {
            char name[32];
            snprintf (name, sizeof name, "churn-%d-%d", round, i);
            s_sandbox (runtime, "node-b", name, NULL, NULL,
                       (const char *[]) {"app", "busybox", NULL}, batch[i]);
            s_container (runtime, batch[i], "app", false, 0, container);
        }
        off_t before = s_file_size (path);
        s_mock.now_ms += 100;
        s_tick (runtime, &events);
        off_t after = s_file_size (path);
        if (after > before)
            appended += after - before;
        for (int i = 0; i < 50; i++)
            zube_runtime_remove_sandbox (runtime, batch[i]);
        s_mock.now_ms += 100;
        s_tick (runtime, &events);
        if (s_file_size (path) > largest)
            largest = s_file_size (path);
    }
    ZT_ASSERT_MSG (appended > 2 * largest, "appended %lld, largest file %lld",
                   (long long) appended, (long long) largest);
    zube_runtime_close (&runtime);
    runtime = s_open (options);
    listed = (s_listed_t) {0};
    zube_runtime_list_sandboxes (runtime, NULL, s_on_sandbox, &listed);
    ZT_ASSERT_INT_EQ (listed.count, 3);
    ZT_ASSERT_INT_EQ (s_status (runtime, ids[3]).state, RUNNING);
    zube_runtime_close (&runtime);
    zt_rmtree (dir);
    free (dir);
}

//  50,000 containers in 5,000 sandboxes on 500 nodes: timers cost
//  O(log n) heap steps each, a tick with nothing due visits nothing, and
//  the records stay small.
static void
test_scale (void)
{
    enum { SANDBOXES = 5000, PER_SANDBOX = 10, NODES = 500 };
    s_mock_reset ();
    zube_runtime_t *runtime = s_open (NULL);
    const char *regular[2 * PER_SANDBOX + 1];
    char container_names[PER_SANDBOX][16];
    for (int i = 0; i < PER_SANDBOX; i++) {
        snprintf (container_names[i], sizeof container_names[i], "c%d", i);
        regular[2 * i] = container_names[i];
        regular[2 * i + 1] = i % 2 ? "nginx:1.25" : "busybox";
    }
    regular[2 * PER_SANDBOX] = NULL;
    //  The packed pods are made before measuring: only the runtime's own
    //  allocations count.
    void *pods[SANDBOXES];
    size_t sizes[SANDBOXES];
    for (int s = 0; s < SANDBOXES; s++) {
        char run[16];
        //  Half the pods run forever, the others end within 100 s.
        snprintf (run, sizeof run, "%ds", 1 + (s / 2) % 100);
        const char *annotations[] = {"sim.zube.io/run-duration", run, NULL};
        pods[s] = s_pod (s % 2 ? annotations : NULL, NULL, regular, &sizes[s]);
    }
    char (*ids)[ZUBE_RUNTIME_ID_MAX] = malloc ((size_t) SANDBOXES * PER_SANDBOX
                                               * ZUBE_RUNTIME_ID_MAX);
    ZT_ASSERT (ids);
    struct mallinfo2 before = mallinfo2 ();
    for (int s = 0; s < SANDBOXES; s++) {
        char node[32], name[32], uid[64], sandbox[ZUBE_RUNTIME_ID_MAX];
        snprintf (node, sizeof node, "sim-node-%04d", s % NODES);
        snprintf (name, sizeof name, "pod-%05d", s);
        snprintf (uid, sizeof uid, "4f1c2e7a-0000-4000-8000-%012d", s);
        zube_runtime_sandbox_config_t config = {.struct_size = sizeof config,
                                                .node_name = node,
                                                .pod_namespace = "default",
                                                .pod_name = name,
                                                .pod_uid = uid,
                                                .pod = pods[s],
                                                .pod_size = sizes[s]};
        ZT_ASSERT_INT_EQ (zube_runtime_run_sandbox (runtime, &config, sandbox, sizeof sandbox),
                          ZUBE_OK);
        for (int c = 0; c < PER_SANDBOX; c++) {
            zube_runtime_container_config_t cc = {.struct_size = sizeof cc,
                                                  .name = container_names[c],
                                                  .index = (uint32_t) c};
            char *id = ids[s * PER_SANDBOX + c];
            ZT_ASSERT_INT_EQ (zube_runtime_create_container (runtime, sandbox, &cc, id,
                                                             ZUBE_RUNTIME_ID_MAX), ZUBE_OK);
            ZT_ASSERT_INT_EQ (zube_runtime_start_container (runtime, id), ZUBE_OK);
        }
    }
    //  The first tick hands over the 50,000 start events (a queue that
    //  large is freed afterwards; one of up to 4096 is kept).
    ZT_ASSERT_INT_EQ (zube_runtime_tick (runtime, NULL, NULL), 1000);
    struct mallinfo2 after = mallinfo2 ();
    size_t bytes = after.uordblks - before.uordblks;
    printf ("# %d sandboxes, %d containers: %zu bytes, %zu per sandbox with %d containers\n",
            SANDBOXES, SANDBOXES * PER_SANDBOX, bytes, bytes / SANDBOXES, PER_SANDBOX);
#if defined(__SANITIZE_ADDRESS__)
    printf ("# memory bound not checked under AddressSanitizer (its own allocator)\n");
#else
    //  5,000 nodes x 10 pods must fit a zubelet in 200 MB: 4 KiB per pod
    //  for everything. The sim's share: a 64-byte sandbox record, its
    //  name/uid/image blob (~100 bytes), 72 bytes and a heap slot per
    //  container (the interned names and images are shared): about 1 KB
    //  for a pod of 10 containers.
    //  The bound, 1.5 KB per sandbox of 10 (150 bytes per container),
    //  leaves room for allocator rounding only.
    ZT_ASSERT_MSG (bytes / SANDBOXES <= 1536, "%zu bytes per sandbox", bytes / SANDBOXES);
#endif

    //  Nothing due: a tick does no heap work at all.
    s_mock.now_ms += 500;
    uint64_t steps = s_counter ("sim_heap_steps_total");
    ZT_ASSERT_INT_EQ (zube_runtime_tick (runtime, NULL, NULL), 500);
    ZT_ASSERT_INT_EQ (s_counter ("sim_heap_steps_total"), steps);

    //  Each second 1/100 of the timed half ends (250 containers): the heap
    //  steps per fired timer stay within 2 log2 n.
    int64_t heap_size = SANDBOXES / 2 * PER_SANDBOX;
    int64_t bound = 2 * (int64_t) ceil (log2 ((double) heap_size)) + 2;
    uint64_t fired_total = 0;
    for (int second = 1; second <= 100; second++) {
        s_mock.now_ms = 1000000 + second * 1000;
        uint64_t steps_before = s_counter ("sim_heap_steps_total");
        uint64_t fired_before = s_counter ("sim_timers_fired_total");
        zube_runtime_tick (runtime, NULL, NULL);
        uint64_t fired = s_counter ("sim_timers_fired_total") - fired_before;
        uint64_t used = s_counter ("sim_heap_steps_total") - steps_before;
        ZT_ASSERT_INT_EQ (fired, SANDBOXES / 2 / 100 * PER_SANDBOX);
        ZT_ASSERT_MSG ((int64_t) used <= (int64_t) fired * bound,
                       "second %d: %" PRIu64 " heap steps for %" PRIu64 " timers (bound %" PRId64
                       " each)",
                       second, used, fired, bound);
        fired_total += fired;
    }
    ZT_ASSERT_INT_EQ (fired_total, (uint64_t) heap_size);
    ZT_ASSERT_INT_EQ (zube_runtime_tick (runtime, NULL, NULL), -1);
    ZT_ASSERT_INT_EQ (s_status (runtime, ids[1 * PER_SANDBOX]).state, EXITED);
    ZT_ASSERT_INT_EQ (s_status (runtime, ids[0]).state, RUNNING);
    zube_runtime_close (&runtime);
    for (int s = 0; s < SANDBOXES; s++)
        free (pods[s]);
    free (ids);
}

//  The annotation parsers (sim_behaviour.c, compiled into this test).
static void
test_annotation_parsers (void)
{
    ZT_ASSERT_INT_EQ (sim_duration_ms ("1.5s"), 1500);
    ZT_ASSERT_INT_EQ (sim_duration_ms ("2m"), 120000);
    ZT_ASSERT_INT_EQ (sim_duration_ms ("100ms"), 100);
    ZT_ASSERT_INT_EQ (sim_duration_ms ("1h30m"), 5400000);
    ZT_ASSERT_INT_EQ (sim_duration_ms ("0.3s"), 300);
    ZT_ASSERT_INT_EQ (sim_duration_ms (".5s"), 500);
    ZT_ASSERT_INT_EQ (sim_duration_ms ("1500us"), 2);
    ZT_ASSERT_INT_EQ (sim_duration_ms ("1m0.25s"), 60250);
    ZT_ASSERT_INT_EQ (sim_duration_ms ("0"), 0);
    ZT_ASSERT_INT_EQ (sim_duration_ms ("+3s"), 3000);
    const char *bad[] = {"", "1", "s", "-1s", "1x", "1.s.", "1 s", "ms", "1e3s", "100000000h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ZT_ASSERT_MSG (sim_duration_ms (bad[i]) == -1, "\"%s\" parsed", bad[i]);

    ZT_ASSERT_INT_EQ (sim_exit_code ("0"), 0);
    ZT_ASSERT_INT_EQ (sim_exit_code ("255"), 255);
    ZT_ASSERT_INT_EQ (sim_exit_code ("256"), -1);
    ZT_ASSERT_INT_EQ (sim_exit_code ("-1"), -1);
    ZT_ASSERT_INT_EQ (sim_exit_code ("1a"), -1);
    ZT_ASSERT_INT_EQ (sim_bool ("true"), 1);
    ZT_ASSERT_INT_EQ (sim_bool ("false"), 0);
    ZT_ASSERT_INT_EQ (sim_bool ("yes"), -1);

    sim_fail_rule_t rules[4];
    char error[256];
    ZT_ASSERT (sim_fail_probe_parse ("liveness:after=30s, readiness:always,startup:until=1m",
                                     rules, error, sizeof error));
    ZT_ASSERT_INT_EQ (rules[ZUBE_RUNTIME_PROBE_LIVENESS].mode, SIM_FAIL_AFTER);
    ZT_ASSERT_INT_EQ (rules[ZUBE_RUNTIME_PROBE_LIVENESS].ms, 30000);
    ZT_ASSERT_INT_EQ (rules[ZUBE_RUNTIME_PROBE_READINESS].mode, SIM_FAIL_ALWAYS);
    ZT_ASSERT_INT_EQ (rules[ZUBE_RUNTIME_PROBE_STARTUP].mode, SIM_FAIL_UNTIL);
    ZT_ASSERT_INT_EQ (rules[ZUBE_RUNTIME_PROBE_STARTUP].ms, 60000);
    ZT_ASSERT (!sim_fail_probe_parse ("liveliness:always", rules, error, sizeof error));
    S_ASSERT_CONTAINS (error, "liveliness");
    ZT_ASSERT (!sim_fail_probe_parse ("readiness:after=soon", rules, error, sizeof error));

    char image[512], id[512];
    const char *cases[][2] = {
        {"busybox", "docker.io/library/busybox:latest"},
        {"nginx:1.25", "docker.io/library/nginx:1.25"},
        {"bitnami/redis", "docker.io/bitnami/redis:latest"},
        {"quay.io/x/y", "quay.io/x/y:latest"},
        {"localhost:5000/app:v1", "localhost:5000/app:v1"},
        {"localhost/app", "localhost/app:latest"},
        {"busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sim_image_normalize (cases[i][0], image, sizeof image);
        ZT_ASSERT_STR_EQ (image, cases[i][1]);
    }
    sim_image_id ("localhost:5000/app:v1", id, sizeof id);
    ZT_ASSERT (strncmp (id, "localhost:5000/app@sha256:", 26) == 0);
    char again[512];
    sim_image_id ("localhost:5000/app:v1", again, sizeof again);
    ZT_ASSERT_STR_EQ (id, again);
    sim_image_id ("localhost:5000/app:v2", again, sizeof again);
    ZT_ASSERT (strcmp (id, again) != 0);
}

int
main (void)
{
    s_plugins = zube_plugin_host_new ();
    ZT_RUN (test_annotation_parsers);
    ZT_RUN (test_lifecycle_start_delay_and_run_duration);
    ZT_RUN (test_exit_codes_and_reasons);
    ZT_RUN (test_init_containers);
    ZT_RUN (test_stop_with_grace);
    ZT_RUN (test_tick_order_and_next_timer);
    ZT_RUN (test_probes);
    ZT_RUN (test_image_missing);
    ZT_RUN (test_bad_annotations_and_options);
    ZT_RUN (test_logs_and_exec);
    ZT_RUN (test_scripted_logs_and_exec);
    ZT_RUN (test_list_by_node);
    ZT_RUN (test_state_dir_adoption);
    ZT_RUN (test_state_journal);
    ZT_RUN (test_scale);
    zube_plugin_host_destroy (&s_plugins);
    return zt_done ();
}
