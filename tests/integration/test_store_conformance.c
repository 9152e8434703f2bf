/*  test_store_conformance - what every store backend must do, run against
    each backend through the plugin loader, exactly as the apiserver uses it.

        test_store_conformance              every backend in s_backends[]
        test_store_conformance URL          one store (ZUBE_STORE_URL too)

    A URL that is only a scheme ("lmdb", "redis") picks that backend's
    fixture; a full URL ("lmdb:/srv/x", "redis://127.0.0.1:6390/3") is
    used as it is, for every case (its contents are destroyed: restore
    replaces them). The cases never assume an empty store: keys carry a
    per-case prefix and revisions are compared with the revision at the
    start of the case.

    Everything backend-specific is in the fixture table below: how to start
    what the backend needs, how to get a URL to an empty store, and how to
    throw it away. Adding redis or etcd is one more row. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>
#include "zube/plugin_host.h"
#include "zube/store_client.h"
//  zt_rmtree's snprintf into a fixed buffer trips -Wformat-truncation when
//  GCC inlines it here; the paths involved are short.
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zube_testproc.h"
#include "../zube_test.h"
#include "../zt_etcd.h"

//  ---------------------------------------------------------------------
//  Backend fixtures

typedef struct {
    //  The URL scheme, and the plugin name.
    const char *scheme;
    //  Starts whatever the backend needs (a server) once, before its cases;
    //  false with why if it cannot run here (its cases are skipped).
    bool (*start) (char *why, size_t why_size);
    //  A URL to an empty store for one case (malloc'd).
    char *(*fresh_url) (const char *tag);
    //  Throws away what fresh_url made.
    void (*discard) (const char *url);
    //  Stops what start started.
    void (*stop) (void);
    //  Where a backend cannot do as the others (etcd): the writes of one
    //  group share one revision (one etcd txn); independent groups of a
    //  batch commit concurrently, so their revisions follow the commit
    //  order, not the batch order; a restore writes the snapshot's objects
    //  anew, at new revisions (etcd's never go back).
    bool group_shares_revision;
    bool commit_order_revisions;
    bool restore_moves_forward;
} s_backend_t;

static bool
s_lmdb_start (char *why, size_t why_size)
{
    return true;
}

static char *
s_lmdb_fresh_url (const char *tag)
{
    char *dir = zt_tempdir ("store");
    char *url = NULL;
    if (dir && asprintf (&url, "lmdb:%s/db", dir) < 0)
        url = NULL;
    free (dir);
    return url;
}

static void
s_lmdb_discard (const char *url)
{
    //  lmdb:/tmp/zube-test-store-XXXXXX/db: remove the temporary directory.
    char *dir = strdup (url + 5);
    char *slash = strrchr (dir, '/');
    if (slash)
        *slash = 0;
    zt_rmtree (dir);
    free (dir);
}

static void
s_nothing_to_stop (void)
{
}

//  redis: one redis-server for all cases (durable: appendonly, appendfsync
//  always), a database of its own per case. Skipped only when redis-server
//  is not installed; one that will not start fails the cases.
static zt_redis_t s_redis;
static int s_redis_last_db;

static bool
s_redis_start (char *why, size_t why_size)
{
    if (!zt_which ("redis-server")) {
        snprintf (why, why_size, "redis-server is not installed");
        return false;
    }
    s_redis = (zt_redis_t) {0};
    s_redis_last_db = 0;
    if (!zt_redis_start (&s_redis))
        printf ("# redis-server did not start; its log: %s/redis.log\n", s_redis.dir);
    return true;
}

static char *
s_redis_fresh_url (const char *tag)
{
    char *url = NULL;
    if (s_redis.pid <= 0 || s_redis_last_db == 63)
        return NULL;
    if (asprintf (&url, "redis://127.0.0.1:%d/%d", s_redis.port, ++s_redis_last_db) < 0)
        url = NULL;
    return url;
}

static void
s_redis_discard (const char *url)
{
    char commands[64];
    snprintf (commands, sizeof commands, "SELECT %s\r\nFLUSHDB\r\n", strrchr (url, '/') + 1);
    free (zt_redis_send (s_redis.port, commands));
}

static void
s_redis_stop (void)
{
    zt_redis_destroy (&s_redis);
}

//  etcd: one etcd for all cases (the cases never assume an empty store:
//  their keys carry a prefix of their own), on free ports in a temporary
//  directory. Skipped only when etcd is not installed; one that will not
//  start fails the cases.
static zt_etcd_t s_etcd;

static bool
s_etcd_start (char *why, size_t why_size)
{
    if (!zt_which ("etcd")) {
        snprintf (why, why_size, "etcd is not installed");
        return false;
    }
    s_etcd = (zt_etcd_t) {0};
    if (!zt_etcd_start (&s_etcd))
        printf ("# etcd did not start; its log: %s/etcd.log\n", s_etcd.dir);
    return true;
}

static char *
s_etcd_fresh_url (const char *tag)
{
    return s_etcd.pid > 0 ? strdup (s_etcd.url) : NULL;
}

static void
s_etcd_discard (const char *url)
{
}

static void
s_etcd_stop (void)
{
    zt_etcd_destroy (&s_etcd);
}

static const s_backend_t s_backends[] = {
    {.scheme = "lmdb",
     .start = s_lmdb_start,
     .fresh_url = s_lmdb_fresh_url,
     .discard = s_lmdb_discard,
     .stop = s_nothing_to_stop},
    {.scheme = "redis",
     .start = s_redis_start,
     .fresh_url = s_redis_fresh_url,
     .discard = s_redis_discard,
     .stop = s_redis_stop},
    {.scheme = "etcd",
     .start = s_etcd_start,
     .fresh_url = s_etcd_fresh_url,
     .discard = s_etcd_discard,
     .stop = s_etcd_stop,
     .group_shares_revision = true,
     .commit_order_revisions = true,
     .restore_moves_forward = true},
};

//  A store named by a full URL on the command line: the same for every case.
static const char *s_explicit_url;

static char *
s_explicit_fresh_url (const char *tag)
{
    return strdup (s_explicit_url);
}

static void
s_explicit_discard (const char *url)
{
}

static const s_backend_t s_explicit_backend = {.scheme = "url",
                                               .start = s_lmdb_start,
                                               .fresh_url = s_explicit_fresh_url,
                                               .discard = s_explicit_discard,
                                               .stop = s_nothing_to_stop};

//  ---------------------------------------------------------------------
//  Per-case state and helpers

static const s_backend_t *s_backend;
static zube_plugin_host_t *s_plugins;
static char *s_url;
static zube_store_t *s_store;
//  Keys of this case start with it: "/registry/zt-<pid>-<n>/".
static char s_prefix[128];
static int s_case_number;

static zube_store_t *
s_open (void)
{
    char *error = NULL;
    zube_store_t *store = zube_store_open (s_plugins, s_url, NULL, &error);
    ZT_ASSERT_MSG (store, "cannot open %s: %s", s_url, error ? error : "?");
    return store;
}

static void
s_case_begin (void)
{
    s_url = s_backend->fresh_url ("case");
    ZT_ASSERT_MSG (s_url, "no URL for a fresh %s store", s_backend->scheme);
    snprintf (s_prefix, sizeof s_prefix, "/registry/zt-%d-%d/", (int) getpid (),
              ++s_case_number);
    s_store = s_open ();
}

static void
s_case_end (void)
{
    zube_store_close (&s_store);
    s_backend->discard (s_url);
    free (s_url);
    s_url = NULL;
}

//  s_prefix + name, in one of a few rotating buffers.
static const char *
s_key (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static const char *
s_key (const char *format, ...)
{
    static char keys[8][256];
    static int next = 0;
    char *key = keys[next++ % 8];
    int used = snprintf (key, 256, "%s", s_prefix);
    va_list args;
    va_start (args, format);
    vsnprintf (key + used, 256 - used, format, args);
    va_end (args);
    return key;
}

static int64_t
s_revision (void)
{
    int64_t revision = -1;
    zube_status_t status = zube_store_revision (s_store, &revision, NULL);
    ZT_ASSERT_MSG (status == ZUBE_OK, "revision: %s", zube_store_error (s_store));
    return revision;
}

static int64_t
s_put_ok (const char *key, const char *value, int64_t expect)
{
    int64_t revision = 0;
    zube_status_t status = zube_store_put (s_store, key, value, strlen (value), expect, &revision);
    ZT_ASSERT_MSG (status == ZUBE_OK, "put %s (expect %" PRId64 "): %s %s", key, expect,
                   zube_status_reason (status), zube_store_error (s_store));
    ZT_ASSERT (revision > 0);
    return revision;
}

//  Asserts KEY holds VALUE at MOD_REVISION (any revision when 0).
static void
s_expect_value (const char *key, const char *value, int64_t mod_revision)
{
    void *got = NULL;
    size_t size = 0;
    int64_t got_revision = 0;
    zube_status_t status = zube_store_get (s_store, key, &got, &size, &got_revision);
    ZT_ASSERT_MSG (status == ZUBE_OK, "get %s: %s %s", key, zube_status_reason (status),
                   zube_store_error (s_store));
    bool same = size == strlen (value) && memcmp (got, value, size) == 0;
    char copy[256];
    snprintf (copy, sizeof copy, "%.*s", (int) size, (char *) got);
    free (got);
    ZT_ASSERT_MSG (same, "get %s == \"%s\", expected \"%s\"", key, copy, value);
    if (mod_revision)
        ZT_ASSERT_INT_EQ (got_revision, mod_revision);
}

static void
s_expect_absent (const char *key)
{
    void *got = NULL;
    zube_status_t status = zube_store_get (s_store, key, &got, NULL, NULL);
    free (got);
    ZT_ASSERT_MSG (status == ZUBE_NOT_FOUND, "get %s: %s, expected NotFound", key,
                   zube_status_reason (status));
}

//  Events and keys collected by callbacks (copies).
typedef struct {
    zube_store_event_type_t type;
    int64_t revision;
    int64_t prev_revision;
    char key[256];
    char value[256];
} s_event_t;

typedef struct {
    s_event_t items[512];
    size_t count;
    //  Only keys with this prefix are kept (the store may hold others).
    const char *prefix;
} s_events_t;

static int
s_collect_event (void *arg, const zube_store_event_t *event)
{
    s_events_t *events = arg;
    if (events->prefix && strncmp (event->key, events->prefix, strlen (events->prefix)) != 0)
        return 0;
    if (events->count == sizeof events->items / sizeof events->items[0])
        return 1;
    s_event_t *copy = &events->items[events->count++];
    copy->type = event->type;
    copy->revision = event->revision;
    copy->prev_revision = event->prev_revision;
    snprintf (copy->key, sizeof copy->key, "%.*s", (int) event->key_size, event->key);
    snprintf (copy->value, sizeof copy->value, "%.*s", (int) event->value_size,
              (const char *) event->value);
    return 0;
}

static void
s_read_events (s_events_t *events, int64_t since, size_t limit)
{
    memset (events, 0, sizeof *events);
    events->prefix = s_prefix;
    int64_t revision = 0;
    zube_status_t status =
        zube_store_events (s_store, since, limit, s_collect_event, events, &revision);
    ZT_ASSERT_MSG (status == ZUBE_OK, "events since %" PRId64 ": %s %s", since,
                   zube_status_reason (status), zube_store_error (s_store));
    ZT_ASSERT (revision >= since);
}

typedef struct {
    char keys[128][256];
    int64_t revisions[128];
    size_t count;
    //  Stop after this many keys (0: never).
    size_t stop_after;
} s_keys_t;

static int
s_collect_key (void *arg, const zube_store_kv_t *kv)
{
    s_keys_t *keys = arg;
    if (keys->count < 128) {
        snprintf (keys->keys[keys->count], 256, "%s", kv->key);
        keys->revisions[keys->count] = kv->mod_revision;
    }
    keys->count++;
    return keys->stop_after && keys->count >= keys->stop_after;
}

static zube_store_range_result_t
s_range (s_keys_t *keys, const char *prefix, const char *after, size_t limit)
{
    memset (keys, 0, sizeof *keys);
    zube_store_range_t range = {.prefix = prefix, .after_key = after, .limit = limit};
    zube_store_range_result_t result;
    zube_status_t status = zube_store_range (s_store, &range, s_collect_key, keys, &result);
    ZT_ASSERT_MSG (status == ZUBE_OK, "range %s: %s %s", prefix, zube_status_reason (status),
                   zube_store_error (s_store));
    ZT_ASSERT_INT_EQ (result.count, keys->count);
    return result;
}

//  ---------------------------------------------------------------------
//  Cases

static void
test_create_and_get (void)
{
    s_case_begin ();
    int64_t before = s_revision ();
    const char *key = s_key ("pods/default/web");
    s_expect_absent (key);
    int64_t created = s_put_ok (key, "v1", 0);
    ZT_ASSERT (created > before);
    ZT_ASSERT_INT_EQ (s_revision (), created);
    s_expect_value (key, "v1", created);

    //  Creating it again (expect "must not exist") conflicts and reports
    //  the key's revision.
    int64_t revision = 0;
    zube_status_t status = zube_store_put (s_store, key, "v2", 2, 0, &revision);
    ZT_ASSERT_INT_EQ (status, ZUBE_CONFLICT);
    ZT_ASSERT_INT_EQ (revision, created);
    s_expect_value (key, "v1", created);
    ZT_ASSERT_INT_EQ (s_revision (), created);

    //  An empty value is a value.
    int64_t empty = s_put_ok (s_key ("configmaps/default/empty"), "", 0);
    s_expect_value (s_key ("configmaps/default/empty"), "", empty);
    s_case_end ();
}

static void
test_update_with_current_revision (void)
{
    s_case_begin ();
    const char *key = s_key ("pods/default/web");
    int64_t first = s_put_ok (key, "v1", 0);
    int64_t second = s_put_ok (key, "v2", first);
    ZT_ASSERT (second > first);
    s_expect_value (key, "v2", second);
    int64_t third = s_put_ok (key, "v3", ZUBE_STORE_ANY_REVISION);
    ZT_ASSERT (third > second);
    s_expect_value (key, "v3", third);
    s_case_end ();
}

static void
test_update_with_stale_revision_conflicts (void)
{
    s_case_begin ();
    const char *key = s_key ("pods/default/web");
    int64_t first = s_put_ok (key, "v1", 0);
    int64_t second = s_put_ok (key, "v2", first);
    int64_t revision = 0;
    zube_status_t status = zube_store_put (s_store, key, "stale", 5, first, &revision);
    ZT_ASSERT_INT_EQ (status, ZUBE_CONFLICT);
    ZT_ASSERT_INT_EQ (revision, second);
    s_expect_value (key, "v2", second);
    ZT_ASSERT_INT_EQ (s_revision (), second);

    //  Updating a key that does not exist: a conflict with revision 0.
    status = zube_store_put (s_store, s_key ("pods/default/none"), "x", 1, second, &revision);
    ZT_ASSERT_INT_EQ (status, ZUBE_CONFLICT);
    ZT_ASSERT_INT_EQ (revision, 0);
    s_expect_absent (s_key ("pods/default/none"));
    s_case_end ();
}

static void
test_delete (void)
{
    s_case_begin ();
    const char *key = s_key ("pods/default/web");
    int64_t created = s_put_ok (key, "v1", 0);
    int64_t updated = s_put_ok (key, "v2", created);
    int64_t revision = 0;
    ZT_ASSERT_INT_EQ (zube_store_delete (s_store, key, created, &revision), ZUBE_CONFLICT);
    ZT_ASSERT_INT_EQ (revision, updated);
    s_expect_value (key, "v2", updated);
    ZT_ASSERT_INT_EQ (zube_store_delete (s_store, key, updated, &revision), ZUBE_OK);
    ZT_ASSERT (revision > updated);
    ZT_ASSERT_INT_EQ (s_revision (), revision);
    s_expect_absent (key);
    int64_t deleted = revision;
    ZT_ASSERT_INT_EQ (zube_store_delete (s_store, key, ZUBE_STORE_ANY_REVISION, &revision),
                      ZUBE_NOT_FOUND);
    ZT_ASSERT_INT_EQ (s_revision (), deleted);
    //  Gone means it can be created again.
    int64_t again = s_put_ok (key, "v3", 0);
    ZT_ASSERT (again > deleted);
    s_expect_value (key, "v3", again);
    s_case_end ();
}

static void
test_range_with_prefix_and_pagination (void)
{
    s_case_begin ();
    for (int i = 0; i < 25; i++)
        s_put_ok (s_key ("pods/ns-a/pod-%02d", i), "a", 0);
    for (int i = 0; i < 5; i++)
        s_put_ok (s_key ("pods/ns-b/pod-%02d", i), "b", 0);
    for (int i = 0; i < 3; i++)
        s_put_ok (s_key ("services/ns-a/svc-%d", i), "s", 0);
    //  A key sharing a prefix as text but in another namespace.
    s_put_ok (s_key ("pods/ns-ab/pod-00"), "ab", 0);
    int64_t now = s_revision ();

    s_keys_t keys;
    char prefix[256];
    snprintf (prefix, sizeof prefix, "%s", s_key ("pods/ns-a/"));
    zube_store_range_result_t result = s_range (&keys, prefix, NULL, 0);
    ZT_ASSERT_INT_EQ (keys.count, 25);
    ZT_ASSERT (!result.more);
    ZT_ASSERT_INT_EQ (result.revision, now);
    for (int i = 0; i < 25; i++)
        ZT_ASSERT_STR_EQ (keys.keys[i], s_key ("pods/ns-a/pod-%02d", i));
    for (int i = 1; i < 25; i++)
        ZT_ASSERT (keys.revisions[i] > keys.revisions[i - 1]);

    //  Pages of 10: 10 (more), 10 (more), 5 (no more), in order, no repeats.
    char after[256] = "";
    size_t expected_pages[] = {10, 10, 5};
    int seen = 0;
    for (int page = 0; page < 3; page++) {
        result = s_range (&keys, prefix, page ? after : NULL, 10);
        ZT_ASSERT_INT_EQ (keys.count, expected_pages[page]);
        ZT_ASSERT_INT_EQ (result.more, page < 2);
        ZT_ASSERT_INT_EQ (result.revision, now);
        for (size_t i = 0; i < keys.count; i++)
            ZT_ASSERT_STR_EQ (keys.keys[i], s_key ("pods/ns-a/pod-%02d", seen++));
        snprintf (after, sizeof after, "%s", keys.keys[keys.count - 1]);
    }
    //  A page that ends exactly at the last key says there is no more.
    result = s_range (&keys, prefix, s_key ("pods/ns-a/pod-%02d", 14), 10);
    ZT_ASSERT_INT_EQ (keys.count, 10);
    ZT_ASSERT (!result.more);
    //  after_key need not be a key that exists.
    s_range (&keys, prefix, s_key ("pods/ns-a/pod-19x"), 0);
    ZT_ASSERT_INT_EQ (keys.count, 5);
    ZT_ASSERT_STR_EQ (keys.keys[0], s_key ("pods/ns-a/pod-20"));

    s_range (&keys, s_key ("pods/"), NULL, 0);
    ZT_ASSERT_INT_EQ (keys.count, 31);
    s_range (&keys, s_key ("pods/ns-a/pod-1"), NULL, 0);
    ZT_ASSERT_INT_EQ (keys.count, 10);
    s_range (&keys, s_key ("services/"), NULL, 0);
    ZT_ASSERT_INT_EQ (keys.count, 3);
    result = s_range (&keys, s_key ("nothing/"), NULL, 0);
    ZT_ASSERT_INT_EQ (keys.count, 0);
    ZT_ASSERT (!result.more);
    ZT_ASSERT_INT_EQ (result.revision, now);

    //  A callback that stops early: more is true.
    memset (&keys, 0, sizeof keys);
    keys.stop_after = 3;
    zube_store_range_t range = {.prefix = prefix};
    ZT_ASSERT_INT_EQ (zube_store_range (s_store, &range, s_collect_key, &keys, &result), ZUBE_OK);
    ZT_ASSERT_INT_EQ (keys.count, 3);
    ZT_ASSERT (result.more);
    s_case_end ();
}

static void
test_revisions_strictly_increase (void)
{
    s_case_begin ();
    int64_t last = s_revision ();
    int64_t mod[10] = {0};
    for (int round = 0; round < 60; round++) {
        int slot = (round * 7) % 10;
        const char *key = s_key ("leases/ns/lease-%d", slot);
        int64_t revision = 0;
        zube_status_t status;
        if (mod[slot] && round % 5 == 0)
            status = zube_store_delete (s_store, key, mod[slot], &revision);
        else
            status = zube_store_put (s_store, key, "x", 1, mod[slot], &revision);
        ZT_ASSERT_MSG (status == ZUBE_OK, "round %d: %s", round, zube_status_reason (status));
        ZT_ASSERT_MSG (revision > last, "round %d: revision %" PRId64 " after %" PRId64, round,
                       revision, last);
        last = revision;
        mod[slot] = (mod[slot] && round % 5 == 0) ? 0 : revision;
        ZT_ASSERT_INT_EQ (s_revision (), revision);
    }
    s_case_end ();
}

static void
test_events_one_per_write_in_order (void)
{
    s_case_begin ();
    int64_t start = s_revision ();
    const char *a = s_key ("pods/ns/a"), *b = s_key ("pods/ns/b"), *c = s_key ("pods/ns/c");
    int64_t a1 = s_put_ok (a, "a1", 0);
    int64_t b1 = s_put_ok (b, "b1", 0);
    //  Failed writes yield no event.
    ZT_ASSERT_INT_EQ (zube_store_put (s_store, a, "no", 2, 0, NULL), ZUBE_CONFLICT);
    ZT_ASSERT_INT_EQ (zube_store_delete (s_store, c, ZUBE_STORE_ANY_REVISION, NULL), ZUBE_NOT_FOUND);
    int64_t a2 = s_put_ok (a, "a2", a1);
    int64_t b2 = 0;
    ZT_ASSERT_INT_EQ (zube_store_delete (s_store, b, b1, &b2), ZUBE_OK);
    int64_t c1 = s_put_ok (c, "c1", 0);

    s_events_t events;
    s_read_events (&events, start, 0);
    ZT_ASSERT_INT_EQ (events.count, 5);
    struct {
        zube_store_event_type_t type;
        int64_t revision, prev;
        const char *key, *value;
    } expected[] = {
        {ZUBE_STORE_EVENT_ADDED, a1, 0, a, "a1"},
        {ZUBE_STORE_EVENT_ADDED, b1, 0, b, "b1"},
        {ZUBE_STORE_EVENT_MODIFIED, a2, a1, a, "a2"},
        {ZUBE_STORE_EVENT_DELETED, b2, b1, b, "b1"},
        {ZUBE_STORE_EVENT_ADDED, c1, 0, c, "c1"},
    };
    for (size_t i = 0; i < 5; i++) {
        ZT_ASSERT_INT_EQ (events.items[i].type, expected[i].type);
        ZT_ASSERT_INT_EQ (events.items[i].revision, expected[i].revision);
        ZT_ASSERT_INT_EQ (events.items[i].prev_revision, expected[i].prev);
        ZT_ASSERT_STR_EQ (events.items[i].key, expected[i].key);
        ZT_ASSERT_STR_EQ (events.items[i].value, expected[i].value);
    }
    //  From the middle, with a limit, and from the end.
    s_read_events (&events, a2, 0);
    ZT_ASSERT_INT_EQ (events.count, 2);
    ZT_ASSERT_INT_EQ (events.items[0].revision, b2);
    s_read_events (&events, start, 2);
    ZT_ASSERT_INT_EQ (events.count, 2);
    ZT_ASSERT_INT_EQ (events.items[1].revision, b1);
    s_read_events (&events, c1, 0);
    ZT_ASSERT_INT_EQ (events.count, 0);
    ZT_ASSERT_STR_EQ (zube_store_event_type_name (ZUBE_STORE_EVENT_DELETED), "DELETED");
    s_case_end ();
}

static void
test_compaction_then_gone (void)
{
    s_case_begin ();
    int64_t revisions[10];
    for (int i = 0; i < 10; i++)
        revisions[i] = s_put_ok (s_key ("events/ns/e%d", i), "e", 0);
    int64_t middle = revisions[5];
    ZT_ASSERT_INT_EQ (zube_store_compact (s_store, middle), ZUBE_OK);
    int64_t revision = 0, compacted = 0;
    ZT_ASSERT_INT_EQ (zube_store_revision (s_store, &revision, &compacted), ZUBE_OK);
    ZT_ASSERT_INT_EQ (compacted, middle);
    ZT_ASSERT_INT_EQ (revision, revisions[9]);

    ZT_ASSERT_INT_EQ (zube_store_events (s_store, middle - 1, 0, NULL, NULL, NULL), ZUBE_GONE);
    ZT_ASSERT_INT_EQ (zube_store_events (s_store, 0, 0, NULL, NULL, NULL), ZUBE_GONE);
    s_events_t events;
    s_read_events (&events, middle, 0);
    ZT_ASSERT_INT_EQ (events.count, 4);
    ZT_ASSERT_INT_EQ (events.items[0].revision, revisions[6]);

    //  Compacting to an older revision is a no-op; past the end is refused.
    ZT_ASSERT_INT_EQ (zube_store_compact (s_store, revisions[2]), ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_store_revision (s_store, NULL, &compacted), ZUBE_OK);
    ZT_ASSERT_INT_EQ (compacted, middle);
    ZT_ASSERT_INT_EQ (zube_store_compact (s_store, revisions[9] + 100), ZUBE_BAD_REQUEST);
    //  Objects are untouched by compaction.
    for (int i = 0; i < 10; i++)
        s_expect_value (s_key ("events/ns/e%d", i), "e", revisions[i]);
    //  Writes go on after it, and their events are there.
    int64_t later = s_put_ok (s_key ("events/ns/e0"), "f", revisions[0]);
    s_read_events (&events, revisions[9], 0);
    ZT_ASSERT_INT_EQ (events.count, 1);
    ZT_ASSERT_INT_EQ (events.items[0].revision, later);
    s_case_end ();
}

static void
test_snapshot_and_restore_round_trip (void)
{
    s_case_begin ();
    int64_t start = s_revision ();
    int64_t a = s_put_ok (s_key ("secrets/ns/a"), "alpha", 0);
    int64_t b = s_put_ok (s_key ("secrets/ns/b"), "beta", 0);
    int64_t at_snapshot = s_revision ();
    char *dir = zt_tempdir ("snapshot");
    char path[512];
    snprintf (path, sizeof path, "%s/backup", dir);
    ZT_ASSERT_MSG (zube_store_snapshot_file (s_store, path) == ZUBE_OK, "snapshot: %s",
                   zube_store_error (s_store));

    //  Changes after the snapshot...
    s_put_ok (s_key ("secrets/ns/c"), "gamma", 0);
    s_put_ok (s_key ("secrets/ns/a"), "changed", a);
    ZT_ASSERT_INT_EQ (zube_store_delete (s_store, s_key ("secrets/ns/b"), b, NULL), ZUBE_OK);

    //  ...a snapshot that is not one is refused and changes nothing...
    char garbage[512];
    snprintf (garbage, sizeof garbage, "%s/garbage", dir);
    FILE *file = fopen (garbage, "w");
    ZT_ASSERT (file);
    for (int i = 0; i < 2000; i++)
        fputs ("not a snapshot ", file);
    fclose (file);
    zube_status_t status = zube_store_restore_file (s_store, garbage);
    ZT_ASSERT_MSG (status != ZUBE_OK, "restoring garbage succeeded");
    s_expect_value (s_key ("secrets/ns/a"), "changed", 0);

    //  ...and the restore brings back exactly the snapshot.
    int64_t before_restore = s_revision ();
    ZT_ASSERT_MSG (zube_store_restore_file (s_store, path) == ZUBE_OK, "restore: %s",
                   zube_store_error (s_store));
    bool forward = s_backend->restore_moves_forward;
    s_expect_value (s_key ("secrets/ns/a"), "alpha", forward ? 0 : a);
    s_expect_value (s_key ("secrets/ns/b"), "beta", forward ? 0 : b);
    s_expect_absent (s_key ("secrets/ns/c"));
    s_events_t events;
    if (!forward) {
        ZT_ASSERT_INT_EQ (s_revision (), at_snapshot);
        s_read_events (&events, start, 0);
        ZT_ASSERT_INT_EQ (events.count, 2);
        ZT_ASSERT_INT_EQ (events.items[1].revision, b);
    }
    else {
        //  The restore is new writes, one event each: a back to alpha, b
        //  again, c gone.
        ZT_ASSERT (s_revision () > before_restore);
        s_read_events (&events, before_restore, 0);
        ZT_ASSERT_INT_EQ (events.count, 3);
        ZT_ASSERT_INT_EQ (events.items[0].type, ZUBE_STORE_EVENT_MODIFIED);
        ZT_ASSERT_STR_EQ (events.items[0].value, "alpha");
        ZT_ASSERT_INT_EQ (events.items[1].type, ZUBE_STORE_EVENT_ADDED);
        ZT_ASSERT_INT_EQ (events.items[2].type, ZUBE_STORE_EVENT_DELETED);
    }
    int64_t restored = s_revision ();
    //  Revisions go on from the snapshot's.
    int64_t next = s_put_ok (s_key ("secrets/ns/c"), "delta", 0);
    ZT_ASSERT (next > at_snapshot);
    ZT_ASSERT (next > restored);

    //  And the restored store survives a reopen.
    zube_store_close (&s_store);
    s_store = s_open ();
    s_expect_value (s_key ("secrets/ns/c"), "delta", next);
    zt_rmtree (dir);
    free (dir);
    s_case_end ();
}

//  One batch: independent writes and groups, some of which lose.
static void
test_group_commit_mixed_outcomes (void)
{
    s_case_begin ();
    char x[256];
    snprintf (x, sizeof x, "%s", s_key ("pods/ns/x"));
    int64_t x1 = s_put_ok (x, "x1", 0);
    int64_t before = s_revision ();
    zube_store_op_t ops[] = {
        //  0: an independent create: OK
        {.type = ZUBE_STORE_PUT, .key = s_key ("pods/ns/new1"), .value = "n1", .value_size = 2},
        //  1: an update with a stale revision: CONFLICT
        {.type = ZUBE_STORE_PUT, .key = x, .value = "lost", .value_size = 4, .expect_revision = x1 - 1},
        //  2: a create of an existing key: CONFLICT
        {.type = ZUBE_STORE_PUT, .key = x, .value = "dup", .value_size = 3, .expect_revision = 0},
        //  3, 4: a group, both fine: OK, OK
        {.type = ZUBE_STORE_PUT, .key = s_key ("pods/ns/g1"), .value = "g1", .value_size = 2, .group = 7},
        {.type = ZUBE_STORE_PUT, .key = x, .value = "x2", .value_size = 2, .expect_revision = x1, .group = 7},
        //  5, 6: a group whose second write is stale (x changed in 4): both CONFLICT
        {.type = ZUBE_STORE_PUT, .key = s_key ("pods/ns/g2"), .value = "g2", .value_size = 2, .group = 9},
        {.type = ZUBE_STORE_PUT, .key = x, .value = "x3", .value_size = 2, .expect_revision = x1, .group = 9},
        //  7: a delete of a missing key: NOT_FOUND
        {.type = ZUBE_STORE_DELETE, .key = s_key ("pods/ns/missing"), .expect_revision = ZUBE_STORE_ANY_REVISION},
        //  8: an invalid key: BAD_REQUEST, alone
        {.type = ZUBE_STORE_PUT, .key = "", .value = "bad", .value_size = 3},
        //  9: another independent create: OK
        {.type = ZUBE_STORE_PUT, .key = s_key ("pods/ns/new2"), .value = "n2", .value_size = 2},
    };
    size_t count = sizeof ops / sizeof ops[0];
    zube_store_result_t results[sizeof ops / sizeof ops[0]];
    memset (results, 0xff, sizeof results);
    zube_status_t status = zube_store_txn_commit (s_store, ops, count, results);
    ZT_ASSERT_MSG (status == ZUBE_OK, "txn_commit: %s", zube_store_error (s_store));
    zube_status_t expected[] = {ZUBE_OK, ZUBE_CONFLICT, ZUBE_CONFLICT, ZUBE_OK, ZUBE_OK,
                                ZUBE_CONFLICT, ZUBE_CONFLICT, ZUBE_NOT_FOUND, ZUBE_BAD_REQUEST,
                                ZUBE_OK};
    for (size_t i = 0; i < count; i++)
        ZT_ASSERT_MSG (results[i].status == expected[i], "op %zu: %s, expected %s", i,
                       zube_status_reason (results[i].status), zube_status_reason (expected[i]));
    //  Each write took its own revision, increasing in batch order (where
    //  a group is one backend txn with one revision, its writes share it;
    //  where groups commit concurrently, in the order they committed).
    size_t order[sizeof ops / sizeof ops[0]];
    size_t written = 0;
    for (size_t i = 0; i < count; i++)
        if (results[i].status == ZUBE_OK) {
            size_t at = written++;
            while (s_backend->commit_order_revisions && at > 0
                   && results[order[at - 1]].revision > results[i].revision) {
                order[at] = order[at - 1];
                at--;
            }
            order[at] = i;
        }
    ZT_ASSERT_INT_EQ (written, 4);
    int64_t last = before;
    for (size_t k = 0; k < written; k++) {
        size_t i = order[k], previous = k > 0 ? order[k - 1] : 0;
        bool shared = s_backend->group_shares_revision && k > 0 && ops[i].group
                   && ops[i].group == ops[previous].group;
        ZT_ASSERT_MSG (shared ? results[i].revision == last : results[i].revision > last,
                       "op %zu: revision %" PRId64 " after %" PRId64, i, results[i].revision,
                       last);
        last = results[i].revision;
    }
    ZT_ASSERT_INT_EQ (s_revision (), last);
    //  Losers learn the key's revision: x was at x1 before the batch.
    ZT_ASSERT_INT_EQ (results[1].revision, x1);
    ZT_ASSERT_INT_EQ (results[2].revision, x1);
    ZT_ASSERT_INT_EQ (results[5].revision, 0);
    ZT_ASSERT_INT_EQ (results[7].revision, 0);

    s_expect_value (s_key ("pods/ns/new1"), "n1", results[0].revision);
    s_expect_value (s_key ("pods/ns/g1"), "g1", results[3].revision);
    s_expect_value (x, "x2", results[4].revision);
    s_expect_absent (s_key ("pods/ns/g2"));
    s_expect_value (s_key ("pods/ns/new2"), "n2", results[9].revision);
    //  One event per write, in revision order.
    s_events_t events;
    s_read_events (&events, before, 0);
    ZT_ASSERT_INT_EQ (events.count, 4);
    for (size_t k = 0; k < written && k < events.count; k++) {
        size_t i = order[k];
        ZT_ASSERT_INT_EQ (events.items[k].revision, results[i].revision);
        //  (s_key's buffer is reused: the written keys by name)
        const char *name = i == 0 ? "pods/ns/new1" : i == 3 ? "pods/ns/g1" : i == 9 ? "pods/ns/new2" : NULL;
        ZT_ASSERT_STR_EQ (events.items[k].key, name ? s_key ("%s", name) : x);
        ZT_ASSERT_INT_EQ (events.items[k].type,
                          i == 4 ? ZUBE_STORE_EVENT_MODIFIED : ZUBE_STORE_EVENT_ADDED);
    }

    //  A batch where everything loses writes nothing.
    zube_store_op_t losers[] = {
        {.type = ZUBE_STORE_PUT, .key = x, .value = "no", .value_size = 2, .expect_revision = x1},
        {.type = ZUBE_STORE_DELETE, .key = s_key ("pods/ns/g2"), .expect_revision = 1},
    };
    ZT_ASSERT_INT_EQ (zube_store_txn_commit (s_store, losers, 2, results), ZUBE_OK);
    ZT_ASSERT_INT_EQ (results[0].status, ZUBE_CONFLICT);
    ZT_ASSERT_INT_EQ (results[1].status, ZUBE_CONFLICT);
    ZT_ASSERT_INT_EQ (s_revision (), last);

    //  A large batch of independent creates.
    zube_store_op_t many[100];
    zube_store_result_t many_results[100];
    char many_keys[100][128];
    for (int i = 0; i < 100; i++) {
        snprintf (many_keys[i], sizeof many_keys[i], "%s", s_key ("pods/many/p-%03d", i));
        many[i] = (zube_store_op_t) {.type = ZUBE_STORE_PUT, .key = many_keys[i], .value = "m",
                                     .value_size = 1};
    }
    ZT_ASSERT_INT_EQ (zube_store_txn_commit (s_store, many, 100, many_results), ZUBE_OK);
    //  Each its own revision, the next 100 (in batch order but where
    //  groups commit concurrently).
    bool taken[100] = {false};
    for (int i = 0; i < 100; i++) {
        ZT_ASSERT_INT_EQ (many_results[i].status, ZUBE_OK);
        int64_t at = many_results[i].revision - last - 1;
        ZT_ASSERT_MSG (at >= 0 && at < 100 && !taken[at], "op %d: revision %" PRId64, i,
                       many_results[i].revision);
        taken[at] = true;
        if (!s_backend->commit_order_revisions)
            ZT_ASSERT (many_results[i].revision > (i ? many_results[i - 1].revision : last));
    }
    ZT_ASSERT_INT_EQ (s_revision (), last + 100);
    s_case_end ();
}

static void
test_reopen_keeps_everything (void)
{
    s_case_begin ();
    int64_t start = s_revision ();
    int64_t revisions[20];
    for (int i = 0; i < 20; i++)
        revisions[i] = s_put_ok (s_key ("nodes/node-%02d", i), "ready", 0);
    int64_t updated = s_put_ok (s_key ("nodes/node-00"), "notready", revisions[0]);
    ZT_ASSERT_INT_EQ (zube_store_delete (s_store, s_key ("nodes/node-01"), revisions[1], NULL),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_store_compact (s_store, revisions[4]), ZUBE_OK);
    int64_t revision = 0, compacted = 0;
    zube_store_revision (s_store, &revision, &compacted);
    zube_store_close (&s_store);

    s_store = s_open ();
    int64_t revision_after = 0, compacted_after = 0;
    ZT_ASSERT_INT_EQ (zube_store_revision (s_store, &revision_after, &compacted_after), ZUBE_OK);
    ZT_ASSERT_INT_EQ (revision_after, revision);
    ZT_ASSERT_INT_EQ (compacted_after, compacted);
    s_expect_value (s_key ("nodes/node-00"), "notready", updated);
    s_expect_absent (s_key ("nodes/node-01"));
    for (int i = 2; i < 20; i++)
        s_expect_value (s_key ("nodes/node-%02d", i), "ready", revisions[i]);
    s_events_t events;
    s_read_events (&events, revisions[4], 0);
    ZT_ASSERT_INT_EQ (events.count, 15 + 2);
    ZT_ASSERT_INT_EQ (zube_store_events (s_store, start, 0, NULL, NULL, NULL), ZUBE_GONE);
    ZT_ASSERT (s_put_ok (s_key ("nodes/node-20"), "ready", 0) > revision);
    s_case_end ();
}

//  The child: writes batches of creates as fast as it can and reports each
//  acknowledged write as "revision key\n" on fd, until killed.
static void
s_crash_writer (int fd)
{
    zube_store_t *store = zube_store_open (s_plugins, s_url, NULL, NULL);
    if (!store)
        _exit (3);
    char keys[4][256];
    for (int batch = 0; batch < 100000; batch++) {
        zube_store_op_t ops[4];
        zube_store_result_t results[4];
        for (int i = 0; i < 4; i++) {
            snprintf (keys[i], sizeof keys[i], "%scrash/k-%06d", s_prefix, batch * 4 + i);
            ops[i] = (zube_store_op_t) {.type = ZUBE_STORE_PUT, .key = keys[i],
                                        .value = keys[i], .value_size = strlen (keys[i])};
        }
        if (zube_store_txn_commit (store, ops, 4, results) != ZUBE_OK)
            _exit (4);
        for (int i = 0; i < 4; i++) {
            if (results[i].status != ZUBE_OK)
                _exit (5);
            char line[400];
            int len = snprintf (line, sizeof line, "%" PRId64 " %s\n", results[i].revision, keys[i]);
            if (write (fd, line, len) != len)
                _exit (6);
        }
    }
    _exit (0);
}

static void
test_acknowledged_writes_survive_kill_9 (void)
{
    s_case_begin ();
    //  The child opens its own store: a store is never shared across fork.
    zube_store_close (&s_store);
    int pipe_fds[2];
    ZT_ASSERT (pipe (pipe_fds) == 0);
    pid_t child = fork ();
    ZT_ASSERT (child >= 0);
    if (child == 0) {
        close (pipe_fds[0]);
        s_crash_writer (pipe_fds[1]);
    }
    close (pipe_fds[1]);

    //  Let it acknowledge a few hundred writes, then kill it mid-stream.
    size_t cap = 1 << 16, used = 0;
    char *acks = malloc (cap);
    int64_t deadline = zt_now_ms () + 20000;
    int lines = 0;
    bool killed = false;
    while (true) {
        if (!killed && (lines >= 300 || zt_now_ms () > deadline)) {
            kill (child, SIGKILL);
            killed = true;
        }
        struct pollfd poll_fd = {.fd = pipe_fds[0], .events = POLLIN};
        if (poll (&poll_fd, 1, 100) <= 0)
            continue;
        if (used + 4096 > cap)
            acks = realloc (acks, cap *= 2);
        ssize_t got = read (pipe_fds[0], acks + used, cap - used - 1);
        if (got <= 0)
            break;
        for (ssize_t i = 0; i < got; i++)
            lines += acks[used + i] == '\n';
        used += got;
    }
    acks[used] = 0;
    close (pipe_fds[0]);
    int wait_status = 0;
    waitpid (child, &wait_status, 0);
    ZT_ASSERT_MSG (WIFSIGNALED (wait_status) && WTERMSIG (wait_status) == SIGKILL,
                   "the writer ended by itself (status %d) after %d writes", wait_status, lines);
    ZT_ASSERT_MSG (lines >= 50, "only %d writes acknowledged before the deadline", lines);

    //  Every acknowledged write is there, at its revision.
    s_store = s_open ();
    int64_t highest = 0;
    int checked = 0;
    char *line = acks;
    while (*line) {
        char *end = strchr (line, '\n');
        if (!end)
            break;  //  a partial last line was never fully acknowledged
        *end = 0;
        char *space = strchr (line, ' ');
        ZT_ASSERT (space);
        *space = 0;
        int64_t revision = strtoll (line, NULL, 10);
        s_expect_value (space + 1, space + 1, revision);
        if (revision > highest)
            highest = revision;
        checked++;
        line = end + 1;
    }
    free (acks);
    ZT_ASSERT_INT_EQ (checked, lines);
    //  Revisions never go backwards, and the store takes writes again
    //  (no lock left behind by the dead writer).
    ZT_ASSERT (s_revision () >= highest);
    ZT_ASSERT (s_put_ok (s_key ("after-crash"), "ok", 0) > highest);
    s_case_end ();
}

//  ---------------------------------------------------------------------

static const struct {
    const char *name;
    void (*fn) (void);
} s_cases[] = {
    {"create and get", test_create_and_get},
    {"update with the current revision", test_update_with_current_revision},
    {"update with a stale revision conflicts", test_update_with_stale_revision_conflicts},
    {"delete", test_delete},
    {"range with prefix and pagination", test_range_with_prefix_and_pagination},
    {"revisions strictly increase", test_revisions_strictly_increase},
    {"events: one per write, in order", test_events_one_per_write_in_order},
    {"compaction, then GONE for older revisions", test_compaction_then_gone},
    {"snapshot and restore round trip", test_snapshot_and_restore_round_trip},
    {"group commit with mixed outcomes", test_group_commit_mixed_outcomes},
    {"reopen after close keeps everything", test_reopen_keeps_everything},
    {"acknowledged writes survive kill -9 of the writer", test_acknowledged_writes_survive_kill_9},
};

static void
s_run_backend (const s_backend_t *backend, const char *label)
{
    s_backend = backend;
    char why[256] = "";
    bool started = backend->start (why, sizeof why);
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        char name[256];
        snprintf (name, sizeof name, "%s: %s", label, s_cases[i].name);
        if (!started) {
            zt_skip (name, why);
            continue;
        }
        zt_run (name, s_cases[i].fn);
        //  A failed case longjmps out and leaves its store open.
        if (s_store)
            zube_store_close (&s_store);
        if (s_url) {
            backend->discard (s_url);
            free (s_url);
            s_url = NULL;
        }
    }
    if (started)
        backend->stop ();
}

int
main (int argc, char **argv)
{
    signal (SIGPIPE, SIG_IGN);
    s_plugins = zube_plugin_host_new ();
    const char *url = argc > 1 ? argv[1] : getenv ("ZUBE_STORE_URL");
    if (url && *url) {
        const s_backend_t *chosen = NULL;
        for (size_t i = 0; i < sizeof s_backends / sizeof s_backends[0]; i++)
            if (strcmp (url, s_backends[i].scheme) == 0)
                chosen = &s_backends[i];
        static s_backend_t explicit_backend;
        if (!chosen) {
            //  What the URL's backend cannot do, from its fixture.
            s_explicit_url = url;
            explicit_backend = s_explicit_backend;
            char plugin[65];
            for (size_t i = 0; i < sizeof s_backends / sizeof s_backends[0]; i++)
                if (zube_store_url_plugin (url, plugin, sizeof plugin) == 0
                    && strcmp (plugin, s_backends[i].scheme) == 0) {
                    explicit_backend.group_shares_revision = s_backends[i].group_shares_revision;
                    explicit_backend.commit_order_revisions = s_backends[i].commit_order_revisions;
                    explicit_backend.restore_moves_forward = s_backends[i].restore_moves_forward;
                }
            chosen = &explicit_backend;
        }
        s_run_backend (chosen, url);
    }
    else
        for (size_t i = 0; i < sizeof s_backends / sizeof s_backends[0]; i++)
            s_run_backend (&s_backends[i], s_backends[i].scheme);
    zube_plugin_host_destroy (&s_plugins);
    return zt_done ();
}
