/*  test_api - the apiserver client (lib/zube_api.c).

    The object helpers and the error decoding on their own; then the calls
    against the real zube-broker and a small in-test `api` service
    (tests/zt_fake_api.h, run in a child process: this program re-executed
    with --child-api), which is enough to check packing, unpacking, error
    replies and that every asynchronous call ends exactly once. */
#define _GNU_SOURCE

#include "../zt_cluster.h"
#include "../zt_fake_api.h"

#include "zube/api.h"
#include "zube/log.h"
#include <czmq.h>

static char *s_dir;
static zt_cluster_t s_cluster; //  a broker only: the service is the fake
static pid_t s_fake;

static bool
s_start_broker (void)
{
    return zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.dir = s_dir,
                                                                .broker_only = true,
                                                                .heartbeat_ms = 200});
}

static bool
s_start_fake (void)
{
    char log_path[512];
    snprintf (log_path, sizeof log_path, "%s/fake.log", s_dir);
    char *argv[] = {"/proc/self/exe", "--child-api", s_cluster.endpoint, NULL};
    s_fake = zt_spawn_tied (argv, log_path);
    return s_fake > 0;
}

static void
s_stop_all (void)
{
    zt_stop (s_fake, SIGTERM, 3000);
    s_fake = 0;
    zt_cluster_stop (&s_cluster, false);
}

static zube_bus_t *
s_bus_new (void)
{
    return zt_cluster_bus_new (&s_cluster, &(zube_bus_config_t){.heartbeat_ms = 200});
}

static Zube__Pod *
s_pod_new (const char *ns, const char *name, const char *app)
{
    Zube__Pod *pod = calloc (1, sizeof *pod);
    zube__pod__init (pod);
    pod->api_version = strdup ("v1");
    pod->kind = strdup ("Pod");
    pod->metadata = calloc (1, sizeof *pod->metadata);
    zube__object_meta__init (pod->metadata);
    pod->metadata->name = strdup (name);
    pod->metadata->namespace_ = ns ? strdup (ns) : NULL;
    if (app) {
        pod->metadata->n_labels = 1;
        pod->metadata->labels = calloc (1, sizeof *pod->metadata->labels);
        pod->metadata->labels[0] = calloc (1, sizeof **pod->metadata->labels);
        zube__object_meta__labels_entry__init (pod->metadata->labels[0]);
        pod->metadata->labels[0]->key = strdup ("app");
        pod->metadata->labels[0]->value = strdup (app);
    }
    pod->spec = calloc (1, sizeof *pod->spec);
    zube__pod_spec__init (pod->spec);
    return pod;
}

//  The message of an error, through a call the compiler does not look
//  into (its 2048 bytes would not fit a failure text, and -Wformat-truncation
//  says so).
__attribute__ ((noinline)) static const char *
s_message (const zube_api_error_t *error)
{
    return error->message;
}

//  --------------------------------------------------------------------------
//  Helpers without a server

static void
test_object_meta_and_kind (void)
{
    Zube__Pod *pod = s_pod_new ("default", "web", "shop");
    ZT_ASSERT (zube_object_meta (&pod->base) == pod->metadata);
    ZT_ASSERT_STR_EQ (zube_object_meta (&pod->base)->name, "web");
    const zube_kind_t *kind = zube_object_kind (&pod->base);
    ZT_ASSERT (kind);
    ZT_ASSERT_STR_EQ (kind->kind, "Pod");
    ZT_ASSERT_STR_EQ (kind->resource, "pods");

    //  No metadata field, or metadata unset
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    ZT_ASSERT (zube_object_meta (&meta.base) == NULL);
    ZT_ASSERT (zube_object_kind (&meta.base) == NULL);
    Zube__Namespace ns = ZUBE__NAMESPACE__INIT;
    ZT_ASSERT (zube_object_meta (&ns.base) == NULL);
    ZT_ASSERT_STR_EQ (zube_object_kind (&ns.base)->kind, "Namespace");
    //  A list is not an object of a kind
    Zube__PodList list = ZUBE__POD_LIST__INIT;
    ZT_ASSERT (zube_object_kind (&list.base) == NULL);
    ZT_ASSERT (zube_object_meta (NULL) == NULL);
    ZT_ASSERT (zube_object_kind (NULL) == NULL);
    zube__pod__free_unpacked (pod, NULL);
}

