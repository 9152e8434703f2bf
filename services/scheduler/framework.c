/*  framework - the scheduling cycle of Kubernetes' scheduling framework,
    run over plugin instances of one profile on the node cache.

    A profile holds one instance per plugin it enables, and per extension
    point the instances that implement it, in the order the configuration
    gives. The filter pass starts where the previous cycle stopped (round
    robin) and stops once it has found Kubernetes' numFeasibleNodesToFind
    nodes; rejection reasons are counted for the unschedulable message.
    With parallelism above 1, a pool of threads filters batches of nodes
    and the results are taken in node order, so the cycle finds the same
    nodes as one thread would.

    A pod that a permit plugin makes wait stays assumed and reserved; the
    profile keeps it in its waiting map until every plugin that made it
    wait allows it, one rejects it, or its time runs out. Plugins reach
    the map through their handle (zube_sched_handle_t), whose allow and
    reject only mark the pod: the scheduler acts on it between two cycles
    (zs_profile_waiting_next), never inside a plugin's operation. */
#define _GNU_SOURCE
#include "zs_permit.h"
#include "zube/log.h"
#include "zube/plugin_host.h"
#include <ctype.h>
#include <czmq.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Registry

struct _zs_registry_t {
    zube_plugin_host_t *host;
    zhashx_t *loaded;   //  framework name -> zube_plugin_handle_t
    zhashx_t *builtins; //  framework name -> const zube_sched_ops_t (no file)
    zs_lister_t lister;
};

void
zs_registry_set_lister (zs_registry_t *self, const zs_lister_t *lister)
{
    self->lister = *lister;
}

zs_registry_t *
zs_registry_new (const char *path)
{
    zs_registry_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->host = zube_plugin_host_new ();
    self->loaded = zhashx_new ();
    self->builtins = zhashx_new ();
    if (!self->host || !self->loaded || !self->builtins) {
        zs_registry_destroy (&self);
        return NULL;
    }
    if (path)
        zube_plugin_host_set_path (self->host, path);
    return self;
}

void
zs_registry_destroy (zs_registry_t **self_p)
{
    zs_registry_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->loaded);
    zhashx_destroy (&self->builtins);
    zube_plugin_host_destroy (&self->host);
    free (self);
    *self_p = NULL;
}

//  Checks what the host's loader does not: the scheduler table itself.
static const char *
s_ops_problem (const zube_sched_ops_t *ops, const char *name)
{
    if (ops->struct_size < ZUBE_SCHED_OPS_SIZE_V1)
        return "its scheduler ops table is smaller than ABI 1's";
    if (!ops->create || !ops->destroy)
        return "its scheduler ops have no create or destroy";
    if (!ops->framework_name || !*ops->framework_name)
        return "its scheduler ops have no framework_name";
    if (name && strcmp (ops->framework_name, name) != 0)
        return "its framework_name differs";
    return NULL;
}

static zube_plugin_handle_t *
s_registry_handle (zs_registry_t *self, const char *name, char *error, size_t error_size)
{
    zube_plugin_handle_t *handle = zhashx_lookup (self->loaded, name);
    if (handle)
        return handle;
    char file[128];
    size_t length = 0;
    for (const char *c = name; *c && length + 1 < sizeof file; c++) {
        if (!isalnum ((unsigned char)*c)) {
            snprintf (error, error_size, "unknown plugin \"%s\"", name);
            return NULL;
        }
        file[length++] = (char)tolower ((unsigned char)*c);
    }
    file[length] = 0;
    char *why = NULL;
    char *found = length ? zube_plugin_host_find (self->host, file, &why) : NULL;
    if (!found) {
        snprintf (error, error_size, "unknown plugin \"%s\"", name);
        free (why);
        return NULL;
    }
    free (found);
    handle = zube_plugin_host_load (self->host, file, ZUBE_PLUGIN_SCHEDULER, &why);
    if (!handle) {
        snprintf (error, error_size, "plugin \"%s\": %s", name,
                  why ? why : "cannot load");
        free (why);
        return NULL;
    }
    const char *problem = s_ops_problem (zube_plugin_handle_ops (handle), name);
    if (problem) {
        snprintf (error, error_size, "plugin \"%s\" (%s): %s", name,
                  zube_plugin_handle_path (handle), problem);
        zube_plugin_host_unload (self->host, &handle);
        return NULL;
    }
    zhashx_insert (self->loaded, name, handle);
    return handle;
}

//  Loads the file at path and checks it; NULL with error.
static zube_plugin_handle_t *
s_registry_load_path (zs_registry_t *self, const char *path, char *error,
                      size_t error_size)
{
    char *why = NULL;
    zube_plugin_handle_t *handle =
        zube_plugin_host_load (self->host, path, ZUBE_PLUGIN_SCHEDULER, &why);
    if (!handle) {
        snprintf (error, error_size, "%s", why ? why : "cannot load");
        free (why);
        return NULL;
    }
    const char *problem = s_ops_problem (zube_plugin_handle_ops (handle), NULL);
    if (problem) {
        snprintf (error, error_size, "%s: %s", path, problem);
        zube_plugin_host_unload (self->host, &handle);
    }
    return handle;
}

static const char *
s_handle_name (zube_plugin_handle_t *handle)
{
    return ((const zube_sched_ops_t *)zube_plugin_handle_ops (handle))->framework_name;
}

const char *
zs_registry_load (zs_registry_t *self, const char *path, char *error, size_t error_size)
{
    zube_plugin_handle_t *handle = s_registry_load_path (self, path, error, error_size);
    if (!handle)
        return NULL;
    const char *name = s_handle_name (handle);
    if (zhashx_lookup (self->loaded, name)) {
        snprintf (error, error_size,
                  "plugin \"%s\" is already loaded (swap replaces a loaded plugin)",
                  name);
        zube_plugin_host_unload (self->host, &handle);
        return NULL;
    }
    zhashx_insert (self->loaded, name, handle);
    return zube_plugin_handle_descriptor (handle)->name;
}

zube_plugin_handle_t *
zs_registry_swap (zs_registry_t *self, const char *path, const char **name_p, char *error,
                  size_t error_size)
{
    zube_plugin_handle_t *handle = s_registry_load_path (self, path, error, error_size);
    if (!handle)
        return NULL;
    const char *name = s_handle_name (handle);
    zube_plugin_handle_t *old = zhashx_lookup (self->loaded, name);
    if (!old) {
        snprintf (error, error_size, "plugin \"%s\" is not loaded: load it first", name);
        zube_plugin_host_unload (self->host, &handle);
        return NULL;
    }
    zhashx_update (self->loaded, name, handle);
    *name_p = name;
    return old;
}

void
zs_registry_unswap (zs_registry_t *self, const char *name, zube_plugin_handle_t *old)
{
    zube_plugin_handle_t *handle = zhashx_lookup (self->loaded, name);
    zhashx_update (self->loaded, name, old);
    zube_plugin_host_unload (self->host, &handle);
}

void
zs_registry_release (zs_registry_t *self, zube_plugin_handle_t **handle_p)
{
    zube_plugin_host_unload (self->host, handle_p);
}

int
zs_registry_unload (zs_registry_t *self, const char *name)
{
    zube_plugin_handle_t *handle = zhashx_lookup (self->loaded, name);
    if (!handle)
        return -1;
    zhashx_delete (self->loaded, name);
    zube_plugin_host_unload (self->host, &handle);
    return 0;
}

void
zs_registry_each (zs_registry_t *self, zs_registry_each_fn *fn, void *arg)
{
    for (zube_plugin_handle_t *handle = zhashx_first (self->loaded); handle;
         handle = zhashx_next (self->loaded))
        fn (zhashx_cursor (self->loaded), zube_plugin_handle_descriptor (handle),
            zube_plugin_handle_path (handle), arg);
}

void
zs_registry_add_builtin (zs_registry_t *self, const zube_sched_ops_t *ops)
{
    zhashx_update (self->builtins, ops->framework_name, (void *)ops);
}

const zube_sched_ops_t *
zs_registry_get (zs_registry_t *self, const char *name, char *error, size_t error_size)
{
    const zube_sched_ops_t *builtin = zhashx_lookup (self->builtins, name);
    if (builtin)
        return builtin;
    zube_plugin_handle_t *handle = s_registry_handle (self, name, error, error_size);
    return handle ? zube_plugin_handle_ops (handle) : NULL;
}

const zube_host_t *
zs_registry_host (zs_registry_t *self, const char *name)
{
    zube_plugin_handle_t *handle = zhashx_lookup (self->loaded, name);
    return handle ? zube_plugin_handle_host (handle) : NULL;
}

//  ---------------------------------------------------------------------
//  Profiles

const zs_default_plugin_t zs_default_plugins[] = {{"PrioritySort", 0},
                                                  {"NodeUnschedulable", 0},
                                                  {"NodeName", 0},
                                                  {"TaintToleration", 3},
                                                  {"NodeAffinity", 2},
                                                  {"NodePorts", 0},
                                                  {"NodeResourcesFit", 1},
                                                  {"PodTopologySpread", 2},
                                                  {"InterPodAffinity", 2},
                                                  {"NodeResourcesBalancedAllocation", 1},
                                                  {"ImageLocality", 1},
                                                  {"DefaultPreemption", 0},
                                                  {NULL, 0}};

