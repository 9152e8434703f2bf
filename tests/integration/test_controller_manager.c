/*  test_controller_manager - zube-controller-manager against a real
    broker and apiserver: the serviceaccount controller makes the default
    ServiceAccount of every namespace and makes it again when deleted;
    `zubectl plugin list|unload|load|swap --service controllers` drive the
    running controllers (a swapped controller resyncs from the cache); a
    controller the --controllers list names but that does not exist stops
    the start with the name in the error; '-name' turns one off. */
#include "../zt_ctrl.h"

static zt_cluster_t s_cluster;
static pid_t s_manager;

static void
s_create_namespace (const char *name)
{
    char yaml[256];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", name);
    zt_cluster_create_yaml (&s_cluster, "namespaces", NULL, &zube__namespace__descriptor,
                            yaml, NULL);
}

static void
test_default_serviceaccount (void)
{
    //  The namespaces that existed before the controller-manager started
    ZT_ASSERT_MSG (zt_ctrl_wait_exists (&s_cluster, "serviceaccounts", "default",
                                        "default", true, 20000),
                   "namespace default got no default ServiceAccount");
    ZT_ASSERT (zt_ctrl_wait_exists (&s_cluster, "serviceaccounts", "kube-system",
                                    "default", true, 20000));
    s_create_namespace ("team-a");
    ZT_ASSERT_MSG (zt_ctrl_wait_exists (&s_cluster, "serviceaccounts", "team-a",
                                        "default", true, 20000),
                   "a new namespace got no default ServiceAccount");
}

static void
test_recreated_when_deleted (void)
{
    ZT_ASSERT (zt_ctrl_wait_exists (&s_cluster, "serviceaccounts", "team-a", "default",
                                    true, 20000));
    ProtobufCMessage *before =
        zt_ctrl_get (&s_cluster, "serviceaccounts", "team-a", "default");
    ZT_ASSERT (before);
    char uid[128];
    snprintf (uid, sizeof uid, "%s", ((Zube__ServiceAccount *)before)->metadata->uid);
    protobuf_c_message_free_unpacked (before, NULL);
    zube_api_error_t error;
    ZT_ASSERT_INT_EQ (zube_api_delete (s_cluster.api, "serviceaccounts", "team-a",
                                       "default", NULL, NULL, &error),
                      ZUBE_OK);
    //  Back, as a new object
    bool replaced = false;
    int64_t until = zt_now_ms () + 20000;
    while (!replaced && zt_now_ms () < until) {
        ProtobufCMessage *after =
            zt_ctrl_get (&s_cluster, "serviceaccounts", "team-a", "default");
        replaced = after && strcmp (((Zube__ServiceAccount *)after)->metadata->uid, uid);
        if (after)
            protobuf_c_message_free_unpacked (after, NULL);
        zube_bus_poll (s_cluster.bus, 50);
    }
    ZT_ASSERT_MSG (replaced, "the deleted default ServiceAccount was not made again");
}