static void
test_object_key (void)
{
    char key[64];
    const zube_kind_t *pods = zube_kind_by_resource ("pods");
    const zube_kind_t *namespaces = zube_kind_by_resource ("ns");
    const zube_kind_t *deployments = zube_kind_by_resource ("deployments.apps");
    ZT_ASSERT_INT_EQ (zube_object_key (pods, "default", "web", key, sizeof key), 26);
    ZT_ASSERT_STR_EQ (key, "/registry/pods/default/web");
    ZT_ASSERT (zube_object_key (namespaces, NULL, "kube-system", key, sizeof key) > 0);
    ZT_ASSERT_STR_EQ (key, "/registry/namespaces/kube-system");
    //  A cluster-scoped kind ignores a namespace
    ZT_ASSERT (zube_object_key (namespaces, "x", "y", key, sizeof key) > 0);
    ZT_ASSERT_STR_EQ (key, "/registry/namespaces/y");
    ZT_ASSERT (zube_object_key (deployments, "prod", "api", key, sizeof key) > 0);
    ZT_ASSERT_STR_EQ (key, "/registry/deployments/prod/api");
    //  Missing parts, or too small a buffer
    ZT_ASSERT_INT_EQ (zube_object_key (pods, NULL, "web", key, sizeof key), -1);
    ZT_ASSERT_INT_EQ (zube_object_key (pods, "", "web", key, sizeof key), -1);
    ZT_ASSERT_INT_EQ (zube_object_key (pods, "default", "", key, sizeof key), -1);
    ZT_ASSERT_INT_EQ (zube_object_key (NULL, "default", "web", key, sizeof key), -1);
    ZT_ASSERT_INT_EQ (zube_object_key (pods, "default", "web", key, 26), -1);
    ZT_ASSERT_INT_EQ (zube_object_key (pods, "default", "web", key, 27), 26);
}