typedef struct {
    const char *name;
    const zube_sched_ops_t *ops;
    void *self;
    const zube_host_t *host;
    int weight;
    //  Per cycle: pre_filter/pre_score data and whether to skip
    void *cycle_data;
    bool skip_filter;
    bool skip_score;
} s_instance_t;

typedef enum {
    S_QUEUE_SORT,
    S_PRE_FILTER,
    S_FILTER,
    S_POST_FILTER,
    S_PRE_SCORE,
    S_SCORE,
    S_RESERVE,
    S_PERMIT,
    S_PRE_BIND,
    S_BIND,
    S_POST_BIND,
    S_POINTS
} s_point_t;

static const char *s_point_names[S_POINTS] = {
    "queueSort", "preFilter", "filter",  "postFilter", "preScore", "score",
    "reserve",   "permit",    "preBind", "bind",       "postBind"};

#define S_MAX_INSTANCES 64
//  Kubernetes' maxTimeout for waiting at permit
#define S_MAX_WAIT_MS (15 * 60 * 1000)

typedef enum { S_WAITING, S_ALLOWED, S_REJECTED } s_wait_state_t;

//  A pod waiting at permit: per permit plugin that made it wait, whether
//  it still does and until when.
typedef struct {
    zs_pod_t *pod;
    char *key;
    char node[256];
    s_wait_state_t state;
    size_t pending;
    size_t plugin_count;
    struct {
        s_instance_t *instance;
        int64_t deadline_ms;
        int64_t wait_ms;
        bool waiting;
    } * plugins;
    char message[768];
} s_waiting_t;

typedef struct _s_pool_t s_pool_t;

struct _zs_profile_t {
    char *name;
    int percentage;
    zs_registry_t *registry;
    size_t instance_count;
    s_instance_t instances[S_MAX_INSTANCES];
    size_t point_count[S_POINTS];
    s_instance_t *points[S_POINTS][S_MAX_INSTANCES];
    uint64_t cycle;
    size_t next_start;
    uint64_t random;
    zs_timings_t timings;
    //  Scratch of the cycle: feasible nodes and their scores
    const zube_sched_node_t **feasible;
    int64_t *scores;
    int64_t *totals;
    size_t scratch_size;
    //  The plugins' handle, and the pods waiting at permit (key ->
    //  s_waiting_t), how many of them are allowed or rejected, and the
    //  earliest deadline (may be early: then a scan finds nothing)
    zube_sched_handle_t handle;
    zhashx_t *waiting;
    size_t resolved;
    int64_t next_deadline_ms;
    //  Filtering on threads: pool NULL when parallelism is 1
    int parallelism;
    s_pool_t *pool;
    struct _s_verdict_t *verdicts;
    size_t verdict_size;
};

static bool
s_implements (const zube_sched_ops_t *ops, s_point_t point)
{
    switch (point) {
    case S_QUEUE_SORT:
        return ops->queue_less != NULL;
    case S_PRE_FILTER:
        return ops->pre_filter != NULL;
    case S_FILTER:
        return ops->filter != NULL;
    case S_POST_FILTER:
        return ops->post_filter != NULL;
    case S_PRE_SCORE:
        return ops->pre_score != NULL;
    case S_SCORE:
        return ops->score != NULL || ops->normalize != NULL;
    case S_RESERVE:
        return ops->reserve != NULL || ops->unreserve != NULL;
    case S_PERMIT:
        return ops->permit != NULL;
    case S_PRE_BIND:
        return ops->pre_bind != NULL;
    case S_BIND:
        return ops->bind != NULL;
    case S_POST_BIND:
        return ops->post_bind != NULL;
    default:
        return false;
    }
}

static Zube__SchedulerPluginSet *
s_point_set (const Zube__SchedulerPlugins *plugins, s_point_t point)
{
    if (!plugins)
        return NULL;
    switch (point) {
    case S_QUEUE_SORT:
        return plugins->queue_sort;
    case S_PRE_FILTER:
        return plugins->pre_filter;
    case S_FILTER:
        return plugins->filter;
    case S_POST_FILTER:
        return plugins->post_filter;
    case S_PRE_SCORE:
        return plugins->pre_score;
    case S_SCORE:
        return plugins->score;
    case S_RESERVE:
        return plugins->reserve;
    case S_PERMIT:
        return plugins->permit;
    case S_PRE_BIND:
        return plugins->pre_bind;
    case S_BIND:
        return plugins->bind;
    case S_POST_BIND:
        return plugins->post_bind;
    default:
        return NULL;
    }
}

//  Which plugins are on at which point, and the score weights, before
//  instances exist: names borrowed from the config or the defaults.
typedef struct {
    size_t count;
    const char *names[S_MAX_INSTANCES];
    int weights[S_MAX_INSTANCES];
    bool at[S_MAX_INSTANCES][S_POINTS];
    const zube_sched_ops_t *ops[S_MAX_INSTANCES];
} s_plan_t;

static int
s_plan_index (s_plan_t *plan, zs_registry_t *registry, const char *name,
              const char *field, char *error, size_t error_size)
{
    for (size_t i = 0; i < plan->count; i++)
        if (streq (plan->names[i], name))
            return (int)i;
    if (plan->count == S_MAX_INSTANCES) {
        snprintf (error, error_size, "%s: more than %d plugins", field, S_MAX_INSTANCES);
        return -1;
    }
    char why[512];
    const zube_sched_ops_t *ops = zs_registry_get (registry, name, why, sizeof why);
    if (!ops) {
        snprintf (error, error_size, "%s: %s", field, why);
        return -1;
    }
    plan->names[plan->count] = name;
    plan->ops[plan->count] = ops;
    return (int)plan->count++;
}

static bool
s_weight_ok (const Zube__SchedulerPlugin *plugin, const char *field, char *error,
             size_t error_size)
{
    if (!plugin->has_weight ||
        (plugin->weight >= 1 && plugin->weight <= ZUBE_SCHED_MAX_WEIGHT))
        return true;
    snprintf (error, error_size, "%s.weight: Invalid value: %d: must be from 1 to %d",
              field, plugin->weight, ZUBE_SCHED_MAX_WEIGHT);
    return false;
}

//  Applies one PluginSet to the plan: disabled first ("*": all), then
//  enabled. point S_POINTS is multiPoint (every point a plugin has).
static int
s_plan_apply (s_plan_t *plan, zs_registry_t *registry,
              const Zube__SchedulerPluginSet *set, s_point_t point, const char *field,
              char *error, size_t error_size)
{
    if (!set)
        return 0;
    char where[512];
    for (size_t i = 0; i < set->n_disabled; i++) {
        const char *name = set->disabled[i]->name ? set->disabled[i]->name : "";
        snprintf (where, sizeof where, "%s.disabled[%zu].name", field, i);
        if (!*name) {
            snprintf (error, error_size, "%s: Required value", where);
            return -1;
        }
        for (size_t j = 0; j < plan->count; j++)
            if (streq (name, "*") || streq (name, plan->names[j]))
                for (int p = 0; p < S_POINTS; p++)
                    if (point == S_POINTS || p == (int)point)
                        plan->at[j][p] = false;
    }
    for (size_t i = 0; i < set->n_enabled; i++) {
        const Zube__SchedulerPlugin *plugin = set->enabled[i];
        snprintf (where, sizeof where, "%s.enabled[%zu]", field, i);
        if (!plugin->name || !*plugin->name) {
            snprintf (error, error_size, "%s.name: Required value", where);
            return -1;
        }
        char name_field[600];
        snprintf (name_field, sizeof name_field, "%s.name", where);
        int index =
            s_plan_index (plan, registry, plugin->name, name_field, error, error_size);
        if (index < 0 || !s_weight_ok (plugin, where, error, error_size))
            return -1;
        const zube_sched_ops_t *ops = plan->ops[index];
        if (point != S_POINTS && !s_implements (ops, point)) {
            snprintf (error, error_size, "%s.name: plugin \"%s\" does not implement %s",
                      where, plugin->name, s_point_names[point]);
            return -1;
        }
        for (int p = 0; p < S_POINTS; p++)
            if ((point == S_POINTS || p == (int)point) &&
                s_implements (ops, (s_point_t)p))
                plan->at[index][p] = true;
        if (plugin->has_weight && (point == S_POINTS || point == S_SCORE))
            plan->weights[index] = plugin->weight;
    }
    return 0;
}

//  The pluginConfig args of name as zube_sched_args_t; -1 on bad JSON.
static int
s_args (const Zube__KubeSchedulerProfile *config, const char *name,
        const char *profile_field, zs_flat_t *flat, char *field, size_t field_size,
        const char **json_p, char *error, size_t error_size)
{
    *json_p = "{}";
    snprintf (field, field_size, "%s.pluginConfig[?].args", profile_field);
    for (size_t i = 0; config && i < config->n_plugin_config; i++) {
        const Zube__SchedulerPluginConfig *plugin_config = config->plugin_config[i];
        if (!plugin_config->name || !streq (plugin_config->name, name))
            continue;
        snprintf (field, field_size, "%s.pluginConfig[%zu].args", profile_field, i);
        if (plugin_config->args && plugin_config->args->json)
            *json_p = plugin_config->args->json;
        char why[256];
        if (zs_flatten_json (*json_p, flat, why, sizeof why) != 0) {
            snprintf (error, error_size, "%s: %s", field, why);
            return -1;
        }
        return 0;
    }
    return 0;
}

