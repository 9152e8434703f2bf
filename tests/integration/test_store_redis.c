/*  test_store_redis - what only the redis store plugin does, against a real
    redis-server this test starts (durable: appendonly, appendfsync always)
    on a free port in a temporary directory: its URL forms and options, its
    key layout, concurrent writers in several processes, redis-server
    killed with SIGKILL in the middle of writes, lost and hung connections,
    and its portable snapshots. What every backend does is in
    test_store_conformance.c. Every case is skipped when redis-server is
    not installed. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include "zube/plugin_host.h"
#include "zube/store_client.h"
//  zt_rmtree's snprintf into a fixed buffer trips -Wformat-truncation when
//  GCC inlines it here; the paths involved are short.
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zube_testproc.h"
#include "../zube_test.h"

static zube_plugin_host_t *s_plugins;
static zt_redis_t s_redis;
//  Each case uses databases of its own.
static int s_last_db;

static char *
s_url (int db)
{
    char *url = NULL;
    if (asprintf (&url, "redis://127.0.0.1:%d/%d", s_redis.port, db) < 0)
        abort ();
    return url;
}

static zube_store_t *
s_open (const char *url, const char *const *options)
{
    char *error = NULL;
    zube_store_t *store = zube_store_open (s_plugins, url, options, &error);
    ZT_ASSERT_MSG (store, "cannot open %s: %s", url, error ? error : "?");
    return store;
}

static char *
s_open_error (const char *url, const char *const *options)
{
    char *error = NULL;
    zube_store_t *store = zube_store_open (s_plugins, url, options, &error);
    bool opened = store != NULL;
    zube_store_close (&store);
    ZT_ASSERT_MSG (!opened, "%s opened, expected a failure", url);
    ZT_ASSERT (error);
    return error;
}

//  One command on database db, through a connection of its own.
static redisReply *
s_raw (int db, const char *format, ...)
{
    redisContext *redis = redisConnect ("127.0.0.1", s_redis.port);
    ZT_ASSERT_MSG (redis && !redis->err, "cannot reach redis-server on port %d",
                   s_redis.port);
    redisReply *selected = redisCommand (redis, "SELECT %d", db);
    ZT_ASSERT (selected && selected->type == REDIS_REPLY_STATUS);
    freeReplyObject (selected);
    va_list args;
    va_start (args, format);
    redisReply *reply = redisvCommand (redis, format, args);
    va_end (args);
    redisFree (redis);
    ZT_ASSERT_MSG (reply, "redis command \"%s\" got no answer", format);
    ZT_ASSERT_MSG (reply->type != REDIS_REPLY_ERROR, "redis command \"%s\": %s", format,
                   reply->str);
    return reply;
}

static long long
s_raw_integer (int db, const char *format, const char *arg)
{
    redisReply *reply = s_raw (db, format, arg);
    long long value = reply->type == REDIS_REPLY_INTEGER  ? reply->integer
                      : reply->type == REDIS_REPLY_STRING ? strtoll (reply->str, NULL, 10)
                                                          : -1;
    freeReplyObject (reply);
    return value;
}

static int64_t
s_put_ok (zube_store_t *store, const char *key, const char *value, int64_t expect)
{
    int64_t revision = 0;
    zube_status_t status =
        zube_store_put (store, key, value, strlen (value), expect, &revision);
    ZT_ASSERT_MSG (status == ZUBE_OK, "put %s: %s %s", key, zube_status_reason (status),
                   zube_store_error (store));
    return revision;
}

static void
s_expect_value (zube_store_t *store, const char *key, const char *value, int64_t revision)
{
    void *got = NULL;
    size_t size = 0;
    int64_t got_revision = 0;
    zube_status_t status = zube_store_get (store, key, &got, &size, &got_revision);
    ZT_ASSERT_MSG (status == ZUBE_OK, "get %s: %s %s", key, zube_status_reason (status),
                   zube_store_error (store));
    bool same = size == strlen (value) && memcmp (got, value, size) == 0;
    free (got);
    ZT_ASSERT_MSG (same, "get %s: not the value written", key);
    if (revision)
        ZT_ASSERT_MSG (got_revision == revision,
                       "get %s: revision %" PRId64 ", expected %" PRId64, key,
                       got_revision, revision);
}

//  ---------------------------------------------------------------------

static void
test_url_forms_and_options (void)
{
    char url[128];
    snprintf (url, sizeof url, "redis://127.0.0.1:%d/%d/x", s_redis.port, ++s_last_db);
    char *error = s_open_error (url, NULL);
    ZT_ASSERT_STR_CONTAINS (error, "invalid database number");
    free (error);
    error = s_open_error ("redis://127.0.0.1:http/1", NULL);
    ZT_ASSERT_STR_CONTAINS (error, "invalid port");
    free (error);
    error = s_open_error ("redis://127.0.0.1:1:2", NULL);
    ZT_ASSERT_STR_CONTAINS (error, "invalid port");
    free (error);

    char *good = s_url (++s_last_db);
    const char *unknown[] = {"nosync=1", NULL};
    error = s_open_error (good, unknown);
    ZT_ASSERT_STR_CONTAINS (error, "unknown option \"nosync\"");
    free (error);
    const char *bad_prefix[] = {"prefix=a}b", NULL};
    error = s_open_error (good, bad_prefix);
    ZT_ASSERT_STR_CONTAINS (error, "option prefix");
    free (error);
    const char *bad_timeout[] = {"timeout_ms=0", NULL};
    error = s_open_error (good, bad_timeout);
    ZT_ASSERT_STR_CONTAINS (error, "option timeout_ms");
    free (error);

    //  Nothing listens there: a clear UNAVAILABLE naming the address.
    int port = zt_free_port (1);
    snprintf (url, sizeof url, "redis://127.0.0.1:%d", port);
    error = s_open_error (url, NULL);
    char expected[64];
    snprintf (expected, sizeof expected, "redis 127.0.0.1:%d/0: cannot connect", port);
    ZT_ASSERT_STR_CONTAINS (error, expected);
    ZT_ASSERT_STR_CONTAINS (error, "Unavailable");
    free (error);

    //  Two prefixes in one database are two independent stores.
    const char *prefix_a[] = {"prefix=a", "timeout_ms=2000", NULL};
    const char *prefix_b[] = {"prefix=b", NULL};
    zube_store_t *a = s_open (good, prefix_a);
    zube_store_t *b = s_open (good, prefix_b);
    ZT_ASSERT_INT_EQ (s_put_ok (a, "/registry/x", "in a", 0), 1);
    ZT_ASSERT_INT_EQ (s_put_ok (a, "/registry/y", "in a", 0), 2);
    ZT_ASSERT_INT_EQ (s_put_ok (b, "/registry/x", "in b", 0), 1);
    s_expect_value (a, "/registry/x", "in a", 1);
    s_expect_value (b, "/registry/x", "in b", 1);
    ZT_ASSERT_INT_EQ (zube_store_get (b, "/registry/y", NULL, NULL, NULL),
                      ZUBE_NOT_FOUND);
    zube_store_close (&a);
    zube_store_close (&b);
    free (good);

    //  A store another zube format wrote is refused, not overwritten.
    int db = ++s_last_db;
    freeReplyObject (s_raw (db, "HSET {zube}:meta format 99"));
    char *other = s_url (db);
    error = s_open_error (other, NULL);
    ZT_ASSERT_STR_CONTAINS (error, "format 99");
    free (error);
    free (other);
}

//  The keys are what the plugin's header comment says, so redis-cli shows
//  a store as it is.
static void
test_key_layout (void)
{
    int db = ++s_last_db;
    char *url = s_url (db);
    zube_store_t *store = s_open (url, NULL);
    int64_t a1 = s_put_ok (store, "/registry/pods/ns/a", "A1", 0);
    int64_t b1 = s_put_ok (store, "/registry/pods/ns/b", "B1", 0);
    int64_t a2 = s_put_ok (store, "/registry/pods/ns/a", "A2", a1);
    int64_t b2 = 0;
    ZT_ASSERT_INT_EQ (zube_store_delete (store, "/registry/pods/ns/b", b1, &b2), ZUBE_OK);

    ZT_ASSERT_INT_EQ (s_raw_integer (db, "HGET {zube}:meta %s", "revision"), b2);
    ZT_ASSERT_INT_EQ (s_raw_integer (db, "HGET {zube}:revs %s", "/registry/pods/ns/a"),
                      a2);
    redisReply *reply = s_raw (db, "HGET {zube}:values %s", "/registry/pods/ns/a");
    ZT_ASSERT_STR_EQ (reply->str, "A2");
    freeReplyObject (reply);
    reply = s_raw (db, "ZRANGEBYLEX {zube}:index - +");
    ZT_ASSERT_INT_EQ (reply->elements, 1);
    ZT_ASSERT_STR_EQ (reply->element[0]->str, "/registry/pods/ns/a");
    freeReplyObject (reply);
    //  Events: a stream whose ids are the revisions.
    reply = s_raw (db, "XRANGE {zube}:events - +");
    ZT_ASSERT_INT_EQ (reply->elements, 4);
    char id[32];
    snprintf (id, sizeof id, "%" PRId64 "-0", b2);
    ZT_ASSERT_STR_EQ (reply->element[3]->element[0]->str, id);
    redisReply *fields = reply->element[3]->element[1];
    ZT_ASSERT_INT_EQ (fields->elements, 8);
    ZT_ASSERT_STR_EQ (fields->element[0]->str, "t");
    ZT_ASSERT_STR_EQ (fields->element[1]->str, "DELETED");
    ZT_ASSERT_STR_EQ (fields->element[3]->str, "/registry/pods/ns/b");
    ZT_ASSERT_INT_EQ (strtoll (fields->element[5]->str, NULL, 10), b1);
    ZT_ASSERT_STR_EQ (fields->element[7]->str, "B1");
    freeReplyObject (reply);
    //  Compaction trims the stream and records how far.
    ZT_ASSERT_INT_EQ (zube_store_compact (store, a2), ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_raw_integer (db, "XLEN %s", "{zube}:events"), 1);
    ZT_ASSERT_INT_EQ (s_raw_integer (db, "HGET {zube}:meta %s", "compacted"), a2);
    zube_store_close (&store);
    free (url);
}

//  Values are bytes (NULs included, up to the apiserver's 1.5 MiB), keys
//  any bytes but NUL: a prefix ending in 0xff still ranges right.
static void
test_binary_values_and_keys (void)
{
    char *url = s_url (++s_last_db);
    zube_store_t *store = s_open (url, NULL);
    size_t size = 1536 * 1024;
    unsigned char *value = malloc (size);
    for (size_t i = 0; i < size; i++)
        value[i] = (unsigned char)(i * 7);
    int64_t revision = 0;
    ZT_ASSERT_INT_EQ (zube_store_put (store, "/registry/big", value, size, 0, &revision),
                      ZUBE_OK);
    void *got = NULL;
    size_t got_size = 0;
    ZT_ASSERT_INT_EQ (zube_store_get (store, "/registry/big", &got, &got_size, NULL),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (got_size, size);
    ZT_ASSERT (memcmp (got, value, size) == 0);
    free (got);
    free (value);

    const char *keys[] = {"/r/\xff",
                          "/r/\xff\xff"
                          "a",
                          "/r/\xff\xff\xff", "/r/\xfe", "/s"};
    for (size_t i = 0; i < 5; i++)
        s_put_ok (store, keys[i], "k", 0);
    struct {
        const char *prefix;
        size_t count;
    } ranges[] = {
        {"/r/\xff", 3}, {"/r/\xff\xff", 2}, {"/r/", 4}, {"/r/\xfe", 1}, {"", 6}};
    for (size_t i = 0; i < 5; i++) {
        zube_store_range_t range = {.prefix = ranges[i].prefix};
        zube_store_range_result_t result;
        ZT_ASSERT_INT_EQ (zube_store_range (store, &range, NULL, NULL, &result), ZUBE_OK);
        ZT_ASSERT_MSG (result.count == ranges[i].count,
                       "range %zu: %zu keys, expected %zu", i, result.count,
                       ranges[i].count);
    }
    //  Keys over the limit are refused.
    char long_key[1100];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    ZT_ASSERT_INT_EQ (zube_store_put (store, long_key, "x", 1, 0, NULL),
                      ZUBE_BAD_REQUEST);
    ZT_ASSERT_INT_EQ (zube_store_get (store, long_key, NULL, NULL, NULL),
                      ZUBE_BAD_REQUEST);
    zube_store_close (&store);
    free (url);
}

//  ---------------------------------------------------------------------
//  Concurrent writers

typedef struct {
    int successes;
    int conflicts;
    int errors;
    char error[200];
} s_tally_t;

//  A child: read-modify-write of one counter until run_ms passed.
static void
s_counter_child (const char *url, const char *key, int go_fd, int result_fd,
                 int64_t run_ms)
{
    char go;
    if (read (go_fd, &go, 1) != 1)
        _exit (2);
    zube_store_t *store = zube_store_open (s_plugins, url, NULL, NULL);
    if (!store)
        _exit (3);
    s_tally_t tally = {0};
    int64_t end = zt_now_ms () + run_ms;
    while (zt_now_ms () < end) {
        void *value = NULL;
        int64_t revision = 0;
        zube_status_t status = zube_store_get (store, key, &value, NULL, &revision);
        long count = status == ZUBE_OK ? strtol (value, NULL, 10) : 0;
        free (value);
        if (status == ZUBE_OK) {
            char next[32];
            int len = snprintf (next, sizeof next, "%ld", count + 1);
            status = zube_store_put (store, key, next, (size_t)len, revision, NULL);
        }
        if (status == ZUBE_OK)
            tally.successes++;
        else if (status == ZUBE_CONFLICT)
            tally.conflicts++;
        else {
            tally.errors++;
            snprintf (tally.error, sizeof tally.error, "%s", zube_store_error (store));
        }
    }
    zube_store_close (&store);
    if (write (result_fd, &tally, sizeof tally) != sizeof tally)
        _exit (4);
    _exit (0);
}

typedef struct {
    int64_t last_revision;
    long last_value;
    size_t count;
    bool broken;
    char why[200];
} s_chain_t;

//  Each event of the counter: the next value, chained to the one before.
static int
s_check_chain (void *arg, const zube_store_event_t *event)
{
    s_chain_t *chain = arg;
    long value = strtol ((const char *)event->value, NULL, 10);
    if (event->prev_revision != chain->last_revision || value != chain->last_value + 1) {
        snprintf (chain->why, sizeof chain->why,
                  "event %" PRId64 ": prev %" PRId64 " value %ld after revision %" PRId64
                  " value %ld",
                  event->revision, event->prev_revision, value, chain->last_revision,
                  chain->last_value);
        chain->broken = true;
        return 1;
    }
    chain->last_revision = event->revision;
    chain->last_value = value;
    chain->count++;
    return 0;
}

//  Two processes increment one counter by read-modify-write: the counter
//  ends equal to the successful increments, each one event chained to the
//  one before, and the losers got CONFLICT.
static void
test_concurrent_read_modify_write (void)
{
    char *url = s_url (++s_last_db);
    const char *key = "/registry/counters/ns/hits";
    zube_store_t *store = s_open (url, NULL);
    int64_t start = s_put_ok (store, key, "0", 0);
    int go[2], results[2];
    ZT_ASSERT (pipe (go) == 0 && pipe (results) == 0);
    pid_t children[2];
    for (int i = 0; i < 2; i++) {
        children[i] = fork ();
        ZT_ASSERT (children[i] >= 0);
        if (children[i] == 0) {
            close (go[1]);
            close (results[0]);
            s_counter_child (url, key, go[0], results[1], 1000);
        }
    }
    close (go[0]);
    close (results[1]);
    ZT_ASSERT (write (go[1], "gg", 2) == 2);
    close (go[1]);
    s_tally_t total = {0};
    for (int i = 0; i < 2; i++) {
        s_tally_t tally;
        ZT_ASSERT_INT_EQ (read (results[0], &tally, sizeof tally), sizeof tally);
        ZT_ASSERT_MSG (tally.errors == 0, "a writer got %d errors: %s", tally.errors,
                       tally.error);
        total.successes += tally.successes;
        total.conflicts += tally.conflicts;
    }
    close (results[0]);
    for (int i = 0; i < 2; i++) {
        int status = 0;
        waitpid (children[i], &status, 0);
        ZT_ASSERT_MSG (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                       "writer %d: status %d", i, status);
    }
    printf ("# read-modify-write: %d increments, %d conflicts in 1 s from 2 processes\n",
            total.successes, total.conflicts);
    ZT_ASSERT (total.successes > 0);
    ZT_ASSERT_MSG (total.conflicts > 0, "the two writers never raced");
    char expected[32];
    snprintf (expected, sizeof expected, "%d", total.successes);
    s_expect_value (store, key, expected, 0);
    s_chain_t chain = {.last_revision = start, .last_value = 0};
    ZT_ASSERT_INT_EQ (zube_store_events (store, start, 0, s_check_chain, &chain, NULL),
                      ZUBE_OK);
    ZT_ASSERT_MSG (!chain.broken, "%s", chain.why);
    ZT_ASSERT_INT_EQ (chain.count, total.successes);
    zube_store_close (&store);
    free (url);
}

//  A child: batches of 32 creates (one group of 2 in each), results to a
//  file as (revision, writer, index) triples.
static void
s_batch_child (const char *url, int writer, const char *path, int go_fd)
{
    char go;
    if (read (go_fd, &go, 1) != 1)
        _exit (2);
    zube_store_t *store = zube_store_open (s_plugins, url, NULL, NULL);
    FILE *out = fopen (path, "w");
    if (!store || !out)
        _exit (3);
    for (int batch = 0; batch < 100; batch++) {
        zube_store_op_t ops[32];
        zube_store_result_t results[32];
        char keys[32][64];
        for (int i = 0; i < 32; i++) {
            snprintf (keys[i], sizeof keys[i], "/registry/batch/w%d/%05d", writer,
                      batch * 32 + i);
            ops[i] = (zube_store_op_t){.type = ZUBE_STORE_PUT,
                                       .key = keys[i],
                                       .value = keys[i],
                                       .value_size = strlen (keys[i]),
                                       .group = i == 5 || i == 6 ? 1 : 0};
        }
        if (zube_store_txn_commit (store, ops, 32, results) != ZUBE_OK)
            _exit (4);
        for (int i = 0; i < 32; i++) {
            if (results[i].status != ZUBE_OK)
                _exit (5);
            fprintf (out, "%" PRId64 " %d %d\n", results[i].revision, writer,
                     batch * 32 + i);
        }
    }
    fclose (out);
    zube_store_close (&store);
    _exit (0);
}

typedef struct {
    int64_t expected;
    size_t count;
    bool gap;
} s_contiguous_t;

static int
s_check_contiguous (void *arg, const zube_store_event_t *event)
{
    s_contiguous_t *check = arg;
    if (event->revision != check->expected) {
        check->gap = true;
        return 1;
    }
    check->expected++;
    check->count++;
    return 0;
}

static int
s_compare_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

//  Two processes commit batches at once: every write gets its own
//  revision, the revisions have no gaps, and each has its one event.
static void
test_concurrent_batches (void)
{
    char *url = s_url (++s_last_db);
    zube_store_t *store = s_open (url, NULL);
    int64_t start = s_put_ok (store, "/registry/start", "s", 0);
    char *dir = zt_tempdir ("redis-batches");
    int go[2];
    ZT_ASSERT (pipe (go) == 0);
    pid_t children[2];
    char paths[2][300];
    for (int i = 0; i < 2; i++) {
        snprintf (paths[i], sizeof paths[i], "%s/writer-%d", dir, i);
        children[i] = fork ();
        ZT_ASSERT (children[i] >= 0);
        if (children[i] == 0) {
            close (go[1]);
            s_batch_child (url, i, paths[i], go[0]);
        }
    }
    close (go[0]);
    ZT_ASSERT (write (go[1], "gg", 2) == 2);
    close (go[1]);
    for (int i = 0; i < 2; i++) {
        int status = 0;
        waitpid (children[i], &status, 0);
        ZT_ASSERT_MSG (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                       "writer %d: status %d", i, status);
    }
    size_t total = 2 * 100 * 32;
    int64_t *revisions = malloc (total * sizeof *revisions);
    size_t count = 0;
    for (int i = 0; i < 2; i++) {
        FILE *in = fopen (paths[i], "r");
        ZT_ASSERT (in);
        int64_t revision;
        int writer, index;
        while (count < total &&
               fscanf (in, "%" SCNd64 " %d %d", &revision, &writer, &index) == 3)
            revisions[count++] = revision;
        fclose (in);
    }
    zt_rmtree (dir);
    free (dir);
    ZT_ASSERT_INT_EQ (count, total);
    qsort (revisions, count, sizeof *revisions, s_compare_int64);
    for (size_t i = 0; i < count; i++)
        ZT_ASSERT_MSG (revisions[i] == start + 1 + (int64_t)i, "revision %zu is %" PRId64,
                       i, revisions[i]);
    free (revisions);
    s_contiguous_t check = {.expected = start + 1};
    ZT_ASSERT_INT_EQ (
        zube_store_events (store, start, 0, s_check_contiguous, &check, NULL), ZUBE_OK);
    ZT_ASSERT (!check.gap);
    ZT_ASSERT_INT_EQ (check.count, total);
    zube_store_close (&store);
    free (url);
}

//  ---------------------------------------------------------------------
//  Crashes and lost connections

//  A child: batches of 4 creates until killed. Each acknowledged write is
//  "A revision key", each failed batch "U reason".
static void
s_crash_writer (const char *url, int fd)
{
    zube_store_t *store = zube_store_open (s_plugins, url, NULL, NULL);
    if (!store)
        _exit (3);
    char keys[4][64];
    for (int batch = 0;; batch++) {
        zube_store_op_t ops[4];
        zube_store_result_t results[4];
        for (int i = 0; i < 4; i++) {
            snprintf (keys[i], sizeof keys[i], "/registry/crash/k-%07d", batch * 4 + i);
            ops[i] = (zube_store_op_t){.type = ZUBE_STORE_PUT,
                                       .key = keys[i],
                                       .value = keys[i],
                                       .value_size = strlen (keys[i])};
        }
        char line[400];
        zube_status_t status = zube_store_txn_commit (store, ops, 4, results);
        if (status != ZUBE_OK) {
            int len = snprintf (line, sizeof line, "U %s %s\n",
                                zube_status_reason (status), zube_store_error (store));
            if (write (fd, line, (size_t)len) != len)
                _exit (6);
            usleep (5000);
            continue;
        }
        for (int i = 0; i < 4; i++) {
            if (results[i].status != ZUBE_OK)
                _exit (5);
            int len = snprintf (line, sizeof line, "A %" PRId64 " %s\n",
                                results[i].revision, keys[i]);
            if (write (fd, line, (size_t)len) != len)
                _exit (6);
        }
    }
}

typedef struct {
    char *text;
    size_t used;
    size_t cap;
    //  Complete lines counted so far, and where counting stopped.
    size_t scanned;
    int acks;
} s_lines_t;

//  Reads what is there (waiting up to wait_ms); false at EOF.
static bool
s_read_lines (int fd, s_lines_t *lines, int wait_ms)
{
    struct pollfd poll_fd = {.fd = fd, .events = POLLIN};
    if (poll (&poll_fd, 1, wait_ms) <= 0)
        return true;
    if (lines->cap - lines->used < 8192)
        lines->text = realloc (lines->text, lines->cap = lines->cap * 2 + 65536);
    ssize_t got = read (fd, lines->text + lines->used, lines->cap - lines->used - 1);
    if (got <= 0)
        return false;
    lines->used += (size_t)got;
    lines->text[lines->used] = 0;
    for (char *end; (end = strchr (lines->text + lines->scanned, '\n'));) {
        lines->acks += lines->text[lines->scanned] == 'A';
        lines->scanned = (size_t)(end - lines->text) + 1;
    }
    return true;
}

typedef struct {
    int64_t *revisions;
    char (*keys)[64];
    size_t count;
    size_t next;
    size_t matched;
    char why[200];
} s_acked_t;

//  Walks the event log beside the acknowledged writes (both in revision
//  order): each acknowledged write has its ADDED event.
static int
s_match_acked (void *arg, const zube_store_event_t *event)
{
    s_acked_t *acked = arg;
    if (acked->next < acked->count && event->revision == acked->revisions[acked->next]) {
        if (event->type != ZUBE_STORE_EVENT_ADDED ||
            event->key_size != strlen (acked->keys[acked->next]) ||
            memcmp (event->key, acked->keys[acked->next], event->key_size) != 0) {
            snprintf (acked->why, sizeof acked->why,
                      "event %" PRId64 " is not the write of %s", event->revision,
                      acked->keys[acked->next]);
            return 1;
        }
        acked->matched++;
        acked->next++;
    }
    return 0;
}

//  redis-server is killed with SIGKILL five times while a writer commits
//  as fast as it can, and restarted on its AOF: every acknowledged write
//  is there at its revision with its event, revisions never go back, and
//  the writer saw UNAVAILABLE meanwhile, not a crash.
static void
test_redis_killed_mid_stream (void)
{
    char *url = s_url (++s_last_db);
    int fds[2];
    ZT_ASSERT (pipe (fds) == 0);
    pid_t writer = fork ();
    ZT_ASSERT (writer >= 0);
    if (writer == 0) {
        close (fds[0]);
        s_crash_writer (url, fds[1]);
    }
    close (fds[1]);
    s_lines_t lines = {0};
    int kills = 0, acks_at_kill = 0;
    int64_t deadline = zt_now_ms () + 30000;
    while (kills < 5 && zt_now_ms () < deadline) {
        ZT_ASSERT_MSG (s_read_lines (fds[0], &lines, 50), "the writer died");
        if (lines.acks - acks_at_kill >= 200) {
            zt_redis_stop (&s_redis, SIGKILL);
            kills++;
            //  A moment down, so the writer sees it.
            usleep (50000);
            ZT_ASSERT_MSG (zt_redis_start (&s_redis), "redis-server did not restart");
            acks_at_kill = lines.acks;
        }
    }
    //  Some writes after the last restart, then stop the writer.
    while (lines.acks - acks_at_kill < 200 && zt_now_ms () < deadline)
        ZT_ASSERT_MSG (s_read_lines (fds[0], &lines, 50), "the writer died");
    ZT_ASSERT_MSG (kills == 5 && lines.acks - acks_at_kill >= 200,
                   "only %d kills and %d writes in 30 s", kills, lines.acks);
    kill (writer, SIGKILL);
    while (s_read_lines (fds[0], &lines, 1000))
        ;
    close (fds[0]);
    int status = 0;
    waitpid (writer, &status, 0);
    ZT_ASSERT_MSG (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
                   "the writer ended by itself (%d)", status);

    //  Parse: acknowledged writes in order, and the failures.
    s_acked_t acked = {.revisions = malloc ((size_t)lines.acks * sizeof (int64_t)),
                       .keys = malloc ((size_t)lines.acks * sizeof *acked.keys)};
    int unavailable = 0;
    char first_failure[300] = "";
    for (char *line = lines.text, *end; (end = strchr (line, '\n')); line = end + 1) {
        *end = 0;
        if (line[0] == 'A' && acked.count < (size_t)lines.acks) {
            int64_t revision = 0;
            ZT_ASSERT (sscanf (line, "A %" SCNd64 " %63s", &revision,
                               acked.keys[acked.count]) == 2);
            ZT_ASSERT_MSG (!acked.count || revision > acked.revisions[acked.count - 1],
                           "revision %" PRId64 " acknowledged after %" PRId64, revision,
                           acked.revisions[acked.count - 1]);
            acked.revisions[acked.count++] = revision;
        } else if (line[0] == 'U') {
            char expected[64];
            snprintf (expected, sizeof expected,
                      "U %s redis 127.0.0.1:", zube_status_reason (ZUBE_UNAVAILABLE));
            ZT_ASSERT_STR_CONTAINS (line, expected);
            if (!unavailable++)
                snprintf (first_failure, sizeof first_failure, "%s", line + 2);
        }
    }
    free (lines.text);
    printf (
        "# %zu writes acknowledged across 5 SIGKILLs of redis-server; %d batches failed, "
        "the first with: %s\n",
        acked.count, unavailable, first_failure);
    ZT_ASSERT (unavailable > 0);

    zube_store_t *store = s_open (url, NULL);
    for (size_t i = 0; i < acked.count; i++)
        s_expect_value (store, acked.keys[i], acked.keys[i], acked.revisions[i]);
    int64_t revision = 0;
    ZT_ASSERT_INT_EQ (zube_store_revision (store, &revision, NULL), ZUBE_OK);
    ZT_ASSERT (revision >= acked.revisions[acked.count - 1]);
    ZT_ASSERT_INT_EQ (zube_store_events (store, 0, 0, s_match_acked, &acked, NULL),
                      ZUBE_OK);
    ZT_ASSERT_MSG (acked.matched == acked.count,
                   "%zu of %zu acknowledged writes have their event%s%s", acked.matched,
                   acked.count, acked.why[0] ? ": " : "", acked.why);
    ZT_ASSERT (s_put_ok (store, "/registry/after", "x", 0) > revision);
    zube_store_close (&store);
    free (acked.revisions);
    free (acked.keys);
    free (url);
}

//  Every operation while redis-server is down: UNAVAILABLE naming the
//  server. SIGPIPE keeps its default action here, as in a host that did
//  not ignore it, so a write into a closed socket would kill the test.
static void
s_expect_all_unavailable (zube_store_t *store, const char *address)
{
    int64_t revision = 0;
    zube_store_range_t range = {.prefix = "/registry/"};
    zube_store_range_result_t result;
    zube_status_t statuses[] = {
        zube_store_put (store, "/registry/k", "v", 1, ZUBE_STORE_ANY_REVISION, NULL),
        zube_store_get (store, "/registry/k", NULL, NULL, NULL),
        zube_store_range (store, &range, NULL, NULL, &result),
        zube_store_revision (store, &revision, NULL),
        zube_store_events (store, 0, 0, NULL, NULL, NULL),
        zube_store_compact (store, 1),
        zube_store_delete (store, "/registry/k", ZUBE_STORE_ANY_REVISION, NULL),
    };
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        ZT_ASSERT_MSG (statuses[i] == ZUBE_UNAVAILABLE,
                       "operation %zu: %s, expected Unavailable", i,
                       zube_status_reason (statuses[i]));
    ZT_ASSERT_STR_CONTAINS (zube_store_error (store), address);
    ZT_ASSERT_STR_CONTAINS (zube_store_error (store), "cannot connect");
    int fds[2];
    ZT_ASSERT (pipe (fds) == 0);
    ZT_ASSERT_INT_EQ (zube_store_snapshot (store, fds[1]), ZUBE_UNAVAILABLE);
    close (fds[1]);
    close (fds[0]);
}

static void
test_connection_loss (void)
{
    void (*old_handler) (int) = signal (SIGPIPE, SIG_DFL);
    int db = ++s_last_db;
    char *url = s_url (db);
    zube_store_t *store = s_open (url, NULL);
    zube_plugin_handle_t *plugin = zube_store_plugin (store);
    int64_t first = s_put_ok (store, "/registry/a", "1", 0);

    //  The server drops every client while we are idle: noticed before the
    //  next command, which goes on a new connection.
    freeReplyObject (s_raw (0, "CLIENT KILL TYPE normal SKIPME yes"));
    s_expect_value (store, "/registry/a", "1", first);
    freeReplyObject (s_raw (0, "CLIENT KILL TYPE normal SKIPME yes"));
    int64_t second = s_put_ok (store, "/registry/a", "2", first);
    //  The script cache is flushed: EVALSHA fails with NOSCRIPT, EVAL works.
    freeReplyObject (s_raw (0, "SCRIPT FLUSH"));
    int64_t third = s_put_ok (store, "/registry/a", "3", second);

    //  The server cuts a connection in the middle of a write (a value over
    //  its bulk limit): UNAVAILABLE, and no SIGPIPE.
    freeReplyObject (s_raw (0, "CONFIG SET proto-max-bulk-len 1mb"));
    size_t size = 32 << 20;
    char *big = calloc (1, size);
    zube_status_t status = zube_store_put (store, "/registry/big", big, size, 0, NULL);
    free (big);
    freeReplyObject (s_raw (0, "CONFIG SET proto-max-bulk-len 512mb"));
    ZT_ASSERT_MSG (status == ZUBE_UNAVAILABLE, "cut off write: %s %s",
                   zube_status_reason (status), zube_store_error (store));
    ZT_ASSERT_STR_CONTAINS (zube_store_error (store), "connection lost");
    ZT_ASSERT_STR_CONTAINS (zube_store_error (store), "may or may not have been applied");
    int64_t fourth = s_put_ok (store, "/registry/a", "4", third);

    //  The server is gone: every operation answers UNAVAILABLE, at once.
    char address[64];
    snprintf (address, sizeof address, "redis 127.0.0.1:%d/%d", s_redis.port, db);
    zt_redis_stop (&s_redis, SIGKILL);
    int64_t before = zt_now_ms ();
    s_expect_all_unavailable (store, address);
    ZT_ASSERT (zt_now_ms () - before < 2000);
    //  Back: the next call reconnects, and nothing acknowledged is lost.
    ZT_ASSERT (zt_redis_start (&s_redis));
    s_expect_value (store, "/registry/a", "4", fourth);
    ZT_ASSERT (s_put_ok (store, "/registry/b", "b", 0) > fourth);
    ZT_ASSERT (zube_plugin_handle_counter (plugin, "store_reconnects_total") >= 4);
    zube_store_close (&store);

    //  A server that hangs (SIGSTOP): UNAVAILABLE after timeout_ms, and the
    //  write that hung may still happen once it wakes.
    const char *quick[] = {"timeout_ms=300", NULL};
    store = s_open (url, quick);
    bool frozen = zt_freeze (s_redis.pid);
    before = zt_now_ms ();
    status = zube_store_put (store, "/registry/c", "c", 1, 0, NULL);
    int64_t waited = zt_now_ms () - before;
    kill (s_redis.pid, SIGCONT);
    ZT_ASSERT_MSG (frozen, "the server did not stop on SIGSTOP");
    ZT_ASSERT_INT_EQ (status, ZUBE_UNAVAILABLE);
    ZT_ASSERT_STR_CONTAINS (zube_store_error (store), "no answer within 300 ms");
    ZT_ASSERT_MSG (waited >= 250 && waited < 2000, "waited %" PRId64 " ms", waited);
    ZT_ASSERT (s_put_ok (store, "/registry/d", "d", 0) > fourth);
    zube_store_close (&store);
    free (url);
    signal (SIGPIPE, old_handler);
}

//  ---------------------------------------------------------------------
//  Snapshots

typedef struct {
    int fd;
    char *data;
    size_t size;
} s_drain_t;

static void *
s_drain (void *arg)
{
    s_drain_t *drain = arg;
    size_t cap = 1 << 16;
    drain->data = malloc (cap);
    ssize_t got;
    while ((got = read (drain->fd, drain->data + drain->size, cap - drain->size)) > 0) {
        drain->size += (size_t)got;
        if (drain->size == cap)
            drain->data = realloc (drain->data, cap *= 2);
    }
    return NULL;
}

//  The snapshot of store, through a pipe.
static s_drain_t
s_snapshot (zube_store_t *store)
{
    int fds[2];
    ZT_ASSERT (pipe (fds) == 0);
    s_drain_t drain = {.fd = fds[0]};
    pthread_t reader;
    pthread_create (&reader, NULL, s_drain, &drain);
    zube_status_t status = zube_store_snapshot (store, fds[1]);
    close (fds[1]);
    pthread_join (reader, NULL);
    close (fds[0]);
    ZT_ASSERT_MSG (status == ZUBE_OK, "snapshot: %s", zube_store_error (store));
    return drain;
}

static zube_status_t
s_restore (zube_store_t *store, const char *data, size_t size)
{
    char *dir = zt_tempdir ("redis-restore");
    char path[300];
    snprintf (path, sizeof path, "%s/snapshot", dir);
    FILE *file = fopen (path, "w");
    ZT_ASSERT (file && fwrite (data, 1, size, file) == size);
    fclose (file);
    zube_status_t status = zube_store_restore_file (store, path);
    zt_rmtree (dir);
    free (dir);
    return status;
}

//  Snapshots stream through a pipe, are the same bytes for the same store,
//  restore into another namespace, and a damaged one changes nothing.
static void
test_snapshots (void)
{
    int db = ++s_last_db;
    char *url = s_url (db);
    const char *prefix_copy[] = {"prefix=copy", NULL};
    zube_store_t *store = s_open (url, NULL);
    zube_store_t *copy = s_open (url, prefix_copy);
    s_drain_t empty = s_snapshot (store);
    for (int i = 0; i < 300; i++) {
        char key[64], value[64];
        snprintf (key, sizeof key, "/registry/pods/ns-%d/p%03d", i % 3, i);
        snprintf (value, sizeof value, "value %d", i);
        s_put_ok (store, key, value, 0);
    }
    ZT_ASSERT_INT_EQ (zube_store_delete (store, "/registry/pods/ns-0/p000",
                                         ZUBE_STORE_ANY_REVISION, NULL),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_store_compact (store, 100), ZUBE_OK);
    s_drain_t full = s_snapshot (store);
    s_drain_t again = s_snapshot (store);
    ZT_ASSERT (full.size == again.size && memcmp (full.data, again.data, full.size) == 0);
    free (again.data);

    //  Into another prefix of the same database: an exact copy.
    s_put_ok (copy, "/registry/only-in-copy", "x", 0);
    ZT_ASSERT_MSG (s_restore (copy, full.data, full.size) == ZUBE_OK, "restore: %s",
                   zube_store_error (copy));
    int64_t revision = 0, compacted = 0;
    ZT_ASSERT_INT_EQ (zube_store_revision (copy, &revision, &compacted), ZUBE_OK);
    ZT_ASSERT_INT_EQ (revision, 301);
    ZT_ASSERT_INT_EQ (compacted, 100);
    ZT_ASSERT_INT_EQ (zube_store_get (copy, "/registry/only-in-copy", NULL, NULL, NULL),
                      ZUBE_NOT_FOUND);
    ZT_ASSERT_INT_EQ (zube_store_get (copy, "/registry/pods/ns-0/p000", NULL, NULL, NULL),
                      ZUBE_NOT_FOUND);
    s_expect_value (copy, "/registry/pods/ns-2/p299", "value 299", 300);
    zube_store_range_t range = {.prefix = "/registry/pods/ns-1/"};
    zube_store_range_result_t result;
    ZT_ASSERT_INT_EQ (zube_store_range (copy, &range, NULL, NULL, &result), ZUBE_OK);
    ZT_ASSERT_INT_EQ (result.count, 100);
    ZT_ASSERT_INT_EQ (zube_store_events (copy, 99, 0, NULL, NULL, NULL), ZUBE_GONE);
    s_contiguous_t check = {.expected = 101};
    ZT_ASSERT_INT_EQ (zube_store_events (copy, 100, 0, s_check_contiguous, &check, NULL),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (check.count, 201);
    s_drain_t copied = s_snapshot (copy);
    ZT_ASSERT (copied.size == full.size &&
               memcmp (copied.data, full.data, full.size) == 0);
    free (copied.data);
    //  Writes go on from the snapshot's revision, events included.
    ZT_ASSERT_INT_EQ (s_put_ok (copy, "/registry/next", "n", 0), 302);

    //  Damaged snapshots: refused, the store unchanged, nothing left behind.
    size_t cuts[] = {0, 5, 12, 40, full.size / 2, full.size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        zube_status_t status = s_restore (copy, full.data, cuts[i]);
        ZT_ASSERT_MSG (status == ZUBE_BAD_REQUEST, "a snapshot cut at %zu: %s", cuts[i],
                       zube_status_reason (status));
    }
    //  One bit of one value flipped: only the checksum can tell.
    char *flip = memmem (full.data, full.size, "value 150", 9);
    ZT_ASSERT (flip);
    flip[8] ^= 0x01;
    ZT_ASSERT_INT_EQ (s_restore (copy, full.data, full.size), ZUBE_BAD_REQUEST);
    ZT_ASSERT_STR_CONTAINS (zube_store_error (copy), "checksum mismatch");
    flip[8] ^= 0x01;
    ZT_ASSERT_INT_EQ (zube_store_revision (copy, &revision, NULL), ZUBE_OK);
    ZT_ASSERT_INT_EQ (revision, 302);
    redisReply *leftovers = s_raw (db, "KEYS *restore*");
    ZT_ASSERT_INT_EQ (leftovers->elements, 0);
    freeReplyObject (leftovers);

    //  The empty snapshot empties a store.
    ZT_ASSERT_INT_EQ (s_restore (copy, empty.data, empty.size), ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_store_revision (copy, &revision, NULL), ZUBE_OK);
    ZT_ASSERT_INT_EQ (revision, 0);
    ZT_ASSERT_INT_EQ (zube_store_range (copy, &range, NULL, NULL, &result), ZUBE_OK);
    ZT_ASSERT_INT_EQ (result.count, 0);
    ZT_ASSERT_INT_EQ (s_put_ok (copy, "/registry/first", "f", 0), 1);
    //  The source was never touched.
    ZT_ASSERT_INT_EQ (zube_store_revision (store, &revision, NULL), ZUBE_OK);
    ZT_ASSERT_INT_EQ (revision, 301);
    free (empty.data);
    free (full.data);
    zube_store_close (&store);
    zube_store_close (&copy);
    free (url);
}

//  ---------------------------------------------------------------------

//  Informational: creates per second in batches of 1 and 32 against this
//  redis-server (appendfsync always), one client.
static void
test_throughput (void)
{
    char *url = s_url (++s_last_db);
    zube_store_t *store = s_open (url, NULL);
    size_t batches[] = {1, 32};
    char value[512];
    memset (value, 'v', sizeof value);
    for (size_t b = 0; b < 2; b++) {
        size_t batch = batches[b], written = 0;
        int64_t start = zt_now_ms (), elapsed = 0;
        zube_store_op_t ops[32];
        zube_store_result_t results[32];
        char keys[32][64];
        while ((elapsed = zt_now_ms () - start) < 700) {
            for (size_t i = 0; i < batch; i++) {
                snprintf (keys[i], sizeof keys[i], "/registry/pods/bench-%zu/p%07zu",
                          batch, written + i);
                ops[i] = (zube_store_op_t){.type = ZUBE_STORE_PUT,
                                           .key = keys[i],
                                           .value = value,
                                           .value_size = sizeof value};
            }
            ZT_ASSERT_INT_EQ (zube_store_txn_commit (store, ops, batch, results),
                              ZUBE_OK);
            written += batch;
        }
        printf ("# redis creates, 512-byte values, batches of %zu: %.0f/s\n", batch,
                written * 1000.0 / (double)elapsed);
    }
    zube_store_close (&store);
    free (url);
}

static void
s_not_started (void)
{
    ZT_FAIL ("redis-server did not start");
}

static const struct {
    const char *name;
    void (*fn) (void);
} s_cases[] = {
    {"URL forms and options", test_url_forms_and_options},
    {"key layout", test_key_layout},
    {"binary values and keys", test_binary_values_and_keys},
    {"concurrent read-modify-write from 2 processes", test_concurrent_read_modify_write},
    {"concurrent batches from 2 processes", test_concurrent_batches},
    {"redis-server killed with SIGKILL mid-stream", test_redis_killed_mid_stream},
    {"connection loss", test_connection_loss},
    {"snapshots", test_snapshots},
    {"throughput", test_throughput},
};

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    setvbuf (stdout, NULL, _IOLBF, 0);
    s_plugins = zube_plugin_host_new ();
    bool installed = zt_which ("redis-server") != NULL;
    bool started = installed && zt_redis_start (&s_redis);
    if (installed && !started)
        printf ("# redis-server did not start; its log: %s/redis.log\n", s_redis.dir);
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        if (!installed) {
            zt_skip (s_cases[i].name, "redis-server is not installed");
            continue;
        }
        //  A case that killed the server and failed leaves it down.
        if (started && s_redis.pid <= 0)
            zt_redis_start (&s_redis);
        zt_run (s_cases[i].name, started ? s_cases[i].fn : s_not_started);
    }
    zt_redis_destroy (&s_redis);
    zube_plugin_host_destroy (&s_plugins);
    return zt_done ();
}