static void
test_error_from_error_reply (void)
{
    Zube__StatusCause causes[2] = {ZUBE__STATUS_CAUSE__INIT, ZUBE__STATUS_CAUSE__INIT};
    Zube__StatusCause *cause_list[2] = {&causes[0], &causes[1]};
    causes[0].reason = "FieldValueInvalid";
    causes[0].field = "metadata.name";
    causes[0].message = "Invalid value: \"Web\": a lowercase RFC 1123 subdomain";
    causes[1].reason = "FieldValueRequired";
    causes[1].field = "spec.containers[0].image";
    causes[1].message = "Required value";
    Zube__StatusDetails details = ZUBE__STATUS_DETAILS__INIT;
    details.name = "Web";
    details.kind = "Pod";
    details.n_causes = 2;
    details.causes = cause_list;
    Zube__Status status = ZUBE__STATUS__INIT;
    status.status = "Failure";
    status.reason = "Invalid";
    status.message = "Pod \"Web\" is invalid: metadata.name: Invalid value: \"Web\"";
    status.has_code = 1;
    status.code = 422;
    status.details = &details;
    Zube__ErrorReply reply = ZUBE__ERROR_REPLY__INIT;
    reply.status = &status;
    uint8_t buffer[1024];
    size_t size = zube__error_reply__pack (&reply, buffer);

    zube_api_error_t error;
    zube_api_error_from_reply (&error, ZUBE_INVALID, "ignored bus text", buffer, size);
    ZT_ASSERT_INT_EQ (error.status, ZUBE_INVALID);
    ZT_ASSERT_STR_EQ (error.reason, "Invalid");
    ZT_ASSERT_INT_EQ (error.code, 422);
    ZT_ASSERT_STR_EQ (s_message (&error), status.message);
    ZT_ASSERT_INT_EQ (error.cause_count, 2);
    ZT_ASSERT_STR_EQ (error.causes[0].reason, "FieldValueInvalid");
    ZT_ASSERT_STR_EQ (error.causes[0].field, "metadata.name");
    ZT_ASSERT_STR_CONTAINS (error.causes[0].message, "RFC 1123");
    ZT_ASSERT_STR_EQ (error.causes[1].field, "spec.containers[0].image");

    //  NotFound without a code: the code comes from the status
    Zube__Status not_found = ZUBE__STATUS__INIT;
    not_found.reason = "NotFound";
    not_found.message = "pods \"web\" not found";
    reply.status = &not_found;
    size = zube__error_reply__pack (&reply, buffer);
    zube_api_error_from_reply (&error, ZUBE_NOT_FOUND, NULL, buffer, size);
    ZT_ASSERT_STR_EQ (error.reason, "NotFound");
    ZT_ASSERT_INT_EQ (error.code, 404);
    ZT_ASSERT_STR_EQ (s_message (&error), "pods \"web\" not found");
    ZT_ASSERT_INT_EQ (error.cause_count, 0);

    //  Status with no message: the bus text
    Zube__Status bare = ZUBE__STATUS__INIT;
    reply.status = &bare;
    size = zube__error_reply__pack (&reply, buffer);
    zube_api_error_from_reply (&error, ZUBE_CONFLICT, "conflict text", buffer, size);
    ZT_ASSERT_STR_EQ (error.reason, "Conflict");
    ZT_ASSERT_STR_EQ (s_message (&error), "conflict text");

    //  More causes than fit: the first ZUBE_API_MAX_CAUSES are kept
    Zube__StatusCause many[ZUBE_API_MAX_CAUSES + 4];
    Zube__StatusCause *many_list[ZUBE_API_MAX_CAUSES + 4];
    for (int index = 0; index < ZUBE_API_MAX_CAUSES + 4; index++) {
        zube__status_cause__init (&many[index]);
        many[index].field = "f";
        many_list[index] = &many[index];
    }
    details.n_causes = ZUBE_API_MAX_CAUSES + 4;
    details.causes = many_list;
    reply.status = &status;
    uint8_t big[4096];
    size = zube__error_reply__pack (&reply, big);
    zube_api_error_from_reply (&error, ZUBE_INVALID, NULL, big, size);
    ZT_ASSERT_INT_EQ (error.cause_count, ZUBE_API_MAX_CAUSES);
}

static void
test_error_from_bus (void)
{
    zube_api_error_t error;
    zube_api_error_from_reply (&error, ZUBE_UNAVAILABLE,
                               "no instance of service \"api\" within the deadline", NULL,
                               0);
    ZT_ASSERT_INT_EQ (error.status, ZUBE_UNAVAILABLE);
    ZT_ASSERT_STR_EQ (error.reason, "ServiceUnavailable");
    ZT_ASSERT_INT_EQ (error.code, 503);
    ZT_ASSERT_STR_CONTAINS (s_message (&error), "no instance of service");
    zube_api_error_from_reply (&error, ZUBE_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
    ZT_ASSERT_STR_EQ (error.reason, "Timeout");
    ZT_ASSERT_INT_EQ (error.code, 504);
    ZT_ASSERT_STR_EQ (s_message (&error), "deadline exceeded");
    //  Bytes that are no ErrorReply: the bus text still
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0x07};
    zube_api_error_from_reply (&error, ZUBE_INTERNAL, "boom", junk, sizeof junk);
    ZT_ASSERT_STR_EQ (error.reason, "InternalError");
    ZT_ASSERT_STR_EQ (s_message (&error), "boom");
    //  Neither: the reason
    zube_api_error_from_reply (&error, ZUBE_FORBIDDEN, NULL, NULL, 0);
    ZT_ASSERT_STR_EQ (s_message (&error), "Forbidden");
    ZT_ASSERT_INT_EQ (error.cause_count, 0);
}

//  --------------------------------------------------------------------------
//  Calls

typedef struct {
    int outcomes;
    zube_status_t status;
    char reason[64];
    bool had_reply;
} s_outcome_t;