static int s_handle_init (zs_profile_t *self);
static void s_waiting_destroy (s_waiting_t **self_p);
static void s_pool_destroy (s_pool_t **self_p);

zs_profile_t *
zs_profile_new (zs_registry_t *registry, const Zube__KubeSchedulerProfile *config,
                const char *field, int percentage, char *error, size_t error_size)
{
    zs_profile_t *self = calloc (1, sizeof *self);
    if (!self || s_handle_init (self) != 0) {
        snprintf (error, error_size, "out of memory");
        free (self);
        return NULL;
    }
    self->registry = registry;
    self->parallelism = 1;
    const char *name = config && config->scheduler_name && *config->scheduler_name
                           ? config->scheduler_name
                           : ZS_DEFAULT_SCHEDULER_NAME;
    self->name = strdup (name);
    self->percentage = config && config->has_percentage_of_nodes_to_score
                           ? config->percentage_of_nodes_to_score
                           : percentage;
    self->random = 0x9e3779b97f4a7c15ULL ^ (uint64_t)zclock_usecs ();
    if (self->percentage < 0 || self->percentage > 100) {
        snprintf (
            error, error_size,
            "%s.percentageOfNodesToScore: Invalid value: %d: not in valid range [0-100]",
            field, self->percentage);
        zs_profile_destroy (&self);
        return NULL;
    }

    //  The plan: Kubernetes' defaults, then multiPoint, then each point
    s_plan_t plan = {0};
    char where[512];
    for (const zs_default_plugin_t *plugin = zs_default_plugins; plugin->name; plugin++) {
        int index = s_plan_index (&plan, registry, plugin->name, "default plugins", error,
                                  error_size);
        if (index < 0) {
            zs_profile_destroy (&self);
            return NULL;
        }
        plan.weights[index] = plugin->weight ? plugin->weight : 1;
        for (int p = 0; p < S_POINTS; p++)
            plan.at[index][p] = s_implements (plan.ops[index], (s_point_t)p);
    }
    const Zube__SchedulerPlugins *plugins = config ? config->plugins : NULL;
    snprintf (where, sizeof where, "%s.plugins.multiPoint", field);
    if (plugins && s_plan_apply (&plan, registry, plugins->multi_point, S_POINTS, where,
                                 error, error_size) != 0) {
        zs_profile_destroy (&self);
        return NULL;
    }
    for (int p = 0; p < S_POINTS; p++) {
        snprintf (where, sizeof where, "%s.plugins.%s", field, s_point_names[p]);
        if (s_plan_apply (&plan, registry, s_point_set (plugins, (s_point_t)p),
                          (s_point_t)p, where, error, error_size) != 0) {
            zs_profile_destroy (&self);
            return NULL;
        }
    }

    //  The instances, with their args
    for (size_t i = 0; i < plan.count; i++) {
        bool used = false;
        for (int p = 0; p < S_POINTS; p++)
            used |= plan.at[i][p];
        if (!used)
            continue;
        zs_flat_t flat = {0};
        char args_field[512];
        const char *json;
        if (s_args (config, plan.names[i], field, &flat, args_field, sizeof args_field,
                    &json, error, error_size) != 0) {
            zs_profile_destroy (&self);
            return NULL;
        }
        zube_sched_args_t args = {.struct_size = sizeof args,
                                  .json = json,
                                  .count = flat.count,
                                  .keys = (const char *const *)flat.keys,
                                  .values = (const char *const *)flat.values,
                                  .field = args_field};
        char why[512] = "";
        const zube_host_t *host = zs_registry_host (registry, plan.names[i]);
        void *instance = plan.ops[i]->create (host, &args, why, sizeof why);
        zs_flat_clear (&flat);
        if (!instance) {
            snprintf (error, error_size, "%s", why[0] ? why : "plugin create failed");
            if (!why[0])
                snprintf (error, error_size, "%s: plugin \"%s\" refused its args",
                          args_field, plan.names[i]);
            zs_profile_destroy (&self);
            return NULL;
        }
        s_instance_t *slot = &self->instances[self->instance_count++];
        *slot = (s_instance_t){.name = plan.ops[i]->framework_name,
                               .ops = plan.ops[i],
                               .self = instance,
                               .host = host,
                               .weight = plan.weights[i] ? plan.weights[i] : 1};
        if (ZUBE_SCHED_HAS (plan.ops[i], set_handle) && plan.ops[i]->set_handle)
            plan.ops[i]->set_handle (instance, &self->handle);
        for (int p = 0; p < S_POINTS; p++)
            if (plan.at[i][p])
                self->points[p][self->point_count[p]++] = slot;
    }
    //  A configuration that enables a plugin at an unknown point, or its
    //  own pluginConfig for a plugin it does not enable, is an error
    for (size_t i = 0; config && i < config->n_plugin_config; i++) {
        const char *plugin_name = config->plugin_config[i]->name;
        bool found = false;
        for (size_t j = 0; plugin_name && j < self->instance_count; j++)
            found |= streq (self->instances[j].name, plugin_name);
        if (!found) {
            snprintf (
                error, error_size,
                "%s.pluginConfig[%zu].name: Invalid value: \"%s\": no enabled plugin "
                "has this name",
                field, i, plugin_name ? plugin_name : "");
            zs_profile_destroy (&self);
            return NULL;
        }
    }
    if (self->point_count[S_QUEUE_SORT] != 1) {
        snprintf (error, error_size,
                  "%s.plugins.queueSort: exactly one queue sort plugin is "
                  "needed, found %zu",
                  field, self->point_count[S_QUEUE_SORT]);
        zs_profile_destroy (&self);
        return NULL;
    }
    return self;
}

void
zs_profile_destroy (zs_profile_t **self_p)
{
    zs_profile_t *self = *self_p;
    if (!self)
        return;
    //  The scheduler rejected and drained the waiting pods before; what
    //  is left (a scheduler stopping) is only forgotten
    for (s_waiting_t *waiting = self->waiting ? zhashx_first (self->waiting) : NULL;
         waiting; waiting = zhashx_next (self->waiting))
        s_waiting_destroy (&waiting);
    zhashx_destroy (&self->waiting);
    s_pool_destroy (&self->pool);
    free (self->verdicts);
    for (size_t i = 0; i < self->instance_count; i++)
        self->instances[i].ops->destroy (self->instances[i].self);
    free (self->feasible);
    free (self->scores);
    free (self->totals);
    free (self->name);
    free (self);
    *self_p = NULL;
}

const char *
zs_profile_name (zs_profile_t *self)
{
    return self->name;
}

bool
zs_profile_uses (zs_profile_t *self, const char *plugin)
{
    for (size_t i = 0; i < self->instance_count; i++)
        if (streq (self->instances[i].name, plugin))
            return true;
    return false;
}

bool
zs_profile_less (zs_profile_t *self, const zs_pod_t *a, const zs_pod_t *b)
{
    s_instance_t *sort = self->points[S_QUEUE_SORT][0];
    return sort->ops->queue_less (sort->self, &a->view, &b->view);
}

char *
zs_profile_describe (zs_profile_t *self)
{
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    if (!stream)
        return NULL;
    for (int p = 0; p < S_POINTS; p++) {
        if (!self->point_count[p])
            continue;
        fprintf (stream, "%s%s:", ftell (stream) ? "; " : "", s_point_names[p]);
        for (size_t i = 0; i < self->point_count[p]; i++) {
            fprintf (stream, "%s%s", i ? "," : " ", self->points[p][i]->name);
            if (p == S_SCORE)
                fprintf (stream, "*%d", self->points[p][i]->weight);
        }
    }
    fclose (stream);
    return text;
}

//  ---------------------------------------------------------------------
//  The cycle

const char *const zs_time_point_names[ZS_TIME_COUNT] = {
    [ZS_TIME_PRE_FILTER] = "PreFilter",
    [ZS_TIME_FILTER] = "Filter",
    [ZS_TIME_SCORE] = "Score",
    [ZS_TIME_BIND_POINTS] = "Reserve..Bind"};

void
zs_profile_timings (zs_profile_t *self, zs_timings_t *timings)
{
    *timings = self->timings;
}

static int64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

size_t
zs_nodes_to_find (size_t all, int percentage)
{
    const size_t minimum = 100;
    if (all < minimum || percentage >= 100)
        return all;
    long adaptive = percentage;
    if (adaptive <= 0) {
        adaptive = 50 - (long)all / 125;
        if (adaptive < 5)
            adaptive = 5;
    }
    size_t count = all * (size_t)adaptive / 100;
    return count < minimum ? minimum : count;
}

static void
s_diagnosis_add (zs_diagnosis_t *diagnosis, const char *reasons)
{
    //  Each line is one reason
    while (*reasons) {
        size_t length = strcspn (reasons, "\n");
        size_t i;
        for (i = 0; i < diagnosis->reason_count; i++)
            if (strlen (diagnosis->reasons[i].text) == length &&
                memcmp (diagnosis->reasons[i].text, reasons, length) == 0)
                break;
        if (i == diagnosis->reason_count && i < ZS_MAX_REASONS) {
            snprintf (diagnosis->reasons[i].text, sizeof diagnosis->reasons[i].text,
                      "%.*s", (int)length, reasons);
            diagnosis->reasons[i].nodes = 0;
            diagnosis->reason_count++;
        }
        if (i < ZS_MAX_REASONS)
            diagnosis->reasons[i].nodes++;
        reasons += length;
        if (*reasons == '\n')
            reasons++;
    }
}

