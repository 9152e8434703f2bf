/*  zubectl rollout status|history|undo|restart deployment/NAME - kubectl's
    rollout commands for Deployments (docs/controllers.md).

    status watches the Deployment until its rollout is complete, printing
    kubectl's "Waiting for ..." lines as they change; history lists the
    revisions of its ReplicaSets (deployment.kubernetes.io/revision) with
    their kubernetes.io/change-cause; undo writes the pod template of an
    earlier revision (the previous one by default) back into the
    Deployment, without the pod-template-hash label, as kubectl's
    rollbacker does (apps/v1 has no rollback subresource); restart sets
    the template annotation kubectl.kubernetes.io/restartedAt, which makes
    a new ReplicaSet roll out. */
#define _GNU_SOURCE
#include "apps.pb-c.h"
#include "zubectl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_REVISION "deployment.kubernetes.io/revision"
#define S_HASH "pod-template-hash"
#define S_CHANGE_CAUSE "kubernetes.io/change-cause"
#define S_RESTARTED_AT "kubectl.kubernetes.io/restartedAt"

//  The Deployment's name from deployment/NAME or deployment NAME; NULL
//  after printing why.
static const char *
s_target (char **args, int count)
{
    char type[128];
    const char *name = NULL;
    if (count == 1 && strchr (args[0], '/')) {
        const char *slash = strchr (args[0], '/');
        snprintf (type, sizeof type, "%.*s", (int)(slash - args[0]), args[0]);
        name = slash + 1;
    } else if (count == 2) {
        snprintf (type, sizeof type, "%s", args[0]);
        name = args[1];
    } else {
        zube_cli_error ("required resource not specified (deployment/NAME)");
        return NULL;
    }
    const zube_kind_t *kind = zubectl_kind (type);
    if (!kind)
        return NULL;
    if (strcmp (kind->resource, "deployments") != 0) {
        zube_cli_error ("no rollout support for %s: only deployments", kind->resource);
        return NULL;
    }
    if (!*name) {
        zube_cli_error ("a resource name is required (deployment/NAME)");
        return NULL;
    }
    return name;
}

static Zube__Deployment *
s_get (zubectl_t *self, const char *name)
{
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return NULL;
    zube_api_error_t error;
    ProtobufCMessage *object = NULL;
    if (zube_api_get (api, "deployments", zubectl_namespace (self), name, &object,
                      &error) != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return NULL;
    }
    return (Zube__Deployment *)object;
}

static const char *
s_annotation (const Zube__ObjectMeta *meta, const char *key)
{
    for (size_t i = 0; meta && i < meta->n_annotations; i++)
        if (strcmp (meta->annotations[i]->key, key) == 0)
            return meta->annotations[i]->value;
    return NULL;
}

static long
s_revision (const Zube__ObjectMeta *meta)
{
    const char *text = s_annotation (meta, S_REVISION);
    return text ? strtol (text, NULL, 10) : 0;
}

//  ---------------------------------------------------------------------
//  status

//  kubectl's DeploymentStatusViewer: the line to print, done when the
//  rollout is complete; -1 when it exceeded its progress deadline.
static int
s_status_line (const Zube__Deployment *d, char *line, size_t size)
{
    const Zube__DeploymentStatus *status = d->status;
    const char *name = d->metadata->name;
    int64_t generation = d->metadata->generation;
    if (!status || generation > status->observed_generation) {
        snprintf (line, size, "Waiting for deployment spec update to be observed...\n");
        return 0;
    }
    for (size_t i = 0; i < status->n_conditions; i++)
        if (strcmp (status->conditions[i]->type, "Progressing") == 0 &&
            status->conditions[i]->reason &&
            strcmp (status->conditions[i]->reason, "ProgressDeadlineExceeded") == 0) {
            snprintf (line, size, "deployment \"%s\" exceeded its progress deadline",
                      name);
            return -1;
        }
    int32_t replicas = d->spec && d->spec->has_replicas ? d->spec->replicas : 1;
    if (status->updated_replicas < replicas)
        snprintf (line, size,
                  "Waiting for deployment \"%s\" rollout to finish: %d out of %d new "
                  "replicas have been updated...\n",
                  name, status->updated_replicas, replicas);
    else if (status->replicas > status->updated_replicas)
        snprintf (line, size,
                  "Waiting for deployment \"%s\" rollout to finish: %d old replicas are "
                  "pending termination...\n",
                  name, status->replicas - status->updated_replicas);
    else if (status->available_replicas < status->updated_replicas)
        snprintf (line, size,
                  "Waiting for deployment \"%s\" rollout to finish: %d of %d updated "
                  "replicas are available...\n",
                  name, status->available_replicas, status->updated_replicas);
    else {
        snprintf (line, size, "deployment \"%s\" successfully rolled out\n", name);
        return 1;
    }
    return 0;
}