static void
s_record (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
          const zube_api_error_t *error, void *arg)
{
    (void)api;
    s_outcome_t *outcome = arg;
    outcome->outcomes++;
    outcome->status = status;
    snprintf (outcome->reason, sizeof outcome->reason, "%s", error ? error->reason : "");
    outcome->had_reply = reply != NULL;
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
}

//  Nobody serves `api`: a call ends once, with the bus's reason.
static void
test_calls_without_server (void)
{
    zube_bus_t *bus = s_bus_new ();
    zube_api_t *api = zube_api_new (bus);
    zube_api_set_timeout (api, 300);
    ProtobufCMessage *object = NULL;
    zube_api_error_t error;
    zube_status_t status = zube_api_get (api, "pods", "default", "web", &object, &error);
    ZT_ASSERT (status == ZUBE_UNAVAILABLE || status == ZUBE_DEADLINE_EXCEEDED);
    ZT_ASSERT (object == NULL);
    ZT_ASSERT (streq (error.reason, "ServiceUnavailable") || streq (error.reason, "Timeout"));
    ZT_ASSERT (error.message[0]);

    s_outcome_t outcome = {0};
    Zube__GetRequest request = ZUBE__GET_REQUEST__INIT;
    request.resource = "pods";
    request.name = "web";
    ZT_ASSERT_INT_EQ (zube_api_call_async (api, "get", &request.base,
                                           &zube__object_reply__descriptor, s_record,
                                           &outcome),
                      0);
    int64_t until = zt_now_ms () + 3000;
    while (zt_now_ms () < until && outcome.outcomes == 0)
        zube_bus_poll (bus, 20);
    for (int index = 0; index < 10; index++)
        zube_bus_poll (bus, 20);
    ZT_ASSERT_INT_EQ (outcome.outcomes, 1);
    ZT_ASSERT (outcome.status == ZUBE_UNAVAILABLE || outcome.status == ZUBE_DEADLINE_EXCEEDED);
    ZT_ASSERT (!outcome.had_reply);
    //  An unknown resource is refused before anything is sent
    status = zube_api_get (api, "wombats", NULL, "x", &object, &error);
    ZT_ASSERT_INT_EQ (status, ZUBE_NOT_FOUND);
    ZT_ASSERT_STR_CONTAINS (s_message (&error), "wombats");
    zube_api_destroy (&api);
    zube_bus_destroy (&bus);
}

static void
s_wait_api (zube_api_t *api)
{
    int64_t until = zt_now_ms () + 10000;
    while (zt_now_ms () < until) {
        zube_api_list_t *list = NULL;
        if (zube_api_list (api, "pods", NULL, &list, NULL) == ZUBE_OK) {
            zube_api_list_destroy (&list);
            return;
        }
        usleep (50000);
    }
}