static int
s_reason_compare (const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return strcmp (x, y);
}

void
zs_diagnosis_message (const zs_diagnosis_t *diagnosis, char *buf, size_t size)
{
    //  Reasons sorted as kube-scheduler sorts them: "<count> <reason>"
    char *items[ZS_MAX_REASONS];
    size_t count = 0;
    for (size_t i = 0; i < diagnosis->reason_count; i++)
        if (asprintf (&items[count], "%zu %s", diagnosis->reasons[i].nodes,
                      diagnosis->reasons[i].text) >= 0)
            count++;
    qsort (items, count, sizeof items[0], s_reason_compare);
    size_t used =
        (size_t)snprintf (buf, size, "0/%zu nodes are available", diagnosis->node_count);
    if (diagnosis->error[0] && used < size)
        used += (size_t)snprintf (buf + used, size - used, ": %s", diagnosis->error);
    for (size_t i = 0; i < count; i++) {
        if (used < size)
            used += (size_t)snprintf (buf + used, size - used, "%s%s", i ? ", " : ": ",
                                      items[i]);
        free (items[i]);
    }
    if (used < size)
        snprintf (buf + used, size - used, ".");
}

static uint64_t
s_random (zs_profile_t *self)
{
    self->random ^= self->random >> 12;
    self->random ^= self->random << 25;
    self->random ^= self->random >> 27;
    return self->random * 2685821657736338717ULL;
}

static int
s_scratch (zs_profile_t *self, size_t count)
{
    if (count <= self->scratch_size)
        return 0;
    size_t size = count * 2;
    const zube_sched_node_t **feasible =
        realloc (self->feasible, size * sizeof *feasible);
    if (feasible)
        self->feasible = feasible;
    int64_t *scores = realloc (self->scores, size * sizeof *scores);
    if (scores)
        self->scores = scores;
    int64_t *totals = realloc (self->totals, size * sizeof *totals);
    if (totals)
        self->totals = totals;
    if (!feasible || !scores || !totals)
        return -1;
    self->scratch_size = size;
    return 0;
}

static void
s_cycle_end (zs_profile_t *self)
{
    for (size_t i = 0; i < self->instance_count; i++) {
        s_instance_t *instance = &self->instances[i];
        if (instance->cycle_data && instance->ops->cycle_free)
            instance->ops->cycle_free (instance->self, instance->cycle_data);
        instance->cycle_data = NULL;
        instance->skip_filter = instance->skip_score = false;
    }
}

static void
s_unreserve_all (zs_profile_t *self, zs_pod_t *pod, const char *node)
{
    for (size_t i = self->point_count[S_RESERVE]; i-- > 0;) {
        s_instance_t *instance = self->points[S_RESERVE][i];
        if (instance->ops->unreserve)
            instance->ops->unreserve (instance->self, instance->cycle_data, &pod->view,
                                      node);
    }
}

//  The filters that run this cycle (those that did not skip).
typedef struct {
    size_t count;
    s_instance_t *instances[S_MAX_INSTANCES];
} s_filters_t;

//  The filters on one node until one refuses: SUCCESS, or the refusing
//  code with *refusing and reason set.
static zube_sched_code_t
s_filter_one (const s_filters_t *filters, zs_pod_t *pod, const zube_sched_node_t *node,
              s_instance_t **refusing, char *reason, size_t reason_size)
{
    for (size_t i = 0; i < filters->count; i++) {
        s_instance_t *instance = filters->instances[i];
        reason[0] = 0;
        zube_sched_code_t code = instance->ops->filter (
            instance->self, instance->cycle_data, &pod->view, node, reason, reason_size);
        if (code != ZUBE_SCHED_SUCCESS) {
            *refusing = instance;
            return code;
        }
    }
    return ZUBE_SCHED_SUCCESS;
}

//  A node refused: its reason counted in the diagnosis.
static void
s_filter_refused (zs_diagnosis_t *diagnosis, zube_sched_code_t code,
                  s_instance_t *instance, const char *reason)
{
    if (code == ZUBE_SCHED_ERROR)
        snprintf (diagnosis->error, sizeof diagnosis->error, "%s: %s", instance->name,
                  reason);
    else {
        s_diagnosis_add (diagnosis, reason[0] ? reason : instance->name);
        diagnosis->events |= instance->ops->events ? instance->ops->events : ~0u;
    }
}

static size_t s_filter_parallel (zs_profile_t *self, const s_filters_t *filters,
                                 zs_pod_t *pod, const zube_sched_node_t *const *nodes,
                                 size_t all, size_t start, size_t wanted,
                                 zs_diagnosis_t *diagnosis, size_t *processed_p);

//  Runs filter over nodes from the round-robin start; fills feasible.
static size_t
s_filter_nodes (zs_profile_t *self, zs_cache_t *cache, zs_pod_t *pod,
                zs_diagnosis_t *diagnosis)
{
    size_t all = zs_cache_node_count (cache);
    const zube_sched_node_t *const *nodes = zs_cache_nodes (cache);
    size_t wanted = zs_nodes_to_find (all, self->percentage);
    s_filters_t filters = {0};
    for (size_t i = 0; i < self->point_count[S_FILTER]; i++)
        if (!self->points[S_FILTER][i]->skip_filter)
            filters.instances[filters.count++] = self->points[S_FILTER][i];
    size_t start = all ? self->next_start % all : 0;
    size_t feasible = 0, processed = 0;
    if (self->parallelism > 1 && filters.count && wanted >= zs_parallel_min_nodes)
        feasible = s_filter_parallel (self, &filters, pod, nodes, all, start, wanted,
                                      diagnosis, &processed);
    else {
        char reason[512];
        for (; processed < all && feasible < wanted; processed++) {
            const zube_sched_node_t *node = nodes[(start + processed) % all];
            s_instance_t *refusing = NULL;
            zube_sched_code_t code =
                s_filter_one (&filters, pod, node, &refusing, reason, sizeof reason);
            if (code == ZUBE_SCHED_SUCCESS)
                self->feasible[feasible++] = node;
            else
                s_filter_refused (diagnosis, code, refusing, reason);
        }
    }
    self->next_start = all ? (start + processed) % all : 0;
    diagnosis->evaluated = processed;
    return feasible;
}

//  Every pre-score plugin over the feasible nodes, marking those that skip.
static void
s_pre_score_all (zs_profile_t *self, zube_sched_cycle_t *cycle, zs_pod_t *pod,
                 size_t count)
{
    for (size_t i = 0; i < self->point_count[S_PRE_SCORE]; i++) {
        s_instance_t *instance = self->points[S_PRE_SCORE][i];
        cycle->host = instance->host;
        if (instance->ops->pre_score (instance->self, cycle, &pod->view, self->feasible,
                                      count, &instance->cycle_data) == ZUBE_SCHED_SKIP)
            instance->skip_score = true;
    }
}

//  Scores the feasible nodes; answers the index of the best.
static size_t
s_score_nodes (zs_profile_t *self, zube_sched_cycle_t *cycle, zs_pod_t *pod, size_t count)
{
    memset (self->totals, 0, count * sizeof *self->totals);
    s_pre_score_all (self, cycle, pod, count);
    for (size_t p = 0; p < self->point_count[S_SCORE]; p++) {
        s_instance_t *instance = self->points[S_SCORE][p];
        if (instance->skip_score)
            continue;
        int64_t *scores = self->scores;
        if (instance->ops->score)
            for (size_t i = 0; i < count; i++) {
                scores[i] = 0;
                instance->ops->score (instance->self, instance->cycle_data, &pod->view,
                                      self->feasible[i], &scores[i]);
            }
        else
            memset (scores, 0, count * sizeof *scores);
        if (instance->ops->normalize)
            instance->ops->normalize (instance->self, instance->cycle_data, &pod->view,
                                      self->feasible, scores, count);
        for (size_t i = 0; i < count; i++)
            self->totals[i] += scores[i] * instance->weight;
    }
    //  The best; ties broken at random (reservoir sampling)
    size_t best = 0, ties = 1;
    for (size_t i = 1; i < count; i++) {
        if (self->totals[i] > self->totals[best]) {
            best = i;
            ties = 1;
        } else if (self->totals[i] == self->totals[best] && s_random (self) % ++ties == 0)
            best = i;
    }
    return best;
}

static int s_wait (zs_profile_t *self, zs_pod_t *pod, const char *node,
                   s_waiting_t **waiting_p);
static void s_waiting_insert (zs_profile_t *self, s_waiting_t *waiting);

//  Pre-bind and bind plugins for an assumed pod that permit let through.
//  0 on success (host_bind set when no bind plugin bound it), 1 refused.
static int
s_bind_rest (zs_profile_t *self, zs_pod_t *pod, const char *node_name,
             zs_result_t *result)
{
    char reason[512] = "";
    zs_diagnosis_t *diagnosis = &result->diagnosis;
    for (size_t i = 0; i < self->point_count[S_PRE_BIND]; i++) {
        s_instance_t *instance = self->points[S_PRE_BIND][i];
        if (instance->ops->pre_bind (instance->self, instance->cycle_data, &pod->view,
                                     node_name, reason,
                                     sizeof reason) != ZUBE_SCHED_SUCCESS) {
            snprintf (diagnosis->error, sizeof diagnosis->error, "%s preBind: %s",
                      instance->name, reason);
            return 1;
        }
    }
    result->host_bind = true;
    for (size_t i = 0; i < self->point_count[S_BIND]; i++) {
        s_instance_t *instance = self->points[S_BIND][i];
        zube_sched_code_t code =
            instance->ops->bind (instance->self, instance->cycle_data, &pod->view,
                                 node_name, reason, sizeof reason);
        if (code == ZUBE_SCHED_SKIP)
            continue;
        if (code != ZUBE_SCHED_SUCCESS) {
            snprintf (diagnosis->error, sizeof diagnosis->error, "%s bind: %s",
                      instance->name, reason);
            return 1;
        }
        result->host_bind = false;
        break;
    }
    return 0;
}