static void
test_plugin_commands (void)
{
    zt_run_t list =
        zt_ctrl_zubectl (&s_cluster, "plugin", "list", "--service", "controllers", NULL);
    ZT_ASSERT_EXIT (list, 0);
    ZT_ASSERT_STR_CONTAINS (list.out, "serviceaccount");
    zt_run_free (&list);

    zt_run_t unload = zt_ctrl_zubectl (&s_cluster, "plugin", "unload", "serviceaccount",
                                       "--service", "controllers", NULL);
    ZT_ASSERT_EXIT (unload, 0);
    zt_run_free (&unload);
    list =
        zt_ctrl_zubectl (&s_cluster, "plugin", "list", "--service", "controllers", NULL);
    ZT_ASSERT_EXIT (list, 0);
    ZT_ASSERT_MSG (!strstr (list.out, "serviceaccount"), "still listed:\n%s", list.out);
    zt_run_free (&list);
    //  Not running: a namespace made now gets nothing
    s_create_namespace ("team-b");
    ZT_ASSERT (!zt_ctrl_wait_exists (&s_cluster, "serviceaccounts", "team-b", "default",
                                     true, 1500));

    char file[700];
    snprintf (file, sizeof file, "%s/plugins/.libs/serviceaccount.so",
              getenv ("ZUBE_BUILDDIR") ? getenv ("ZUBE_BUILDDIR") : "..");
    zt_run_t load = zt_ctrl_zubectl (&s_cluster, "plugin", "load", file, "--service",
                                     "controllers", NULL);
    ZT_ASSERT_EXIT (load, 0);
    zt_run_free (&load);
    //  Loaded again: it syncs every namespace from the cache
    ZT_ASSERT_MSG (zt_ctrl_wait_exists (&s_cluster, "serviceaccounts", "team-b",
                                        "default", true, 20000),
                   "the loaded controller did not sync the namespace made meanwhile");
    //  Loading a second copy is refused with the reason
    load = zt_ctrl_zubectl (&s_cluster, "plugin", "load", file, "--service",
                            "controllers", NULL);
    ZT_ASSERT_MSG (load.status != 0, "a second copy was loaded");
    ZT_ASSERT_STR_CONTAINS (load.err, "already running");
    zt_run_free (&load);

    //  Swap: the new instance resyncs; delete its account meanwhile
    zube_api_delete (s_cluster.api, "serviceaccounts", "team-b", "default", NULL, NULL,
                     NULL);
    zt_run_t swap = zt_ctrl_zubectl (&s_cluster, "plugin", "swap", file, "--service",
                                     "controllers", NULL);
    ZT_ASSERT_EXIT (swap, 0);
    zt_run_free (&swap);
    ZT_ASSERT (zt_ctrl_wait_exists (&s_cluster, "serviceaccounts", "team-b", "default",
                                    true, 20000));
    //  A file that is not a controller plugin: refused, the old one stays
    char wrong[700];
    snprintf (wrong, sizeof wrong, "%s/plugins/.libs/nodename.so",
              getenv ("ZUBE_BUILDDIR") ? getenv ("ZUBE_BUILDDIR") : "..");
    swap = zt_ctrl_zubectl (&s_cluster, "plugin", "swap", wrong, "--service",
                            "controllers", NULL);
    ZT_ASSERT_MSG (swap.status != 0, "a scheduler plugin was swapped in");
    ZT_ASSERT_STR_CONTAINS (swap.err, "kind");
    zt_run_free (&swap);
    list =
        zt_ctrl_zubectl (&s_cluster, "plugin", "list", "--service", "controllers", NULL);
    ZT_ASSERT_STR_CONTAINS (list.out, "serviceaccount");
    zt_run_free (&list);
}

