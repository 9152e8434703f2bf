/*  test_etcd_json - what the etcd plugin adds to libzubejson's reader
    (dotted lookups, int64 in strings, base64, documents in a stream) and
    its buffer (plugins/store/etcd/etcd_json.c, compiled into this test:
    the plugin exports nothing but its descriptor). */
#define _GNU_SOURCE
#include "../../plugins/store/etcd/etcd_json.h"
#include "../zube_test.h"
#include <stdint.h>

static void
test_parses_what_etcd_sends (void)
{
    const char *text =
        "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"revision\":\"42\","
        "\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"L3JlZ2lzdHJ5L2E=\",\"mod_revision\":"
        "\"41\","
        "\"version\":\"3\",\"value\":\"eA==\"},{\"key\":\"Yg==\"}],\"more\":true,"
        "\"count\":\"2\",\"n\":-1.5e3,\"z\":null,\"f\":false}";
    etcd_json_t json = {0};
    ZT_ASSERT_INT_EQ (etcd_json_parse (&json, text, strlen (text)), 0);
    ZT_ASSERT_INT_EQ (
        etcd_json_int (etcd_json_get (json.root, "header.revision"), -1), 42);
    ZT_ASSERT_INT_EQ (
        etcd_json_int (etcd_json_get (json.root, "header.nothing"), -1), -1);
    ZT_ASSERT_INT_EQ (etcd_json_int (etcd_json_get (json.root, "n"), -7), -7);
    ZT_ASSERT (etcd_json_bool (etcd_json_get (json.root, "more")));
    ZT_ASSERT (!etcd_json_bool (etcd_json_get (json.root, "f")));
    ZT_ASSERT (!etcd_json_bool (etcd_json_get (json.root, "absent")));
    const zube_json_t *kvs = etcd_json_get (json.root, "kvs");
    ZT_ASSERT_INT_EQ (etcd_json_count (kvs), 2);
    ZT_ASSERT_INT_EQ (etcd_json_count (etcd_json_get (json.root, "more")), 0);
    const zube_json_t *kv = kvs->items[0];
    char *data = NULL;
    size_t size = 0;
    ZT_ASSERT_INT_EQ (
        etcd_json_base64 (etcd_json_get (kv, "key"), &data, &size), 0);
    ZT_ASSERT_STR_EQ (data, "/registry/a");
    ZT_ASSERT_INT_EQ (size, 11);
    free (data);
    ZT_ASSERT_INT_EQ (etcd_json_int (etcd_json_get (kv, "mod_revision"), 0),
                      41);
    kv = kvs->items[1];
    //  An absent value is an empty one (etcd omits empty fields).
    ZT_ASSERT_INT_EQ (
        etcd_json_base64 (etcd_json_get (kv, "value"), &data, &size), 0);
    ZT_ASSERT_INT_EQ (size, 0);
    free (data);
    etcd_json_free (&json);
}

static void
test_strings_and_escapes (void)
{
    const char *text = "{\"m\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\u20ac\\ud83d\\ude00\"}";
    etcd_json_t json = {0};
    ZT_ASSERT_INT_EQ (etcd_json_parse (&json, text, strlen (text)), 0);
    char *value = etcd_json_string (etcd_json_get (json.root, "m"));
    ZT_ASSERT_STR_EQ (value, "a\"b\\c/d\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    free (value);
    ZT_ASSERT (etcd_json_string (json.root) == NULL);
    etcd_json_free (&json);
}

static void
test_refuses_what_is_not_json (void)
{
    const char *bad[] = {"",           "{",
                         "{\"a\"}",    "{\"a\":}",
                         "[1,]",       "{\"a\":1,}",
                         "\"open",     "tru",
                         "01x",        "-",
                         "1.",         "1e",
                         "{} {}",      "{\"a\":\"\\x\"}",
                         "[\"\x01\"]", "{a:1}",
                         "[1 2]",      "nul"};
    etcd_json_t json = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ZT_ASSERT_MSG (etcd_json_parse (&json, bad[i], strlen (bad[i])) != 0 &&
                           json.error[0],
                       "parsed \"%s\"", bad[i]);
    //  Nesting has a limit, and hitting it is an error, not a crash.
    char deep[400];
    memset (deep, '[', 200);
    memset (deep + 200, ']', 200);
    ZT_ASSERT (etcd_json_parse (&json, deep, sizeof deep) != 0);
    ZT_ASSERT (etcd_json_parse (&json, deep + 150, 100) == 0);
    etcd_json_free (&json);
}

static void
test_base64_round_trip (void)
{
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)(255 - i);
    for (size_t size = 0; size < 10; size++) {
        etcd_buf_t buf = {0};
        etcd_buf_append (&buf, "{\"v\":\"", 6);
        etcd_buf_base64 (&buf, bytes, size);
        etcd_buf_append (&buf, "\"}", 2);
        ZT_ASSERT (!buf.failed);
        etcd_json_t json = {0};
        ZT_ASSERT_INT_EQ (etcd_json_parse (&json, buf.data, buf.size), 0);
        char *data = NULL;
        size_t got = 0;
        ZT_ASSERT_INT_EQ (
            etcd_json_base64 (etcd_json_get (json.root, "v"), &data, &got), 0);
        ZT_ASSERT_INT_EQ (got, size);
        ZT_ASSERT (memcmp (data, bytes, size) == 0);
        free (data);
        etcd_json_free (&json);
        etcd_buf_free (&buf);
    }
    const char *text = "{\"a\":\"QQ\",\"b\":\"Q\",\"c\":\"Q!==\",\"d\":1}";
    etcd_json_t json = {0};
    ZT_ASSERT_INT_EQ (etcd_json_parse (&json, text, strlen (text)), 0);
    char *data = NULL;
    size_t size = 0;
    //  Unpadded is accepted; a lone sextet, a bad letter or a non-string is not.
    ZT_ASSERT_INT_EQ (
        etcd_json_base64 (etcd_json_get (json.root, "a"), &data, &size), 0);
    ZT_ASSERT_STR_EQ (data, "A");
    free (data);
    ZT_ASSERT (etcd_json_base64 (etcd_json_get (json.root, "b"), &data, &size) !=
               0);
    ZT_ASSERT (etcd_json_base64 (etcd_json_get (json.root, "c"), &data, &size) !=
               0);
    ZT_ASSERT (etcd_json_base64 (etcd_json_get (json.root, "d"), &data, &size) !=
               0);
    etcd_json_free (&json);
}