//  Reserve and permit plugins for an assumed pod, then (unless permit
//  made it wait) pre-bind and bind. 0 on success, 1 refused, 2 waiting
//  (*waiting_p, not yet in the map).
static int
s_bind_points (zs_profile_t *self, zs_pod_t *pod, const zube_sched_node_t *node,
               zs_result_t *result, s_waiting_t **waiting_p)
{
    char reason[512] = "";
    zs_diagnosis_t *diagnosis = &result->diagnosis;
    for (size_t i = 0; i < self->point_count[S_RESERVE]; i++) {
        s_instance_t *instance = self->points[S_RESERVE][i];
        if (instance->ops->reserve &&
            instance->ops->reserve (instance->self, instance->cycle_data, &pod->view,
                                    node, reason, sizeof reason) != ZUBE_SCHED_SUCCESS) {
            snprintf (diagnosis->error, sizeof diagnosis->error, "%s reserve: %s",
                      instance->name, reason);
            return 1;
        }
    }
    //  Every permit plugin (Kubernetes' RunPermitPlugins): the first
    //  rejection ends it; those that answer WAIT hold the pod
    s_waiting_t *waiting = NULL;
    for (size_t i = 0; i < self->point_count[S_PERMIT]; i++) {
        s_instance_t *instance = self->points[S_PERMIT][i];
        int64_t wait_ms = 0;
        reason[0] = 0;
        zube_sched_code_t code =
            instance->ops->permit (instance->self, instance->cycle_data, &pod->view,
                                   node->name, &wait_ms, reason, sizeof reason);
        if (code == ZUBE_SCHED_WAIT) {
            if (!waiting && s_wait (self, pod, node->name, &waiting) != 0) {
                snprintf (diagnosis->error, sizeof diagnosis->error, "out of memory");
                return 1;
            }
            if (wait_ms < 0)
                wait_ms = 0;
            if (wait_ms > S_MAX_WAIT_MS)
                wait_ms = S_MAX_WAIT_MS;
            int64_t now_ms = s_now_ns () / 1000000;
            for (size_t j = 0; j < waiting->plugin_count; j++)
                if (waiting->plugins[j].instance == instance) {
                    waiting->plugins[j].waiting = true;
                    waiting->plugins[j].wait_ms = wait_ms;
                    waiting->plugins[j].deadline_ms = now_ms + wait_ms;
                    waiting->pending++;
                }
            continue;
        }
        if (code != ZUBE_SCHED_SUCCESS) {
            snprintf (diagnosis->error, sizeof diagnosis->error, "%s permit: %s",
                      instance->name, reason[0] ? reason : "rejected");
            s_waiting_destroy (&waiting);
            return 1;
        }
    }
    if (waiting) {
        *waiting_p = waiting;
        return 2;
    }
    return s_bind_rest (self, pod, node->name, result);
}

//  Every pre-filter plugin, in order, marking those that skip; answers the
//  first that refuses the pod (reason says why), or NULL.
static s_instance_t *
s_pre_filter_all (zs_profile_t *self, zube_sched_cycle_t *cycle, zs_pod_t *pod,
                  char *reason, size_t reason_size)
{
    for (size_t i = 0; i < self->point_count[S_PRE_FILTER]; i++) {
        s_instance_t *instance = self->points[S_PRE_FILTER][i];
        reason[0] = 0;
        cycle->host = instance->host;
        zube_sched_code_t code =
            instance->ops->pre_filter (instance->self, cycle, &pod->view,
                                       &instance->cycle_data, reason, reason_size);
        if (code == ZUBE_SCHED_SKIP)
            instance->skip_filter = true;
        else if (code != ZUBE_SCHED_SUCCESS)
            return instance;
    }
    return NULL;
}

//  ---------------------------------------------------------------------
//  Preemption: what post-filter plugins call through the cycle

typedef struct {
    zs_profile_t *profile;
    zs_result_t *result;
} s_post_filter_t;

void
zs_result_clear (zs_result_t *result)
{
    for (size_t i = 0; i < result->victim_count; i++)
        zs_pod_destroy (&result->victims[i]);
    free (result->victims);
    result->victims = NULL;
    result->victim_count = 0;
}

static bool
s_listed (const zube_sched_pod_t *const *pods, size_t count, const zube_sched_pod_t *pod)
{
    for (size_t i = 0; i < count; i++)
        if (pods[i] == pod)
            return true;
    return false;
}

//  Takes what victim holds out of the copy of a node: requests (scalars
//  in the copy's own array), one entry per host port.
static void
s_take_out (zube_sched_node_t *node, zube_sched_scalar_t *scalars,
            zube_sched_port_t *ports, const zube_sched_pod_t *victim)
{
    node->pod_count--;
    node->requested.milli_cpu -= victim->requests.milli_cpu;
    node->requested.memory -= victim->requests.memory;
    node->requested.ephemeral_storage -= victim->requests.ephemeral_storage;
    node->score_requested.milli_cpu -= victim->score_requests.milli_cpu;
    node->score_requested.memory -= victim->score_requests.memory;
    node->score_requested.ephemeral_storage = node->requested.ephemeral_storage;
    for (size_t i = 0; i < victim->requests.scalar_count; i++)
        for (size_t j = 0; j < node->requested.scalar_count; j++)
            if (streq (scalars[j].name, victim->requests.scalars[i].name))
                scalars[j].milli -= victim->requests.scalars[i].milli;
    for (size_t i = 0; i < victim->port_count; i++)
        for (size_t j = 0; j < node->port_count; j++) {
            const zube_sched_port_t *a = &victim->ports[i], *b = &ports[j];
            if (a->port == b->port && a->protocol == b->protocol &&
                streq (a->host_ip ? a->host_ip : "", b->host_ip ? b->host_ip : "")) {
                ports[j] = ports[--node->port_count];
                break;
            }
        }
}

//  The cycle's filters on a copy of node without the removed pods.
static zube_sched_code_t
s_filter_without (const void *cycle_, const zube_sched_pod_t *pod,
                  const zube_sched_node_t *node, const zube_sched_pod_t *const *removed,
                  size_t removed_count)
{
    const zube_sched_cycle_t *cycle = cycle_;
    s_post_filter_t *post = cycle->host_data;
    zs_profile_t *self = post->profile;
    zube_sched_node_t without = *node;
    zube_sched_scalar_t *scalars =
        calloc (node->requested.scalar_count + 1, sizeof *scalars);
    zube_sched_port_t *ports = calloc (node->port_count + 1, sizeof *ports);
    const zube_sched_pod_t **assigned =
        calloc (node->assigned_count + 1, sizeof *assigned);
    zube_sched_code_t code = ZUBE_SCHED_ERROR;
    if (!scalars || !ports || !assigned)
        goto done;
    if (node->requested.scalar_count)
        memcpy (scalars, node->requested.scalars,
                node->requested.scalar_count * sizeof *scalars);
    if (node->port_count)
        memcpy (ports, node->ports, node->port_count * sizeof *ports);
    for (size_t i = 0; i < removed_count; i++)
        s_take_out (&without, scalars, ports, removed[i]);
    without.requested.scalars = scalars;
    without.score_requested.scalars = scalars;
    without.ports = ports;
    without.assigned_count = 0;
    without.assigned_with_affinity = 0;
    //  In order, so the pods with affinity stay first
    for (size_t i = 0; i < node->assigned_count; i++)
        if (!s_listed (removed, removed_count, node->assigned[i])) {
            without.assigned_with_affinity += i < node->assigned_with_affinity;
            assigned[without.assigned_count++] = node->assigned[i];
        }
    without.assigned = assigned;
    //  Not the node's state: nothing keyed by generation may match it
    without.generation = ~node->generation;
    code = ZUBE_SCHED_SUCCESS;
    char reason[512];
    for (size_t i = 0; i < self->point_count[S_FILTER] && code == ZUBE_SCHED_SUCCESS;
         i++) {
        s_instance_t *instance = self->points[S_FILTER][i];
        if (!instance->skip_filter)
            code = instance->ops->filter (instance->self, instance->cycle_data, pod,
                                          &without, reason, sizeof reason);
    }
done:
    free (scalars);
    free (ports);
    free (assigned);
    return code;
}