//  The example of examples/controller/: loaded into the running manager,
//  with the settings given at its start; every namespace gets the label.
static void
test_example_plugin (void)
{
    char file[700];
    snprintf (file, sizeof file, "%s/tests/plugins/.libs/nslabel.so",
              getenv ("ZUBE_BUILDDIR") ? getenv ("ZUBE_BUILDDIR") : "..");
    zt_run_t load = zt_ctrl_zubectl (&s_cluster, "plugin", "load", file, "--service",
                                     "controllers", NULL);
    ZT_ASSERT_EXIT (load, 0);
    zt_run_free (&load);
    bool labelled = false;
    int64_t until = zt_now_ms () + 20000;
    while (!labelled && zt_now_ms () < until) {
        Zube__Namespace *ns =
            (Zube__Namespace *)zt_ctrl_get (&s_cluster, "namespaces", NULL, "team-a");
        for (size_t i = 0; ns && i < ns->metadata->n_labels; i++)
            labelled |= !strcmp (ns->metadata->labels[i]->key, "team") &&
                        !strcmp (ns->metadata->labels[i]->value, "blue");
        if (ns)
            protobuf_c_message_free_unpacked (&ns->base, NULL);
        zube_bus_poll (s_cluster.bus, 100);
    }
    ZT_ASSERT_MSG (labelled, "namespace team-a did not get team=blue");
    //  Its Event (written without waiting: it may come a little later)
    bool found = false;
    until = zt_now_ms () + 10000;
    while (!found && zt_now_ms () < until) {
        zube_api_list_t *events = NULL;
        //  A cluster-scoped object's Events are in "default", as Kubernetes'
        ZT_ASSERT_INT_EQ (
            zube_api_list (s_cluster.api, "events",
                           &(zube_api_list_options_t){.namespace = "default"}, &events,
                           NULL),
            ZUBE_OK);
        for (size_t i = 0; i < events->count; i++) {
            Zube__Event *event = (Zube__Event *)events->items[i];
            found |= event->reason && !strcmp (event->reason, "Labeled") &&
                     event->source && event->source->component &&
                     !strcmp (event->source->component, "nslabel-controller") &&
                     event->involved_object && event->involved_object->kind &&
                     !strcmp (event->involved_object->kind, "Namespace") &&
                     event->involved_object->name &&
                     !strcmp (event->involved_object->name, "team-a");
        }
        zube_api_list_destroy (&events);
        if (!found)
            zube_bus_poll (s_cluster.bus, 100);
    }
    ZT_ASSERT_MSG (found, "no Labeled event about namespace team-a");
    zt_run_t unload = zt_ctrl_zubectl (&s_cluster, "plugin", "unload", "nslabel",
                                       "--service", "controllers", NULL);
    ZT_ASSERT_EXIT (unload, 0);
    zt_run_free (&unload);
}

static void
test_controllers_flag (void)
{
    char *argv[] = {(char *)zt_program ("zube-controller-manager"),
                    "--bus",
                    s_cluster.endpoint,
                    "--insecure",
                    "--controllers",
                    "*,nosuch",
                    NULL};
    zt_run_t result = zt_run_capture (20000, argv);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "\"nosuch\" not found");
    zt_run_free (&result);
    char *bad[] = {(char *)zt_program ("zube-controller-manager"), "--insecure",
                   "--leader-elect-retry-period", "soon", NULL};
    result = zt_run_capture (20000, bad);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "--leader-elect-retry-period");
    zt_run_free (&result);
}

int
main (void)
{
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.tag = "ctrlmgr"})) {
        printf ("not ok 1 - setup\n# %s\n1..1\n", s_cluster.why);
        zt_cluster_stop (&s_cluster, true);
        return 1;
    }
    const char *flags[] = {"--controllers",
                           "serviceaccount",
                           "--controller-arg",
                           "nslabel.label=team",
                           "--controller-arg",
                           "nslabel.value=blue",
                           NULL};
    s_manager = zt_ctrl_start (&s_cluster, "controller-manager.log", flags);
    if (!zt_ctrl_wait_ready (&s_cluster, 30000)) {
        printf (
            "not ok 1 - setup\n# the controller-manager did not become ready\n1..1\n");
        zt_cluster_log_tail (&s_cluster, "controller-manager.log", 30);
        zt_stop (s_manager, SIGKILL, 1000);
        zt_cluster_stop (&s_cluster, true);
        return 1;
    }
    ZT_RUN (test_default_serviceaccount);
    ZT_RUN (test_recreated_when_deleted);
    ZT_RUN (test_plugin_commands);
    ZT_RUN (test_example_plugin);
    ZT_RUN (test_controllers_flag);
    bool failed = zt_failed_count > 0;
    if (failed)
        zt_cluster_log_tail (&s_cluster, "controller-manager.log", 40);
    int status = zt_stop (s_manager, SIGTERM, 10000);
    if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
        printf ("# controller-manager exit status %d\n", status);
        failed = true;
    }
    zt_cluster_stop (&s_cluster, failed);
    int rc = zt_done ();
    return failed ? 1 : rc;
}