static int
s_rollout_status (zubectl_t *self, const zubectl_command_t *command, int argc,
                  char **argv)
{
    bool watch = true;
    long timeout_s = 0;
    zube_cli_flag_t flags[] = {
        {.name = "watch",
         .short_name = 'w',
         .type = ZUBE_CLI_BOOL,
         .value = &watch,
         .help =
             "Watch the rollout until it is done (default true; --watch=false: once)"},
        {.name = "timeout",
         .type = ZUBE_CLI_INT,
         .value = &timeout_s,
         .value_name = "SECONDS",
         .help = "Give up after this many seconds (0: never)"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    const char *name = s_target (args, count);
    if (!name)
        return 1;
    char last[512] = "";
    time_t until = timeout_s > 0 ? time (NULL) + timeout_s : 0;
    while (true) {
        Zube__Deployment *d = s_get (self, name);
        if (!d)
            return 1;
        char line[512];
        int done = s_status_line (d, line, sizeof line);
        zube__deployment__free_unpacked (d, NULL);
        if (done < 0) {
            zube_cli_error ("%s", line);
            return 1;
        }
        if (strcmp (line, last) != 0) {
            fputs (line, stdout);
            fflush (stdout);
            snprintf (last, sizeof last, "%s", line);
        }
        if (done || !watch)
            return 0;
        if (until && time (NULL) >= until) {
            zube_cli_error ("timed out waiting for the condition");
            return 1;
        }
        zube_bus_poll (zubectl_connect (self), 200);
    }
}

//  ---------------------------------------------------------------------
//  history and undo: the ReplicaSets the Deployment controls

typedef struct {
    Zube__ReplicaSet **items;
    size_t count;
    zube_api_list_t *list;
} s_history_t;

static int
s_by_revision (const void *a, const void *b)
{
    long x = s_revision ((*(Zube__ReplicaSet *const *)a)->metadata);
    long y = s_revision ((*(Zube__ReplicaSet *const *)b)->metadata);
    return x < y ? -1 : x > y;
}

static int
s_history (zubectl_t *self, const Zube__Deployment *d, s_history_t *history)
{
    zube_api_t *api = zubectl_api (self);
    zube_api_error_t error;
    *history = (s_history_t){0};
    if (zube_api_list (api, "replicasets",
                       &(zube_api_list_options_t){.namespace = zubectl_namespace (self)},
                       &history->list, &error) != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return -1;
    }
    history->items = calloc (history->list->count + 1, sizeof *history->items);
    if (!history->items)
        return -1;
    for (size_t i = 0; i < history->list->count; i++) {
        Zube__ReplicaSet *rs = (Zube__ReplicaSet *)history->list->items[i];
        for (size_t r = 0; rs->metadata && r < rs->metadata->n_owner_references; r++) {
            const Zube__OwnerReference *ref = rs->metadata->owner_references[r];
            if (ref->controller && ref->uid && strcmp (ref->uid, d->metadata->uid) == 0) {
                history->items[history->count++] = rs;
                break;
            }
        }
    }
    qsort (history->items, history->count, sizeof *history->items, s_by_revision);
    return 0;
}

static void
s_history_clear (s_history_t *history)
{
    free (history->items);
    zube_api_list_destroy (&history->list);
}

//  What history and undo both begin with: flags, the Deployment, its
//  ReplicaSets by revision. 0, or the exit code to return (help: 0 too,
//  with *d_p NULL).
static int
s_open (zubectl_t *self, const zubectl_command_t *command, const zube_cli_flag_t *flags,
        int argc, char **argv, const char **name_p, Zube__Deployment **d_p,
        s_history_t *history)
{
    *d_p = NULL;
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    *name_p = s_target (args, count);
    *d_p = *name_p ? s_get (self, *name_p) : NULL;
    if (!*d_p)
        return 1;
    if (s_history (self, *d_p, history) != 0) {
        zube__deployment__free_unpacked (*d_p, NULL);
        *d_p = NULL;
        return 1;
    }
    return 0;
}

static Zube__ReplicaSet *
s_find_revision (const s_history_t *history, long revision)
{
    for (size_t i = 0; i < history->count; i++)
        if (s_revision (history->items[i]->metadata) == revision)
            return history->items[i];
    return NULL;
}

static int
s_rollout_history (zubectl_t *self, const zubectl_command_t *command, int argc,
                   char **argv)
{
    long revision = 0;
    zube_cli_flag_t flags[] = {{.name = "revision",
                                .type = ZUBE_CLI_INT,
                                .value = &revision,
                                .value_name = "N",
                                .help = "Show the pod template of revision N"},
                               {0}};
    const char *name = NULL;
    Zube__Deployment *d = NULL;
    s_history_t history;
    int rc = s_open (self, command, flags, argc, argv, &name, &d, &history);
    if (!d)
        return rc;
    if (revision > 0) {
        Zube__ReplicaSet *found = s_find_revision (&history, revision);
        if (!found) {
            zube_cli_error ("unable to find the specified revision");
            rc = 1;
        } else {
            printf ("deployment.apps/%s with revision #%ld\nPod Template:\n", name,
                    revision);
            rc = zubectl_print_message (self, &found->spec->template_->base) == 0 ? 0 : 1;
        }
    } else {
        printf ("deployment.apps/%s \nREVISION  CHANGE-CAUSE\n", name);
        for (size_t i = 0; i < history.count; i++) {
            const char *cause = s_annotation (history.items[i]->metadata, S_CHANGE_CAUSE);
            printf ("%-9ld %s\n", s_revision (history.items[i]->metadata),
                    cause ? cause : "<none>");
        }
        printf ("\n");
    }
    s_history_clear (&history);
    zube__deployment__free_unpacked (d, NULL);
    return rc;
}

//  The template without pod-template-hash, packed, for comparing.
static bool
s_same_template (const Zube__PodTemplateSpec *rs_template,
                 const Zube__PodTemplateSpec *current)
{
    Zube__PodTemplateSpec copy = *rs_template;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    Zube__ObjectMeta__LabelsEntry *labels[64];
    if (rs_template->metadata) {
        meta = *rs_template->metadata;
        meta.n_labels = 0;
        meta.labels = labels;
        for (size_t i = 0; i < rs_template->metadata->n_labels && meta.n_labels < 64; i++)
            if (strcmp (rs_template->metadata->labels[i]->key, S_HASH) != 0)
                labels[meta.n_labels++] = rs_template->metadata->labels[i];
        copy.metadata = &meta;
    }
    return zubectl_objects_equal (&copy.base, &current->base);
}

static int
s_rollout_undo (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    long to_revision = 0;
    zube_cli_flag_t flags[] = {
        {.name = "to-revision",
         .type = ZUBE_CLI_INT,
         .value = &to_revision,
         .value_name = "N",
         .help = "The revision to roll back to (0: the previous one)"},
        {0}};
    const char *name = NULL;
    Zube__Deployment *d = NULL;
    s_history_t history;
    int rc = s_open (self, command, flags, argc, argv, &name, &d, &history);
    if (!d)
        return rc;
    Zube__ReplicaSet *target = to_revision > 0 ? s_find_revision (&history, to_revision)
                               : history.count >= 2 ? history.items[history.count - 2]
                                                    : NULL;
    if (!target) {
        if (to_revision > 0)
            zube_cli_error ("unable to find specified revision %ld in history",
                            to_revision);
        else
            zube_cli_error ("no rollout history found for deployment \"%s\"", name);
        rc = 1;
    } else if (s_same_template (target->spec->template_, d->spec->template_)) {
        printf ("deployment.apps/%s skipped rollback (current template already matches "
                "revision %ld)\n",
                name, s_revision (target->metadata));
    } else {
        //  The template of that revision, without the hash label
        Zube__PodTemplateSpec *template_ = target->spec->template_;
        Zube__ObjectMeta *tmeta = template_->metadata;
        Zube__ObjectMeta__LabelsEntry **saved = tmeta ? tmeta->labels : NULL;
        size_t saved_count = tmeta ? tmeta->n_labels : 0;
        Zube__ObjectMeta__LabelsEntry **kept = calloc (saved_count + 1, sizeof *kept);
        if (tmeta && kept) {
            size_t n = 0;
            for (size_t i = 0; i < saved_count; i++)
                if (strcmp (saved[i]->key, S_HASH) != 0)
                    kept[n++] = saved[i];
            tmeta->labels = kept;
            tmeta->n_labels = n;
        }
        Zube__PodTemplateSpec *current = d->spec->template_;
        d->spec->template_ = template_;
        zube_api_error_t error;
        zube_status_t status =
            zube_api_update (zubectl_api (self), "deployments", zubectl_namespace (self),
                             &d->base, NULL, false, NULL, &error);
        d->spec->template_ = current;
        if (tmeta) {
            tmeta->labels = saved;
            tmeta->n_labels = saved_count;
        }
        free (kept);
        if (status != ZUBE_OK) {
            zubectl_print_api_error (self, &error, NULL);
            rc = 1;
        } else
            printf ("deployment.apps/%s rolled back\n", name);
    }
    s_history_clear (&history);
    zube__deployment__free_unpacked (d, NULL);
    fflush (stdout);
    return rc;
}

static int
s_rollout_restart (zubectl_t *self, const zubectl_command_t *command, int argc,
                   char **argv)
{
    char *args[argc + 1];
    zube_cli_flag_t flags[] = {{0}};
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    const char *name = s_target (args, count);
    zube_api_t *api = name ? zubectl_api (self) : NULL;
    if (!api)
        return 1;
    char stamp[40], patch[256];
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf (patch, sizeof patch,
              "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"" S_RESTARTED_AT
              "\":\"%s\"}}}}}",
              stamp);
    zube_api_error_t error;
    if (zube_api_patch (api, "deployments", zubectl_namespace (self), name, NULL, patch,
                        NULL, false, NULL, &error) != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return 1;
    }
    printf ("deployment.apps/%s restarted\n", name);
    fflush (stdout);
    return 0;
}

const zubectl_command_t zubectl_rollout_commands[] = {
    {.name = "history",
     .summary = "View the rollout history of a deployment",
     .usage = "rollout history deployment/NAME [--revision=N] [flags]",
     .description =
         "Lists the revisions of the deployment's ReplicaSets with their "
         "kubernetes.io/change-cause; --revision shows the pod template of one.",
     .examples = "  zubectl rollout history deployment/web\n"
                 "  zubectl rollout history deployment/web --revision=2",
     .outputs = "yaml,json",
     .handler = s_rollout_history},
    {.name = "restart",
     .summary = "Restart a deployment: roll out new pods",
     .usage = "rollout restart deployment/NAME [flags]",
     .description =
         "Sets the pod template annotation kubectl.kubernetes.io/restartedAt to "
         "now, so the deployment rolls out a new ReplicaSet.",
     .examples = "  zubectl rollout restart deployment/web",
     .handler = s_rollout_restart},
    {.name = "status",
     .summary = "Show the status of a rollout, until it is done",
     .usage =
         "rollout status deployment/NAME [--watch=false] [--timeout=SECONDS] [flags]",
     .description =
         "Prints kubectl's progress lines until every replica is updated and "
         "available; fails when the deployment exceeded its progress deadline.",
     .examples = "  zubectl rollout status deployment/web",
     .handler = s_rollout_status},
    {.name = "undo",
     .summary = "Roll back to a previous revision",
     .usage = "rollout undo deployment/NAME [--to-revision=N] [flags]",
     .description =
         "Writes the pod template of the previous revision (or of N) back into "
         "the deployment, which then rolls it out as a new revision.",
     .examples = "  zubectl rollout undo deployment/web\n"
                 "  zubectl rollout undo deployment/web --to-revision=1",
     .handler = s_rollout_undo},
    {0}};