static int
s_preempt (const void *cycle_, const zube_sched_pod_t *victim)
{
    const zube_sched_cycle_t *cycle = cycle_;
    zs_result_t *result = ((s_post_filter_t *)cycle->host_data)->result;
    zs_pod_t **grown =
        realloc (result->victims, (result->victim_count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    result->victims = grown;
    zs_pod_t *copy = zs_pod_new (victim->pod);
    if (!copy)
        return -1;
    result->victims[result->victim_count++] = copy;
    return 0;
}

//  Post-filter plugins in order until one nominates a node; victims of
//  plugins that did not are forgotten.
static void
s_post_filter_all (zs_profile_t *self, zube_sched_cycle_t *cycle, zs_pod_t *pod,
                   zs_result_t *result)
{
    s_post_filter_t post = {.profile = self, .result = result};
    cycle->filter_without = s_filter_without;
    cycle->preempt = s_preempt;
    cycle->host_data = &post;
    for (size_t i = 0; i < self->point_count[S_POST_FILTER]; i++) {
        s_instance_t *instance = self->points[S_POST_FILTER][i];
        char nominated[256] = "";
        cycle->host = instance->host;
        zube_sched_code_t code =
            instance->ops->post_filter (instance->self, cycle, instance->cycle_data,
                                        &pod->view, nominated, sizeof nominated);
        if (code == ZUBE_SCHED_SUCCESS && nominated[0]) {
            snprintf (result->nominated, sizeof result->nominated, "%s", nominated);
            //  The pod may fit once the victims are gone
            if (result->diagnosis.events)
                result->diagnosis.events |= ZUBE_SCHED_EVENT_POD_DELETE;
            break;
        }
        zs_result_clear (result);
    }
    cycle->filter_without = NULL;
    cycle->preempt = NULL;
    cycle->host_data = NULL;
}

int
zs_profile_schedule (zs_profile_t *self, zs_cache_t *cache, zs_pod_t *pod,
                     zs_result_t *result)
{
    memset (result, 0, sizeof *result);
    zs_diagnosis_t *diagnosis = &result->diagnosis;
    size_t all = zs_cache_node_count (cache);
    diagnosis->node_count = all;
    if (s_scratch (self, all + 1) != 0)
        return -1;
    zube_sched_cycle_t cycle = {.struct_size = sizeof cycle,
                                .host = NULL,
                                .cycle = ++self->cycle,
                                .node_count = all,
                                .nodes = zs_cache_nodes (cache),
                                .profile = self->name};
    zs_cache_cycle_fill (cache, &cycle);
    char reason[512];
    int rc = 1;
    self->timings.cycles++;
    int64_t mark = s_now_ns (), now;
    s_instance_t *refusing = s_pre_filter_all (self, &cycle, pod, reason, sizeof reason);
    if (refusing) {
        //  Every node fails for this reason
        snprintf (diagnosis->error, sizeof diagnosis->error, "%.250s",
                  reason[0] ? reason : refusing->name);
        diagnosis->events |= refusing->ops->events ? refusing->ops->events : ~0u;
        goto done;
    }
    now = s_now_ns ();
    self->timings.ns[ZS_TIME_PRE_FILTER] += (uint64_t)(now - mark);
    mark = now;
    size_t feasible = s_filter_nodes (self, cache, pod, diagnosis);
    diagnosis->feasible = feasible;
    now = s_now_ns ();
    self->timings.ns[ZS_TIME_FILTER] += (uint64_t)(now - mark);
    mark = now;
    if (feasible == 0) {
        s_post_filter_all (self, &cycle, pod, result);
        goto done;
    }
    size_t best = feasible == 1 ? 0 : s_score_nodes (self, &cycle, pod, feasible);
    const zube_sched_node_t *node = self->feasible[best];
    now = s_now_ns ();
    self->timings.ns[ZS_TIME_SCORE] += (uint64_t)(now - mark);
    mark = now;
    //  Assume at once: the next cycle sees the node with this pod on it
    if (zs_cache_pod_add (cache, pod, node->name, true) != 0) {
        rc = -1;
        goto done;
    }
    node = zs_cache_node (cache, node->name);
    s_waiting_t *waiting = NULL;
    int refused = s_bind_points (self, pod, node, result, &waiting);
    self->timings.ns[ZS_TIME_BIND_POINTS] += (uint64_t)(s_now_ns () - mark);
    if (refused == 1) {
        s_unreserve_all (self, pod, node->name);
        zs_cache_pod_remove (cache, pod->key);
        goto done;
    }
    result->node = node;
    rc = 0;
    if (refused == 2) {
        //  From here plugins allow or reject it through their handle
        s_waiting_insert (self, waiting);
        rc = ZS_SCHEDULE_WAITING;
    }
done:
    s_cycle_end (self);
    return rc;
}

void
zs_profile_unreserve (zs_profile_t *self, zs_cache_t *cache, zs_pod_t *pod,
                      const char *node)
{
    s_unreserve_all (self, pod, node);
    bool assumed = false;
    const char *held = zs_cache_pod_node (cache, pod->key, &assumed);
    if (held && assumed)
        zs_cache_pod_remove (cache, pod->key);
}

void
zs_profile_post_bind (zs_profile_t *self, zs_pod_t *pod, const char *node)
{
    for (size_t i = 0; i < self->point_count[S_POST_BIND]; i++) {
        s_instance_t *instance = self->points[S_POST_BIND][i];
        instance->ops->post_bind (instance->self, NULL, &pod->view, node);
    }
}

//  ---------------------------------------------------------------------
//  Waiting at permit, and the rest of the plugins' handle

static void
s_waiting_destroy (s_waiting_t **self_p)
{
    s_waiting_t *self = *self_p;
    if (!self)
        return;
    free (self->plugins);
    free (self->key);
    free (self);
    *self_p = NULL;
}

//  A waiting entry for pod on node, one slot per permit plugin.
static int
s_wait (zs_profile_t *self, zs_pod_t *pod, const char *node, s_waiting_t **waiting_p)
{
    s_waiting_t *waiting = calloc (1, sizeof *waiting);
    size_t count = self->point_count[S_PERMIT];
    if (waiting) {
        waiting->plugins = calloc (count, sizeof *waiting->plugins);
        waiting->key = strdup (pod->key);
    }
    if (!waiting || !waiting->plugins || !waiting->key) {
        s_waiting_destroy (&waiting);
        return -1;
    }
    waiting->pod = pod;
    snprintf (waiting->node, sizeof waiting->node, "%s", node);
    waiting->plugin_count = count;
    for (size_t i = 0; i < count; i++)
        waiting->plugins[i].instance = self->points[S_PERMIT][i];
    *waiting_p = waiting;
    return 0;
}

static void
s_waiting_insert (zs_profile_t *self, s_waiting_t *waiting)
{
    //  Another wait of the same key cannot be: the pod is in flight
    s_waiting_t *old = zhashx_lookup (self->waiting, waiting->key);
    if (old) {
        zhashx_delete (self->waiting, waiting->key);
        self->resolved -= old->state != S_WAITING;
        s_waiting_destroy (&old);
    }
    zhashx_insert (self->waiting, waiting->key, waiting);
    for (size_t i = 0; i < waiting->plugin_count; i++)
        if (waiting->plugins[i].waiting &&
            waiting->plugins[i].deadline_ms < self->next_deadline_ms)
            self->next_deadline_ms = waiting->plugins[i].deadline_ms;
}

//  The waiting entry of a pod view: by namespace and name, and the same
//  uid when both have one.
static s_waiting_t *
s_waiting_find (zs_profile_t *self, const zube_sched_pod_t *pod)
{
    if (!pod || !pod->name)
        return NULL;
    char key[600];
    snprintf (key, sizeof key, "%s/%s", pod->namespace_ ? pod->namespace_ : "default",
              pod->name);
    s_waiting_t *waiting = zhashx_lookup (self->waiting, key);
    if (waiting && pod->uid && *pod->uid && waiting->pod->view.uid &&
        *waiting->pod->view.uid && !streq (pod->uid, waiting->pod->view.uid))
        return NULL;
    return waiting;
}

static void
s_waiting_reject (zs_profile_t *self, s_waiting_t *waiting, const char *message)
{
    waiting->state = S_REJECTED;
    snprintf (waiting->message, sizeof waiting->message, "%s", message);
    self->resolved++;
}

static void
s_handle_each_waiting (const zube_sched_handle_t *handle, zube_sched_waiting_fn *fn,
                       void *arg)
{
    zs_profile_t *self = handle->host_data;
    //  A copy of the list: fn may allow or reject, or ask again
    size_t count = zhashx_size (self->waiting), found = 0;
    s_waiting_t **list = count ? calloc (count, sizeof *list) : NULL;
    if (!list)
        return;
    for (s_waiting_t *waiting = zhashx_first (self->waiting); waiting && found < count;
         waiting = zhashx_next (self->waiting))
        if (waiting->state == S_WAITING)
            list[found++] = waiting;
    for (size_t i = 0; i < found; i++)
        if (!fn (&list[i]->pod->view, list[i]->node, arg))
            break;
    free (list);
}

static int
s_handle_allow (const zube_sched_handle_t *handle, const zube_sched_pod_t *pod,
                const char *plugin)
{
    zs_profile_t *self = handle->host_data;
    s_waiting_t *waiting = s_waiting_find (self, pod);
    if (!waiting || waiting->state != S_WAITING || !plugin)
        return -1;
    for (size_t i = 0; i < waiting->plugin_count; i++)
        if (waiting->plugins[i].waiting &&
            streq (waiting->plugins[i].instance->name, plugin)) {
            waiting->plugins[i].waiting = false;
            if (--waiting->pending == 0) {
                waiting->state = S_ALLOWED;
                self->resolved++;
            }
            return 0;
        }
    return -1;
}

static int
s_handle_reject (const zube_sched_handle_t *handle, const zube_sched_pod_t *pod,
                 const char *plugin, const char *reason)
{
    zs_profile_t *self = handle->host_data;
    s_waiting_t *waiting = s_waiting_find (self, pod);
    if (!waiting || waiting->state != S_WAITING)
        return -1;
    char message[768];
    snprintf (message, sizeof message, "rejected at permit by %s: %s",
              plugin ? plugin : "a plugin",
              reason && *reason ? reason : "no reason given");
    s_waiting_reject (self, waiting, message);
    return 0;
}

static void
s_handle_each_object (const zube_sched_handle_t *handle, const char *resource,
                      const char *namespace_, const char *label_key,
                      const char *label_value, zube_sched_object_fn *fn, void *arg)
{
    zs_profile_t *self = handle->host_data;
    zs_lister_t *lister = &self->registry->lister;
    if (lister->each && resource)
        lister->each (lister->arg, resource, namespace_, label_key, label_value, fn, arg);
}

static const void *
s_handle_get_object (const zube_sched_handle_t *handle, const char *resource,
                     const char *namespace_, const char *name)
{
    zs_profile_t *self = handle->host_data;
    zs_lister_t *lister = &self->registry->lister;
    if (!lister->get || !resource || !name)
        return NULL;
    return lister->get (lister->arg, resource, namespace_ ? namespace_ : "default", name);
}

static void
s_handle_activate (const zube_sched_handle_t *handle, const char *namespace_,
                   const char *name)
{
    zs_profile_t *self = handle->host_data;
    zs_lister_t *lister = &self->registry->lister;
    if (lister->activate && name)
        lister->activate (lister->arg, namespace_ ? namespace_ : "default", name);
}

static int
s_handle_init (zs_profile_t *self)
{
    self->handle = (zube_sched_handle_t){.struct_size = sizeof self->handle,
                                         .each_waiting = s_handle_each_waiting,
                                         .allow = s_handle_allow,
                                         .reject = s_handle_reject,
                                         .each_object = s_handle_each_object,
                                         .get_object = s_handle_get_object,
                                         .activate = s_handle_activate,
                                         .host_data = self};
    self->next_deadline_ms = INT64_MAX;
    self->waiting = zhashx_new ();
    return self->waiting ? 0 : -1;
}

bool
zs_profile_waiting_next (zs_profile_t *self, zs_cache_t *cache, int64_t now_ms,
                         zs_waited_t *waited)
{
    memset (waited, 0, sizeof *waited);
    if (self->resolved == 0 && now_ms < self->next_deadline_ms)
        return false;
    s_waiting_t *found = NULL;
    int64_t next = INT64_MAX;
    for (s_waiting_t *waiting = zhashx_first (self->waiting); waiting && !found;
         waiting = zhashx_next (self->waiting)) {
        if (waiting->state != S_WAITING) {
            found = waiting;
            break;
        }
        for (size_t i = 0; i < waiting->plugin_count; i++) {
            if (!waiting->plugins[i].waiting)
                continue;
            if (waiting->plugins[i].deadline_ms <= now_ms) {
                //  Kubernetes' words for it
                char message[768];
                snprintf (message, sizeof message,
                          "rejected at permit by %s: rejected due to timeout after "
                          "waiting %.3gs at plugin %s",
                          waiting->plugins[i].instance->name,
                          (double)waiting->plugins[i].wait_ms / 1000.0,
                          waiting->plugins[i].instance->name);
                s_waiting_reject (self, waiting, message);
                found = waiting;
                break;
            }
            if (waiting->plugins[i].deadline_ms < next)
                next = waiting->plugins[i].deadline_ms;
        }
    }
    if (!found) {
        self->next_deadline_ms = next;
        return false;
    }
    //  The rest is looked at again on the next call
    self->next_deadline_ms = INT64_MIN;
    zhashx_delete (self->waiting, found->key);
    self->resolved--;
    waited->pod = found->pod;
    snprintf (waited->node, sizeof waited->node, "%s", found->node);
    if (found->state == S_ALLOWED) {
        zs_result_t result;
        memset (&result, 0, sizeof result);
        if (s_bind_rest (self, found->pod, found->node, &result) == 0) {
            waited->allowed = true;
            waited->host_bind = result.host_bind;
        } else
            snprintf (waited->message, sizeof waited->message, "%s",
                      result.diagnosis.error);
    } else
        snprintf (waited->message, sizeof waited->message, "%s", found->message);
    s_waiting_destroy (&found);
    //  Unreserve may reject more waiting pods (a gang's siblings): they
    //  are handed back by the next calls
    if (!waited->allowed)
        zs_profile_unreserve (self, cache, waited->pod, waited->node);
    return true;
}

int64_t
zs_profile_waiting_due (zs_profile_t *self, int64_t now_ms)
{
    if (zhashx_size (self->waiting) == 0)
        return -1;
    if (self->resolved || now_ms >= self->next_deadline_ms)
        return 0;
    return self->next_deadline_ms - now_ms;
}

size_t
zs_profile_waiting_count (zs_profile_t *self)
{
    return zhashx_size (self->waiting);
}

bool
zs_profile_waiting_reject (zs_profile_t *self, const char *key, const char *message)
{
    bool any = false;
    for (s_waiting_t *waiting = zhashx_first (self->waiting); waiting;
         waiting = zhashx_next (self->waiting))
        if (waiting->state == S_WAITING && (!key || streq (key, waiting->key))) {
            s_waiting_reject (self, waiting, message);
            any = true;
        }
    return any;
}

//  ---------------------------------------------------------------------
//  Filtering on a pool of threads. A batch of nodes (in round-robin
//  order) is cut into slices that the pool's threads and the loop thread
//  take in turn; each node's verdict lands in its slot, and the loop
//  thread then takes the verdicts in node order until it has enough
//  feasible nodes, exactly as one thread going node by node would: the
//  same feasible nodes, the same reasons, the same round-robin start for
//  the next cycle. Nodes filtered past that point are work thrown away;
//  batches are sized to keep that small.

//  Below this many nodes to find, threads cost more than they save (see
//  docs/scheduler.md for the measurements).
size_t zs_parallel_min_nodes = 512;
#define S_SLICE_NODES 64

typedef struct _s_verdict_t {
    const zube_sched_node_t *node;
    s_instance_t *refusing;
    zube_sched_code_t code;
    char reason[512];
} s_verdict_t;

typedef void (s_slice_fn) (void *arg, size_t slice);

struct _s_pool_t {
    pthread_mutex_t lock;
    pthread_cond_t work;
    pthread_cond_t done;
    size_t thread_count;
    pthread_t *threads;
    bool stop;
    uint64_t generation;
    s_slice_fn *fn;
    void *arg;
    size_t slices;
    size_t next_slice;
    size_t finished;
};

//  Takes slices of the current job until none is left; lock held on
//  entry and exit.
static void
s_pool_take (s_pool_t *self)
{
    while (self->next_slice < self->slices) {
        size_t slice = self->next_slice++;
        pthread_mutex_unlock (&self->lock);
        self->fn (self->arg, slice);
        pthread_mutex_lock (&self->lock);
        if (++self->finished == self->slices)
            pthread_cond_signal (&self->done);
    }
}

static void *
s_pool_worker (void *arg)
{
    s_pool_t *self = arg;
    pthread_mutex_lock (&self->lock);
    uint64_t seen = self->generation;
    while (!self->stop) {
        if (self->generation == seen) {
            pthread_cond_wait (&self->work, &self->lock);
            continue;
        }
        seen = self->generation;
        s_pool_take (self);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

static void
s_pool_destroy (s_pool_t **self_p)
{
    s_pool_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->stop = true;
    pthread_cond_broadcast (&self->work);
    pthread_mutex_unlock (&self->lock);
    for (size_t i = 0; i < self->thread_count; i++)
        pthread_join (self->threads[i], NULL);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->work);
    pthread_cond_destroy (&self->done);
    free (self->threads);
    free (self);
    *self_p = NULL;
}

//  A pool of threads besides the caller's; NULL when none could start.
static s_pool_t *
s_pool_new (size_t threads)
{
    s_pool_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->threads = calloc (threads, sizeof *self->threads);
    if (!self->threads) {
        free (self);
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->work, NULL);
    pthread_cond_init (&self->done, NULL);
    for (size_t i = 0; i < threads; i++) {
        if (pthread_create (&self->threads[i], NULL, s_pool_worker, self) != 0)
            break;
        self->thread_count++;
    }
    if (!self->thread_count)
        s_pool_destroy (&self);
    return self;
}

//  Runs fn for every slice 0..slices-1 on the pool and the calling
//  thread; returns when all are done.
static void
s_pool_run (s_pool_t *self, s_slice_fn *fn, void *arg, size_t slices)
{
    pthread_mutex_lock (&self->lock);
    self->fn = fn;
    self->arg = arg;
    self->slices = slices;
    self->next_slice = 0;
    self->finished = 0;
    self->generation++;
    pthread_cond_broadcast (&self->work);
    s_pool_take (self);
    while (self->finished < self->slices)
        pthread_cond_wait (&self->done, &self->lock);
    pthread_mutex_unlock (&self->lock);
}

void
zs_profile_set_parallelism (zs_profile_t *self, int threads)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    if (cpus > 0 && threads > cpus)
        threads = (int)cpus;
    if (threads < 1)
        threads = 1;
    if (threads == self->parallelism)
        return;
    s_pool_destroy (&self->pool);
    self->parallelism = threads;
    if (threads > 1 && !(self->pool = s_pool_new ((size_t)threads - 1)))
        self->parallelism = 1;
}

int
zs_profile_parallelism (zs_profile_t *self)
{
    return self->parallelism;
}

void
zs_profile_set_seed (zs_profile_t *self, uint64_t seed)
{
    self->random = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

typedef struct {
    const s_filters_t *filters;
    zs_pod_t *pod;
    s_verdict_t *verdicts;
    size_t count;
} s_filter_job_t;

static void
s_filter_slice (void *arg, size_t slice)
{
    s_filter_job_t *job = arg;
    size_t end = (slice + 1) * S_SLICE_NODES;
    for (size_t i = slice * S_SLICE_NODES; i < end && i < job->count; i++) {
        s_verdict_t *verdict = &job->verdicts[i];
        verdict->code =
            s_filter_one (job->filters, job->pod, verdict->node, &verdict->refusing,
                          verdict->reason, sizeof verdict->reason);
    }
}

static size_t
s_filter_parallel (zs_profile_t *self, const s_filters_t *filters, zs_pod_t *pod,
                   const zube_sched_node_t *const *nodes, size_t all, size_t start,
                   size_t wanted, zs_diagnosis_t *diagnosis, size_t *processed_p)
{
    size_t feasible = 0, processed = 0;
    size_t least = S_SLICE_NODES * (size_t)self->parallelism;
    while (processed < all && feasible < wanted) {
        //  As many nodes as still wanted (all fit: no waste), at least a
        //  slice per thread
        size_t batch = wanted - feasible;
        if (batch < least)
            batch = least;
        if (batch > all - processed)
            batch = all - processed;
        if (batch > self->verdict_size) {
            s_verdict_t *grown = realloc (self->verdicts, batch * sizeof *grown);
            if (!grown)
                break;
            self->verdicts = grown;
            self->verdict_size = batch;
        }
        for (size_t i = 0; i < batch; i++)
            self->verdicts[i].node = nodes[(start + processed + i) % all];
        s_filter_job_t job = {filters, pod, self->verdicts, batch};
        s_pool_run (self->pool, s_filter_slice, &job,
                    (batch + S_SLICE_NODES - 1) / S_SLICE_NODES);
        for (size_t i = 0; i < batch && feasible < wanted; i++, processed++) {
            s_verdict_t *verdict = &self->verdicts[i];
            if (verdict->code == ZUBE_SCHED_SUCCESS)
                self->feasible[feasible++] = verdict->node;
            else
                s_filter_refused (diagnosis, verdict->code, verdict->refusing,
                                  verdict->reason);
        }
    }
    *processed_p = processed;
    return feasible;
}

//  ---------------------------------------------------------------------
//  Explain: every filter on every node, and the scores of the best nodes

typedef struct {
    size_t index;
    int64_t total;
} s_ranked_t;

static int
s_ranked_compare (const void *a, const void *b)
{
    const s_ranked_t *x = a, *y = b;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

//  Filters of one plugin over every node; feasible[] keeps who passed all.
static void
s_explain_filter (FILE *out, s_instance_t *instance, zs_cache_t *cache, zs_pod_t *pod,
                  bool *feasible)
{
    size_t all = zs_cache_node_count (cache);
    const zube_sched_node_t *const *nodes = zs_cache_nodes (cache);
    zs_diagnosis_t diagnosis = {0};
    size_t rejected = 0;
    char reason[512];
    for (size_t i = 0; i < all; i++) {
        reason[0] = 0;
        if (instance->ops->filter (instance->self, instance->cycle_data, &pod->view,
                                   nodes[i], reason, sizeof reason) == ZUBE_SCHED_SUCCESS)
            continue;
        rejected++;
        feasible[i] = false;
        s_diagnosis_add (&diagnosis, reason[0] ? reason : instance->name);
    }
    fprintf (out, "  %-32s rejected %zu", instance->name, rejected);
    for (size_t i = 0; i < diagnosis.reason_count; i++)
        fprintf (out, "%s%zu %s", i ? ", " : ": ", diagnosis.reasons[i].nodes,
                 diagnosis.reasons[i].text);
    fprintf (out, "\n");
}

//  A pod waiting at permit: where, and for which plugins.
static void
s_explain_waiting (FILE *out, zs_profile_t *self, zs_pod_t *pod)
{
    s_waiting_t *waiting = s_waiting_find (self, &pod->view);
    if (!waiting)
        return;
    fprintf (out, "Waiting at permit, assumed on %s", waiting->node);
    if (waiting->state != S_WAITING)
        fprintf (out, ", %s", waiting->state == S_ALLOWED ? "allowed" : "rejected");
    int64_t now_ms = s_now_ns () / 1000000;
    for (size_t i = 0; i < waiting->plugin_count; i++)
        if (waiting->plugins[i].waiting)
            fprintf (out, ", for %s (%.1fs left)", waiting->plugins[i].instance->name,
                     (double)(waiting->plugins[i].deadline_ms - now_ms) / 1000.0);
    fprintf (out, "\n");
}

char *
zs_profile_explain (zs_profile_t *self, zs_cache_t *cache, zs_pod_t *pod, size_t top)
{
    size_t all = zs_cache_node_count (cache);
    const zube_sched_node_t *const *nodes = zs_cache_nodes (cache);
    if (s_scratch (self, all + 1) != 0)
        return NULL;
    bool *feasible = calloc (all + 1, sizeof *feasible);
    int64_t *scores =
        calloc ((all + 1) * (self->point_count[S_SCORE] + 1), sizeof *scores);
    s_ranked_t *ranked = calloc (all + 1, sizeof *ranked);
    char *text = NULL;
    size_t size = 0;
    FILE *out = feasible && scores && ranked ? open_memstream (&text, &size) : NULL;
    if (!out) {
        free (feasible), free (scores), free (ranked);
        return NULL;
    }
    for (size_t i = 0; i < all; i++)
        feasible[i] = true;
    zube_sched_cycle_t cycle = {.struct_size = sizeof cycle,
                                .cycle = ++self->cycle,
                                .node_count = all,
                                .nodes = nodes,
                                .profile = self->name};
    zs_cache_cycle_fill (cache, &cycle);
    fprintf (out, "Pod %s, profile %s, %zu nodes\n", pod->key, self->name, all);
    s_explain_waiting (out, self, pod);
    fprintf (out, "Filters (every node; a node counts once per plugin):\n");
    char reason[512];
    s_instance_t *refusing = s_pre_filter_all (self, &cycle, pod, reason, sizeof reason);
    bool refused = refusing != NULL;
    if (refusing)
        fprintf (out, "  %-32s preFilter refused the pod: %s\n", refusing->name,
                 reason[0] ? reason : "(no reason given)");
    size_t count = 0;
    if (!refused) {
        for (size_t i = 0; i < self->point_count[S_FILTER]; i++) {
            s_instance_t *instance = self->points[S_FILTER][i];
            if (instance->skip_filter)
                fprintf (out, "  %-32s nothing to check for this pod\n", instance->name);
            else
                s_explain_filter (out, instance, cache, pod, feasible);
        }
        for (size_t i = 0; i < all; i++)
            if (feasible[i])
                self->feasible[count++] = nodes[i];
    }
    fprintf (out, "Feasible: %zu of %zu nodes\n", count, all);
    if (count) {
        //  Each score plugin's normalized scores, kept apart
        size_t plugins = self->point_count[S_SCORE];
        s_pre_score_all (self, &cycle, pod, count);
        for (size_t p = 0; p < plugins; p++) {
            s_instance_t *instance = self->points[S_SCORE][p];
            int64_t *column = scores + p * (all + 1);
            if (instance->skip_score)
                continue;
            for (size_t i = 0; i < count && instance->ops->score; i++)
                instance->ops->score (instance->self, instance->cycle_data, &pod->view,
                                      self->feasible[i], &column[i]);
            if (instance->ops->normalize)
                instance->ops->normalize (instance->self, instance->cycle_data,
                                          &pod->view, self->feasible, column, count);
        }
        for (size_t i = 0; i < count; i++) {
            ranked[i].index = i;
            for (size_t p = 0; p < plugins; p++)
                ranked[i].total +=
                    scores[p * (all + 1) + i] * self->points[S_SCORE][p]->weight;
        }
        qsort (ranked, count, sizeof *ranked, s_ranked_compare);
        fprintf (out,
                 "Scores of the best %zu (each plugin's score, 0-100, x its weight):\n",
                 count < top ? count : top);
        fprintf (out, "  %-24s %8s", "NODE", "TOTAL");
        for (size_t p = 0; p < plugins; p++)
            fprintf (out, "  %s*%d%s", self->points[S_SCORE][p]->name,
                     self->points[S_SCORE][p]->weight,
                     self->points[S_SCORE][p]->skip_score ? "(skipped)" : "");
        fprintf (out, "\n");
        for (size_t r = 0; r < count && r < top; r++) {
            size_t i = ranked[r].index;
            fprintf (out, "  %-24s %8" PRId64, self->feasible[i]->name, ranked[r].total);
            for (size_t p = 0; p < plugins; p++)
                fprintf (out, "  %*" PRId64,
                         (int)strlen (self->points[S_SCORE][p]->name) + 2,
                         scores[p * (all + 1) + i]);
            fprintf (out, "\n");
        }
    }
    s_cycle_end (self);
    fclose (out);
    free (feasible);
    free (scores);
    free (ranked);
    return text;
}