//  A watch answer arrives in pieces: documents are found whole.
static void
test_stream_of_documents (void)
{
    const char *stream = " {\"result\":{\"s\":\"}{\\\"\"}}\n{\"result\":[1]}\n{\"x\":";
    size_t size = strlen (stream);
    size_t first = etcd_json_complete (stream, size);
    ZT_ASSERT_INT_EQ (first, 24);
    for (size_t cut = 0; cut < first; cut++)
        ZT_ASSERT_INT_EQ (etcd_json_complete (stream, cut), 0);
    size_t second = etcd_json_complete (stream + first, size - first);
    ZT_ASSERT_INT_EQ (second, 15);
    ZT_ASSERT_INT_EQ (etcd_json_complete (stream + first + second, size - first - second),
                      0);
    etcd_json_t json = {0};
    ZT_ASSERT_INT_EQ (etcd_json_parse (&json, stream, first), 0);
    etcd_json_free (&json);
}

static void
test_buffer (void)
{
    etcd_buf_t buf = {0};
    for (int i = 0; i < 1000; i++)
        etcd_buf_printf (&buf, "%04d", i);
    ZT_ASSERT_INT_EQ (buf.size, 4000);
    char long_text[600];
    memset (long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = 0;
    etcd_buf_printf (&buf, "%s", long_text);
    ZT_ASSERT_INT_EQ (buf.size, 4599);
    etcd_buf_consume (&buf, 3996);
    ZT_ASSERT (strncmp (buf.data, "0999xx", 6) == 0);
    etcd_buf_free (&buf);
}

//  Random bytes and mutations of a real answer never crash the reader
//  (run under AddressSanitizer in CI).
static void
test_mutations_do_not_crash (void)
{
    const char *seed =
        "{\"result\":{\"header\":{\"revision\":\"4\"},\"events\":[{\"type\":"
        "\"DELETE\",\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"4\"},"
        "\"prev_kv\":{\"key\":\"YQ==\",\"value\":\"eQ==\"}}]}}";
    size_t size = strlen (seed);
    char *text = malloc (size);
    uint32_t random = 12345;
    etcd_json_t json = {0};
    for (int round = 0; round < 20000; round++) {
        memcpy (text, seed, size);
        for (int flips = 0; flips < 1 + round % 4; flips++) {
            random = random * 1103515245 + 12345;
            size_t at = (random >> 8) % size;
            random = random * 1103515245 + 12345;
            text[at] = "{}[]\",:\\0a-.eE "[(random >> 8) % 16];
        }
        size_t cut = round % 3 ? size : (random >> 4) % size;
        if (etcd_json_parse (&json, text, cut) == 0) {
            char *data = NULL, *string = NULL;
            size_t got;
            const zube_json_t *events = etcd_json_get (json.root, "result.events");
            for (size_t e = 0; e < etcd_json_count (events); e++)
                if (etcd_json_base64 (etcd_json_get (events->items[e], "kv.key"), &data,
                                      &got) == 0)
                    free (data);
            string = etcd_json_string (etcd_json_get (json.root, "result.header.revision"));
            free (string);
        }
        etcd_json_complete (text, cut);
    }
    free (text);
    etcd_json_free (&json);
}

int
main (void)
{
    ZT_RUN (test_parses_what_etcd_sends);
    ZT_RUN (test_strings_and_escapes);
    ZT_RUN (test_refuses_what_is_not_json);
    ZT_RUN (test_base64_round_trip);
    ZT_RUN (test_stream_of_documents);
    ZT_RUN (test_buffer);
    ZT_RUN (test_mutations_do_not_crash);
    return zt_done ();
}