static void
test_calls_against_service (void)
{
    zube_bus_t *bus = s_bus_new ();
    zube_api_t *api = zube_api_new (bus);
    ZT_ASSERT (zube_api_bus (api) == bus);
    s_wait_api (api);
    zube_api_error_t error;

    //  create, and again: AlreadyExists as kubectl prints it
    Zube__Pod *pod = s_pod_new ("default", "web", "shop");
    ProtobufCMessage *created = NULL;
    ZT_ASSERT_INT_EQ (zube_api_create (api, "pods", NULL, &pod->base, false, &created, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (error.status, ZUBE_OK);
    ZT_ASSERT_STR_EQ (s_message (&error), "");
    ZT_ASSERT (created && created->descriptor == &zube__pod__descriptor);
    Zube__ObjectMeta *meta = zube_object_meta (created);
    ZT_ASSERT_STR_EQ (meta->name, "web");
    ZT_ASSERT_STR_EQ (meta->namespace_, "default");
    ZT_ASSERT (meta->resource_version && atoll (meta->resource_version) > 0);
    char first_rv[32];
    snprintf (first_rv, sizeof first_rv, "%s", meta->resource_version);
    ZT_ASSERT_INT_EQ (zube_api_create (api, "po", "default", &pod->base, false, NULL, &error),
                      ZUBE_ALREADY_EXISTS);
    ZT_ASSERT_STR_EQ (error.reason, "AlreadyExists");
    ZT_ASSERT_INT_EQ (error.code, 409);
    ZT_ASSERT_STR_EQ (s_message (&error), "pods \"web\" already exists");

    //  get, and get of nothing
    ProtobufCMessage *got = NULL;
    ZT_ASSERT_INT_EQ (zube_api_get (api, "pods", "default", "web", &got, &error), ZUBE_OK);
    ZT_ASSERT_STR_EQ (zube_object_meta (got)->resource_version, first_rv);
    ZT_ASSERT_STR_EQ (((Zube__Pod *)got)->metadata->labels[0]->value, "shop");
    protobuf_c_message_free_unpacked (got, NULL);
    got = NULL;
    ZT_ASSERT_INT_EQ (zube_api_get (api, "pods", "default", "nope", &got, &error),
                      ZUBE_NOT_FOUND);
    ZT_ASSERT (got == NULL);
    ZT_ASSERT_STR_EQ (error.reason, "NotFound");
    ZT_ASSERT_STR_EQ (s_message (&error), "pods \"nope\" not found");

    //  update: current resourceVersion, then a stale one (Conflict)
    Zube__Pod *changed = (Zube__Pod *)created;
    free (changed->metadata->labels[0]->value);
    changed->metadata->labels[0]->value = strdup ("cart");
    ProtobufCMessage *updated = NULL;
    ZT_ASSERT_INT_EQ (zube_api_update (api, "pods", NULL, created, NULL, false, &updated,
                                       &error),
                      ZUBE_OK);
    ZT_ASSERT (atoll (zube_object_meta (updated)->resource_version) > atoll (first_rv));
    ZT_ASSERT_INT_EQ (zube_api_update (api, "pods", NULL, created, NULL, false, NULL, &error),
                      ZUBE_CONFLICT);
    ZT_ASSERT_STR_EQ (error.reason, "Conflict");
    ZT_ASSERT_STR_CONTAINS (s_message (&error), "the object has been modified");
    protobuf_c_message_free_unpacked (updated, NULL);

    //  list in pages of 2
    for (int index = 0; index < 4; index++) {
        char name[16];
        snprintf (name, sizeof name, "p%d", index);
        Zube__Pod *more = s_pod_new ("other", name, index % 2 ? "odd" : "even");
        ZT_ASSERT_INT_EQ (zube_api_create (api, "pods", NULL, &more->base, false, NULL,
                                           &error),
                          ZUBE_OK);
        zube__pod__free_unpacked (more, NULL);
    }
    zube_api_list_t *list = NULL;
    zube_api_list_options_t options = {.namespace = "other", .limit = 3};
    ZT_ASSERT_INT_EQ (zube_api_list (api, "pods", &options, &list, &error), ZUBE_OK);
    ZT_ASSERT_INT_EQ (list->count, 3);
    ZT_ASSERT (list->kind == zube_kind_by_resource ("pods"));
    ZT_ASSERT (list->continue_token);
    ZT_ASSERT_INT_EQ (list->remaining_item_count, 1);
    ZT_ASSERT_STR_EQ (zube_object_meta (list->items[0])->name, "p0");
    ZT_ASSERT (atoll (list->resource_version) > 0);
    options.continue_token = list->continue_token;
    zube_api_list_t *rest = NULL;
    ZT_ASSERT_INT_EQ (zube_api_list (api, "pods", &options, &rest, &error), ZUBE_OK);
    ZT_ASSERT_INT_EQ (rest->count, 1);
    ZT_ASSERT (rest->continue_token == NULL);
    ZT_ASSERT_STR_EQ (zube_object_meta (rest->items[0])->name, "p3");
    zube_api_list_destroy (&rest);
    zube_api_list_destroy (&list);
    ZT_ASSERT (list == NULL);
    options = (zube_api_list_options_t){.label_selector = "app=odd"};
    ZT_ASSERT_INT_EQ (zube_api_list (api, "pods", &options, &list, &error), ZUBE_OK);
    ZT_ASSERT_INT_EQ (list->count, 2);
    zube_api_list_destroy (&list);

    //  bind, then watch since the first write: the events in order
    ZT_ASSERT_INT_EQ (zube_api_bind (api, "other", "p0", "node-1", &error), ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_api_get (api, "pods", "other", "p0", &got, &error), ZUBE_OK);
    ZT_ASSERT_STR_EQ (((Zube__Pod *)got)->spec->node_name, "node-1");
    protobuf_c_message_free_unpacked (got, NULL);
    Zube__WatchEventBatch *batch = NULL;
    ZT_ASSERT_INT_EQ (zube_api_watch_since (api, "pods", NULL, first_rv, &batch, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (batch->n_events, 6); //  update, 4 creates, bind
    ZT_ASSERT_STR_EQ (batch->events[0]->type, "MODIFIED");
    ZT_ASSERT_STR_EQ (batch->events[1]->type, "ADDED");
    for (size_t index = 1; index < batch->n_events; index++)
        ZT_ASSERT (atoll (batch->events[index]->resource_version)
                   > atoll (batch->events[index - 1]->resource_version));
    zube__watch_event_batch__free_unpacked (batch, NULL);
    batch = NULL;
    ZT_ASSERT_INT_EQ (zube_api_watch_since (api, "pods", "default", first_rv, &batch, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (batch->n_events, 1);
    zube__watch_event_batch__free_unpacked (batch, NULL);

    //  patch: a merge patch of the labels
    ProtobufCMessage *patched = NULL;
    ZT_ASSERT_INT_EQ (zube_api_patch (api, "pods", "default", "web", NULL,
                                      "{\"metadata\":{\"labels\":{\"tier\":\"db\"}}}",
                                      NULL, false, &patched, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_object_meta (patched)->n_labels, 2);
    protobuf_c_message_free_unpacked (patched, NULL);
    ZT_ASSERT_INT_EQ (zube_api_patch (api, "pods", "default", "nope", NULL, "{}", NULL, false,
                                      NULL, &error),
                      ZUBE_NOT_FOUND);

    //  delete: the object as it was; then it is gone
    ProtobufCMessage *deleted = NULL;
    zube_api_delete_options_t delete_options = {.grace_period_seconds = 0};
    ZT_ASSERT_INT_EQ (zube_api_delete (api, "pods", "default", "web", &delete_options,
                                       &deleted, &error),
                      ZUBE_OK);
    ZT_ASSERT_STR_EQ (zube_object_meta (deleted)->name, "web");
    protobuf_c_message_free_unpacked (deleted, NULL);
    ZT_ASSERT_INT_EQ (zube_api_delete (api, "pods", "default", "web", NULL, NULL, &error),
                      ZUBE_NOT_FOUND);

    protobuf_c_message_free_unpacked (created, NULL);
    zube__pod__free_unpacked (pod, NULL);
    zube_api_destroy (&api);
    ZT_ASSERT (api == NULL);
    zube_bus_destroy (&bus);
}

//  500 asynchronous creates from one connection: each outcome exactly
//  once, each OK with the object; then a call whose client is destroyed
//  before the reply: its one outcome comes from the destroy.
static void
test_async_exactly_once (void)
{
    zube_bus_t *bus = s_bus_new ();
    zube_api_t *api = zube_api_new (bus);
    s_wait_api (api);
    enum { CALLS = 500 };
    static s_outcome_t outcomes[CALLS];
    memset (outcomes, 0, sizeof outcomes);
    for (int index = 0; index < CALLS; index++) {
        char name[32];
        snprintf (name, sizeof name, "async-%d", index);
        Zube__Pod *pod = s_pod_new ("async", name, NULL);
        uint8_t *data;
        size_t size;
        zt_fake_pack (&pod->base, &data, &size);
        Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
        request.resource = "pods";
        request.namespace_ = "async";
        request.has_object = 1;
        request.object.data = data;
        request.object.len = size;
        ZT_ASSERT_INT_EQ (zube_api_call_async (api, "create", &request.base,
                                               &zube__object_reply__descriptor, s_record,
                                               &outcomes[index]),
                          0);
        free (data);
        zube__pod__free_unpacked (pod, NULL);
    }
    int64_t until = zt_now_ms () + 20000;
    while (zube_bus_in_flight (bus) > 0 && zt_now_ms () < until)
        zube_bus_poll (bus, 20);
    for (int index = 0; index < 10; index++)
        zube_bus_poll (bus, 10);
    for (int index = 0; index < CALLS; index++) {
        ZT_ASSERT_MSG (outcomes[index].outcomes == 1, "call %d: %d outcomes", index,
                       outcomes[index].outcomes);
        ZT_ASSERT_INT_EQ (outcomes[index].status, ZUBE_OK);
        ZT_ASSERT (outcomes[index].had_reply);
    }
    zube_api_list_t *list = NULL;
    zube_api_list_options_t options = {.namespace = "async"};
    ZT_ASSERT_INT_EQ (zube_api_list (api, "pods", &options, &list, NULL), ZUBE_OK);
    ZT_ASSERT_INT_EQ (list->count, CALLS);
    zube_api_list_destroy (&list);

    //  An error answered asynchronously
    s_outcome_t missing = {0};
    Zube__GetRequest get = ZUBE__GET_REQUEST__INIT;
    get.resource = "pods";
    get.namespace_ = "async";
    get.name = "nope";
    ZT_ASSERT_INT_EQ (zube_api_call_async (api, "get", &get.base,
                                           &zube__object_reply__descriptor, s_record,
                                           &missing),
                      0);
    until = zt_now_ms () + 5000;
    while (missing.outcomes == 0 && zt_now_ms () < until)
        zube_bus_poll (bus, 20);
    ZT_ASSERT_INT_EQ (missing.outcomes, 1);
    ZT_ASSERT_INT_EQ (missing.status, ZUBE_NOT_FOUND);
    ZT_ASSERT_STR_EQ (missing.reason, "NotFound");
    ZT_ASSERT (!missing.had_reply);

    //  Destroyed with a call in flight
    s_outcome_t orphan = {0};
    get.name = "async-1";
    ZT_ASSERT_INT_EQ (zube_api_call_async (api, "get", &get.base,
                                           &zube__object_reply__descriptor, s_record,
                                           &orphan),
                      0);
    zube_api_destroy (&api);
    ZT_ASSERT_INT_EQ (orphan.outcomes, 1);
    ZT_ASSERT_INT_EQ (orphan.status, ZUBE_UNAVAILABLE);
    until = zt_now_ms () + 1000;
    while (zube_bus_in_flight (bus) > 0 && zt_now_ms () < until)
        zube_bus_poll (bus, 20);
    ZT_ASSERT_INT_EQ (orphan.outcomes, 1);
    zube_bus_destroy (&bus);
}

int
main (int argc, char *argv[])
{
    if (argc >= 3 && streq (argv[1], "--child-api")) {
        zube_log_set_component ("fake-api");
        return zt_fake_api_run (argv[2], 0);
    }
    zube_log_set_level (getenv ("ZUBE_TEST_DEBUG") ? ZUBE_LOG_DEBUG : ZUBE_LOG_ERROR);
    s_dir = zt_tempdir ("api");
    ZT_RUN (test_object_meta_and_kind);
    ZT_RUN (test_object_key);
    ZT_RUN (test_error_from_error_reply);
    ZT_RUN (test_error_from_bus);
    if (!s_start_broker ()) {
        zt_skip ("test_calls_without_server", "cannot start zube-broker");
        zt_skip ("test_calls_against_service", "cannot start zube-broker");
        zt_skip ("test_async_exactly_once", "cannot start zube-broker");
    } else {
        ZT_RUN (test_calls_without_server);
        s_start_fake ();
        ZT_RUN (test_calls_against_service);
        ZT_RUN (test_async_exactly_once);
    }
    s_stop_all ();
    if (zt_failed_count == 0 && !getenv ("ZUBE_TEST_KEEP"))
        zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
