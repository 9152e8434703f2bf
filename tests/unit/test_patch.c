/*  test_patch - JSON merge patch (RFC 7386) on JSON text and on objects.

    Every example of RFC 7386 appendix A, strings with escapes and
    surrogate pairs, numbers kept as written, JSON errors with line and
    column, and patches applied to objects through the codec: nested
    merges, null removing a key, lists replaced, an unknown field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../zube_test.h"
#include "core.pb-c.h"
#include "meta.pb-c.h"
#include "zube/codec.h"
#include "zube/patch.h"

static void
s_check_merge (const char *target, const char *patch, const char *expected, int line)
{
    char error[512] = "";
    char *merged = zube_merge_patch_json (target, patch, error, sizeof error);
    if (!merged)
        ZT_FAIL ("line %d: merge failed: %s", line, error);
    int same = strcmp (merged, expected) == 0;
    char copy[512];
    snprintf (copy, sizeof copy, "%s", merged);
    free (merged);
    if (!same)
        ZT_FAIL ("line %d: %s + %s -> %s, expected %s", line, target, patch, copy,
                 expected);
}

#define S_CHECK_MERGE(target, patch, expected)                                           \
    s_check_merge (target, patch, expected, __LINE__)

static void
s_check_patch_error (const char *patch, const char *expected, int line)
{
    char error[512] = "";
    char *merged = zube_merge_patch_json ("{}", patch, error, sizeof error);
    if (merged) {
        free (merged);
        ZT_FAIL ("line %d: merge of %s succeeded, expected an error", line, patch);
    }
    if (strcmp (error, expected) != 0)
        ZT_FAIL ("line %d: error \"%s\", expected \"%s\"", line, error, expected);
}

#define S_CHECK_PATCH_ERROR(patch, expected)                                             \
    s_check_patch_error (patch, expected, __LINE__)

//  ---------------------------------------------------------------------
//  JSON text

static void
test_rfc7386_appendix_a (void)
{
    S_CHECK_MERGE ("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    S_CHECK_MERGE ("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
    S_CHECK_MERGE ("{\"a\":\"b\"}", "{\"a\":null}", "{}");
    S_CHECK_MERGE ("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
    S_CHECK_MERGE ("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    S_CHECK_MERGE ("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
    S_CHECK_MERGE ("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
                   "{\"a\":{\"b\":\"d\"}}");
    S_CHECK_MERGE ("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
    S_CHECK_MERGE ("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
    S_CHECK_MERGE ("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
    S_CHECK_MERGE ("{\"a\":\"foo\"}", "null", "null");
    S_CHECK_MERGE ("{\"a\":\"foo\"}", "\"bar\"", "\"bar\"");
    S_CHECK_MERGE ("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
    S_CHECK_MERGE ("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
    S_CHECK_MERGE ("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

static void
test_nested_and_order (void)
{
    //  Members keep their place; new ones go last; nulls inside arrays stay
    S_CHECK_MERGE (
        "{\"x\":1,\"m\":{\"a\":1,\"b\":2},\"z\":true}",
        "{\"m\":{\"a\":null,\"c\":{\"d\":[null,false]}},\"y\":-0.5e+3}",
        "{\"x\":1,\"m\":{\"b\":2,\"c\":{\"d\":[null,false]}},\"z\":true,\"y\":-0."
        "5e+3}");
    //  An object patch over a scalar starts from {}
    S_CHECK_MERGE ("{\"a\":7}", "{\"a\":{\"b\":null,\"c\":1}}", "{\"a\":{\"c\":1}}");
    //  White space anywhere; numbers written back as they were
    S_CHECK_MERGE (" { \"n\" : 1.50 } ", "\n{\"m\":\t123456789012345678901234567890}\n",
                   "{\"n\":1.50,\"m\":123456789012345678901234567890}");
    //  A repeated key in a patch: the last wins
    S_CHECK_MERGE ("{}", "{\"a\":1,\"a\":2}", "{\"a\":2}");
}

static void
test_strings (void)
{
    //  Escapes decode, then re-encode in the short form; UTF-8 passes raw
    S_CHECK_MERGE ("{}", "{\"s\":\"q\\\"b\\\\s\\/n\\n\\t\\r\\b\\f\\u0001\"}",
                   "{\"s\":\"q\\\"b\\\\s/n\\n\\t\\r\\b\\f\\u0001\"}");
    S_CHECK_MERGE ("{}", "{\"s\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}",
                   "{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}");
    S_CHECK_MERGE ("{}", "{\"s\":\"caf\xc3\xa9\"}", "{\"s\":\"caf\xc3\xa9\"}");
    //  Lone surrogates become U+FFFD, as Go decodes them
    S_CHECK_MERGE ("{}", "{\"s\":\"\\ud83dx\\ude00\"}",
                   "{\"s\":\"\xef\xbf\xbdx\xef\xbf\xbd\"}");
    S_CHECK_MERGE ("{}", "{\"s\":\"\\ud83d\\u0041\"}",
                   "{\"s\":\"\xef\xbf\xbd"
                   "A\"}");
    //  A NUL inside a key and a value survives
    S_CHECK_MERGE ("{}", "{\"k\\u0000\":\"v\\u0000w\"}", "{\"k\\u0000\":\"v\\u0000w\"}");
    //  Keys with escapes match the decoded key
    S_CHECK_MERGE ("{\"\xc3\xa9\":1}", "{\"\\u00e9\":null}", "{}");
}

static void
test_json_errors (void)
{
    S_CHECK_PATCH_ERROR ("{", "patch: line 1, column 2: unexpected end of JSON input");
    S_CHECK_PATCH_ERROR ("", "patch: line 1, column 1: unexpected end of JSON input");
    S_CHECK_PATCH_ERROR ("{\"a\" 1}",
                         "patch: line 1, column 6: invalid character '1' after "
                         "object key");
    S_CHECK_PATCH_ERROR ("{\"a\":1,}", "patch: line 1, column 8: invalid character '}' "
                                       "looking for beginning of object key string");
    S_CHECK_PATCH_ERROR ("{\"a\":1 \"b\":2}",
                         "patch: line 1, column 8: invalid character "
                         "'\"' after object key:value pair");
    S_CHECK_PATCH_ERROR ("{\n  \"a\": [1,\n   2 3]}",
                         "patch: line 3, column 6: invalid "
                         "character '3' after array element");
    S_CHECK_PATCH_ERROR ("{\"a\": tru}",
                         "patch: line 1, column 10: invalid character '}' in "
                         "literal true (expecting 'e')");
    S_CHECK_PATCH_ERROR ("{\"a\": 01}", "patch: line 1, column 8: invalid character '1' "
                                        "after object key:value pair");
    S_CHECK_PATCH_ERROR ("{\"a\": 1.}", "patch: line 1, column 9: invalid character '}' "
                                        "after decimal point in numeric literal");
    S_CHECK_PATCH_ERROR ("{\"a\": -}",
                         "patch: line 1, column 8: invalid character '}' in "
                         "numeric literal");
    S_CHECK_PATCH_ERROR ("{\"a\": 1e}",
                         "patch: line 1, column 9: invalid character '}' in "
                         "exponent of numeric literal");
    S_CHECK_PATCH_ERROR ("{\"a\": \"\\x\"}",
                         "patch: line 1, column 9: invalid character 'x' "
                         "in string escape code");
    S_CHECK_PATCH_ERROR ("{\"a\": \"\\u12g4\"}",
                         "patch: line 1, column 12: invalid "
                         "character 'g' in \\u hexadecimal character "
                         "escape");
    S_CHECK_PATCH_ERROR ("{\"a\": \"x\ny\"}",
                         "patch: line 1, column 9: invalid character "
                         "'\\n' in string literal");
    S_CHECK_PATCH_ERROR ("{\"a\": \"x", "patch: line 1, column 9: unexpected end of JSON "
                                        "input");
    S_CHECK_PATCH_ERROR ("{} {}", "patch: line 1, column 4: invalid character '{' after "
                                  "top-level value");
    S_CHECK_PATCH_ERROR ("{\"a\": @}", "patch: line 1, column 7: invalid character '@' "
                                       "looking for beginning of value");
    //  Nesting beyond the codec's limit fails without recursing further
    char deep[512];
    size_t n = 0;
    for (int i = 0; i < 150; i++)
        deep[n++] = '[';
    deep[n] = 0;
    char error[512];
    ZT_ASSERT (zube_merge_patch_json ("{}", deep, error, sizeof error) == NULL);
    ZT_ASSERT_STR_EQ (error,
                      "patch: line 1, column 101: nesting is deeper than the limit of "
                      "100 levels");
    //  A bad target is named as such
    ZT_ASSERT (zube_merge_patch_json ("{", "{}", error, sizeof error) == NULL);
    ZT_ASSERT_STR_EQ (error, "target: line 1, column 2: unexpected end of JSON input");
}

//  ---------------------------------------------------------------------
//  Objects

static Zube__Pod *
s_pod (void)
{
    const char *yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: "
                       "default\n  labels:\n    app: web\n    tier: front\nspec:\n"
                       "  containers:\n  - name: app\n    image: nginx:1.25\n"
                       "    ports:\n    - containerPort: 80\n  - name: side\n"
                       "    image: busybox\n  nodeSelector:\n    disk: ssd\n";
    ProtobufCMessage *msg = NULL;
    zube_codec_error_t error;
    if (zube_codec_decode (yaml, strlen (yaml), &zube__pod__descriptor, &msg, &error))
        ZT_FAIL ("decode: %s", error.message);
    return (Zube__Pod *)msg;
}

static const char *
s_label (const Zube__ObjectMeta *meta, const char *key)
{
    for (size_t i = 0; i < meta->n_labels; i++)
        if (strcmp (meta->labels[i]->key, key) == 0)
            return meta->labels[i]->value;
    return NULL;
}

static void
test_apply_labels (void)
{
    Zube__Pod *pod = s_pod ();
    ProtobufCMessage *out = NULL;
    char error[512] = "";
    ZT_ASSERT_INT_EQ (
        zube_merge_patch_apply (&pod->base,
                                "{\"metadata\":{\"labels\":{\"tier\":null,"
                                "\"canary\":\"true\"},\"annotations\":{\"a\":"
                                "\"b\"}}}",
                                &out, error, sizeof error),
        0);
    ZT_ASSERT (out != NULL);
    ZT_ASSERT (out->descriptor == &zube__pod__descriptor);
    Zube__Pod *patched = (Zube__Pod *)out;
    ZT_ASSERT_INT_EQ (patched->metadata->n_labels, 2);
    ZT_ASSERT_STR_EQ (s_label (patched->metadata, "app"), "web");
    ZT_ASSERT_STR_EQ (s_label (patched->metadata, "canary"), "true");
    ZT_ASSERT (s_label (patched->metadata, "tier") == NULL);
    ZT_ASSERT_INT_EQ (patched->metadata->n_annotations, 1);
    //  Everything else is as it was, and the original is untouched
    ZT_ASSERT_STR_EQ (patched->metadata->name, "web");
    ZT_ASSERT_INT_EQ (patched->spec->n_containers, 2);
    ZT_ASSERT_STR_EQ (patched->spec->containers[1]->image, "busybox");
    ZT_ASSERT_INT_EQ (pod->metadata->n_labels, 2);
    ZT_ASSERT (s_label (pod->metadata, "tier") != NULL);
    protobuf_c_message_free_unpacked (out, NULL);

    //  Removing every label leaves none
    out = NULL;
    ZT_ASSERT_INT_EQ (zube_merge_patch_apply (&pod->base,
                                              "{\"metadata\":{\"labels\":null}}", &out,
                                              error, sizeof error),
                      0);
    ZT_ASSERT_INT_EQ (((Zube__Pod *)out)->metadata->n_labels, 0);
    protobuf_c_message_free_unpacked (out, NULL);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

static void
test_apply_nested (void)
{
    Zube__Pod *pod = s_pod ();
    ProtobufCMessage *out = NULL;
    char error[512] = "";
    //  Lists are replaced whole; nested maps merge; quantities decode
    ZT_ASSERT_INT_EQ (
        zube_merge_patch_apply (
            &pod->base,
            "{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1.26\","
            "\"resources\":{\"limits\":{\"cpu\":\"500m\",\"memory\":\"128Mi\"}}}],"
            "\"nodeSelector\":{\"zone\":\"a\"},\"terminationGracePeriodSeconds\":5}}",
            &out, error, sizeof error),
        0);
    Zube__Pod *patched = (Zube__Pod *)out;
    ZT_ASSERT_INT_EQ (patched->spec->n_containers, 1);
    ZT_ASSERT_STR_EQ (patched->spec->containers[0]->image, "nginx:1.26");
    ZT_ASSERT_INT_EQ (patched->spec->containers[0]->n_ports, 0);
    Zube__ResourceRequirements *resources = patched->spec->containers[0]->resources;
    ZT_ASSERT (resources != NULL);
    ZT_ASSERT_INT_EQ (resources->n_limits, 2);
    ZT_ASSERT_STR_EQ (resources->limits[0]->key, "cpu");
    ZT_ASSERT_INT_EQ (resources->limits[0]->value->milli_value, 500);
    ZT_ASSERT_INT_EQ (patched->spec->n_node_selector, 2);
    ZT_ASSERT (patched->spec->has_termination_grace_period_seconds);
    ZT_ASSERT_INT_EQ (patched->spec->termination_grace_period_seconds, 5);
    protobuf_c_message_free_unpacked (out, NULL);

    //  An empty patch gives an equal copy
    out = NULL;
    ZT_ASSERT_INT_EQ (
        zube_merge_patch_apply (&pod->base, "{}", &out, error, sizeof error), 0);
    size_t a = protobuf_c_message_get_packed_size (&pod->base);
    size_t b = protobuf_c_message_get_packed_size (out);
    ZT_ASSERT_INT_EQ (a, b);
    uint8_t *pa = malloc (a), *pb = malloc (b);
    protobuf_c_message_pack (&pod->base, pa);
    protobuf_c_message_pack (out, pb);
    ZT_ASSERT (memcmp (pa, pb, a) == 0);
    free (pa);
    free (pb);
    protobuf_c_message_free_unpacked (out, NULL);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

static void
test_apply_errors (void)
{
    Zube__Pod *pod = s_pod ();
    ProtobufCMessage *out = (ProtobufCMessage *)1;
    char error[512] = "";
    ZT_ASSERT_INT_EQ (zube_merge_patch_apply (&pod->base,
                                              "{\"spec\":{\"containerz\":[]}}", &out,
                                              error, sizeof error),
                      -1);
    ZT_ASSERT_STR_EQ (error,
                      "patched object: spec.containerz: unknown field \"containerz\"");
    ZT_ASSERT (out == (ProtobufCMessage *)1);
    ZT_ASSERT_INT_EQ (
        zube_merge_patch_apply (
            &pod->base, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"imagee\":\"x\"}]}}",
            &out, error, sizeof error),
        -1);
    ZT_ASSERT_STR_EQ (error, "patched object: spec.containers[0].imagee: unknown field "
                             "\"imagee\"");
    ZT_ASSERT_INT_EQ (zube_merge_patch_apply (&pod->base, "{\"spec\":{\"nodeName\":80}}",
                                              &out, error, sizeof error),
                      -1);
    ZT_ASSERT_STR_EQ (error,
                      "patched object: spec.nodeName: expected a string, got a number "
                      "(80)");
    ZT_ASSERT_INT_EQ (
        zube_merge_patch_apply (&pod->base, "[1]", &out, error, sizeof error), -1);
    ZT_ASSERT_STR_EQ (error, "patch: a merge patch must be a JSON object");
    ZT_ASSERT_INT_EQ (
        zube_merge_patch_apply (&pod->base, "{\"metadata\":", &out, error, sizeof error),
        -1);
    ZT_ASSERT_STR_EQ (error, "patch: line 1, column 13: unexpected end of JSON input");
    ZT_ASSERT (out == (ProtobufCMessage *)1);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

//  ---------------------------------------------------------------------
//  JSON patch (RFC 6902)

static void
s_check_json_patch (const char *target, const char *patch, const char *expected,
                    int line)
{
    char error[512] = "";
    char *patched = zube_json_patch_json (target, patch, error, sizeof error);
    char copy[512];
    snprintf (copy, sizeof copy, "%s", patched ? patched : error);
    int same = patched && expected && strcmp (patched, expected) == 0;
    int failed_as_expected = !patched && !expected;
    free (patched);
    if (!same && !failed_as_expected)
        ZT_FAIL ("line %d: %s + %s -> %s, expected %s", line, target, patch, copy,
                 expected ? expected : "an error");
}

#define S_CHECK_JSON_PATCH(target, patch, expected)                                      \
    s_check_json_patch (target, patch, expected, __LINE__)

static void
test_json_patch_rfc6902 (void)
{
    //  Appendix A, A.1 to A.16
    S_CHECK_JSON_PATCH ("{\"foo\":\"bar\"}",
                        "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
                        "{\"foo\":\"bar\",\"baz\":\"qux\"}");
    S_CHECK_JSON_PATCH ("{\"foo\":[\"bar\",\"baz\"]}",
                        "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
                        "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
    S_CHECK_JSON_PATCH ("{\"baz\":\"qux\",\"foo\":\"bar\"}",
                        "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}");
    S_CHECK_JSON_PATCH ("{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
                        "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
                        "{\"foo\":[\"bar\",\"baz\"]}");
    S_CHECK_JSON_PATCH ("{\"baz\":\"qux\",\"foo\":\"bar\"}",
                        "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
                        "{\"baz\":\"boo\",\"foo\":\"bar\"}");
    S_CHECK_JSON_PATCH (
        "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
        "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
        "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
    S_CHECK_JSON_PATCH ("{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
                        "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
                        "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
    S_CHECK_JSON_PATCH ("{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
                        "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
                        "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
                        "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
    S_CHECK_JSON_PATCH ("{\"baz\":\"qux\"}",
                        "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", NULL);
    S_CHECK_JSON_PATCH ("{\"foo\":\"bar\"}",
                        "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
                        "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
    S_CHECK_JSON_PATCH ("{\"foo\":\"bar\"}",
                        "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
                        "{\"foo\":\"bar\",\"baz\":\"qux\"}");
    S_CHECK_JSON_PATCH ("{\"foo\":\"bar\"}",
                        "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", NULL);
    S_CHECK_JSON_PATCH ("{\"/\":9,\"~1\":10}",
                        "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
                        "{\"/\":9,\"~1\":10}");
    S_CHECK_JSON_PATCH ("{\"/\":9,\"~1\":10}",
                        "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", NULL);
    S_CHECK_JSON_PATCH ("{\"foo\":[\"bar\"]}",
                        "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
                        "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
    //  ~1 is '/', copy, numbers by value, objects in any order
    S_CHECK_JSON_PATCH ("{\"a/b\":1}", "[{\"op\":\"copy\",\"from\":\"/a~1b\",\"path\":\"/c\"}]",
                        "{\"a/b\":1,\"c\":1}");
    S_CHECK_JSON_PATCH ("{\"n\":1.0,\"o\":{\"x\":1,\"y\":2}}",
                        "[{\"op\":\"test\",\"path\":\"/n\",\"value\":1},"
                        "{\"op\":\"test\",\"path\":\"/o\",\"value\":{\"y\":2,\"x\":1}}]",
                        "{\"n\":1.0,\"o\":{\"x\":1,\"y\":2}}");
    //  Errors: out of range, leading zero, a move into its own child,
    //  an unknown op, a missing value
    S_CHECK_JSON_PATCH ("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/2\",\"value\":0}]",
                        NULL);
    S_CHECK_JSON_PATCH ("{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/01\"}]", NULL);
    S_CHECK_JSON_PATCH ("{\"a\":{\"b\":{}}}",
                        "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]", NULL);
    S_CHECK_JSON_PATCH ("{}", "[{\"op\":\"frob\",\"path\":\"/a\"}]", NULL);
    S_CHECK_JSON_PATCH ("{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", NULL);
    S_CHECK_JSON_PATCH ("{}", "[{\"op\":\"remove\",\"path\":\"a\"}]", NULL);
    S_CHECK_JSON_PATCH ("{}", "[{\"op\":\"remove\",\"path\":\"/~2\"}]", NULL);

    //  The error names the operation's index, op and path
    char error[512];
    ZT_ASSERT (zube_json_patch_json ("{\"a\":1}",
                                     "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":2},"
                                     "{\"op\":\"test\",\"path\":\"/a\",\"value\":3}]",
                                     error, sizeof error) == NULL);
    ZT_ASSERT_STR_EQ (error,
                      "json patch: operation 1 (test /a): test failed: the value differs");
    ZT_ASSERT (zube_json_patch_json ("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/b/c\"}]",
                                     error, sizeof error) == NULL);
    ZT_ASSERT_STR_EQ (error, "json patch: operation 0 (remove /b/c): the path does not "
                             "exist");
    ZT_ASSERT (zube_json_patch_json ("{}", "{}", error, sizeof error) == NULL);
    ZT_ASSERT_STR_EQ (error, "json patch: a JSON patch must be an array of operations");
}

static void
test_patch_apply_types (void)
{
    Zube__Pod *pod = s_pod ();
    ProtobufCMessage *out = NULL;
    char error[512] = "";
    ZT_ASSERT_INT_EQ (zube_patch_type_parse ("application/json-patch+json"),
                      ZUBE_PATCH_JSON);
    ZT_ASSERT_INT_EQ (zube_patch_type_parse (NULL), ZUBE_PATCH_MERGE);
    ZT_ASSERT_INT_EQ (zube_patch_type_parse ("application/strategic-merge-patch+json"),
                      ZUBE_PATCH_STRATEGIC);
    ZT_ASSERT_INT_EQ (zube_patch_type_parse ("text/plain"), ZUBE_PATCH_UNKNOWN);

    //  JSON patch on an object: append a container, replace an image
    ZT_ASSERT_INT_EQ (
        zube_patch_apply (&pod->base, ZUBE_PATCH_JSON,
                          "[{\"op\":\"test\",\"path\":\"/metadata/labels/app\","
                          "\"value\":\"web\"},"
                          "{\"op\":\"replace\",\"path\":\"/spec/containers/0/image\","
                          "\"value\":\"nginx:1.27\"},"
                          "{\"op\":\"add\",\"path\":\"/spec/containers/-\","
                          "\"value\":{\"name\":\"log\",\"image\":\"fluentd\"}},"
                          "{\"op\":\"remove\",\"path\":\"/metadata/labels/tier\"}]",
                          &out, error, sizeof error),
        0);
    Zube__Pod *patched = (Zube__Pod *)out;
    ZT_ASSERT_INT_EQ (patched->spec->n_containers, 3);
    ZT_ASSERT_STR_EQ (patched->spec->containers[0]->image, "nginx:1.27");
    ZT_ASSERT_STR_EQ (patched->spec->containers[2]->name, "log");
    ZT_ASSERT (s_label (patched->metadata, "tier") == NULL);
    protobuf_c_message_free_unpacked (out, NULL);
    out = (ProtobufCMessage *)1;
    ZT_ASSERT_INT_EQ (zube_patch_apply (&pod->base, ZUBE_PATCH_JSON,
                                        "[{\"op\":\"test\",\"path\":\"/spec/nodeName\","
                                        "\"value\":\"x\"}]",
                                        &out, error, sizeof error),
                      ZUBE_PATCH_FAILED);
    ZT_ASSERT_STR_CONTAINS (error, "operation 0 (test /spec/nodeName)");
    ZT_ASSERT_INT_EQ (zube_patch_apply (&pod->base, ZUBE_PATCH_JSON, "[", &out, error,
                                        sizeof error),
                      ZUBE_PATCH_BAD);
    ZT_ASSERT_INT_EQ (zube_patch_apply (&pod->base, ZUBE_PATCH_JSON,
                                        "[{\"op\":\"add\",\"path\":\"/spec/bogus\","
                                        "\"value\":1}]",
                                        &out, error, sizeof error),
                      ZUBE_PATCH_BAD);
    ZT_ASSERT_STR_CONTAINS (error, "unknown field \"bogus\"");
    ZT_ASSERT (out == (ProtobufCMessage *)1);

    //  Strategic merge: containers merge by name, ports by containerPort,
    //  $patch delete removes, other lists replace
    out = NULL;
    ZT_ASSERT_INT_EQ (
        zube_patch_apply (&pod->base, ZUBE_PATCH_STRATEGIC,
                          "{\"spec\":{\"containers\":[{\"name\":\"app\","
                          "\"image\":\"nginx:1.26\",\"ports\":[{\"containerPort\":443}],"
                          "\"env\":[{\"name\":\"A\",\"value\":\"1\"}]},"
                          "{\"name\":\"side\",\"$patch\":\"delete\"},"
                          "{\"name\":\"new\",\"image\":\"redis\"}],"
                          "\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\"}]}}",
                          &out, error, sizeof error),
        0);
    ZT_ASSERT_MSG (out != NULL, "%s", error);
    patched = (Zube__Pod *)out;
    ZT_ASSERT_INT_EQ (patched->spec->n_containers, 2);
    ZT_ASSERT_STR_EQ (patched->spec->containers[0]->name, "app");
    ZT_ASSERT_STR_EQ (patched->spec->containers[0]->image, "nginx:1.26");
    ZT_ASSERT_INT_EQ (patched->spec->containers[0]->n_ports, 2);
    ZT_ASSERT_INT_EQ (patched->spec->containers[0]->ports[0]->container_port, 80);
    ZT_ASSERT_INT_EQ (patched->spec->containers[0]->ports[1]->container_port, 443);
    ZT_ASSERT_INT_EQ (patched->spec->containers[0]->n_env, 1);
    ZT_ASSERT_STR_EQ (patched->spec->containers[1]->name, "new");
    ZT_ASSERT_INT_EQ (patched->spec->n_tolerations, 1);
    protobuf_c_message_free_unpacked (out, NULL);
    //  The same as a merge patch replaces the list
    out = NULL;
    ZT_ASSERT_INT_EQ (zube_patch_apply (&pod->base, ZUBE_PATCH_MERGE,
                                        "{\"spec\":{\"containers\":[{\"name\":\"app\","
                                        "\"image\":\"nginx:1.26\"}]}}",
                                        &out, error, sizeof error),
                      0);
    ZT_ASSERT_INT_EQ (((Zube__Pod *)out)->spec->n_containers, 1);
    protobuf_c_message_free_unpacked (out, NULL);
    out = (ProtobufCMessage *)1;
    ZT_ASSERT_INT_EQ (zube_patch_apply (&pod->base, ZUBE_PATCH_STRATEGIC,
                                        "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
                                        &out, error, sizeof error),
                      ZUBE_PATCH_FAILED);
    ZT_ASSERT_STR_CONTAINS (error, "no merge key \"name\"");
    ZT_ASSERT_INT_EQ (zube_patch_apply (&pod->base, ZUBE_PATCH_STRATEGIC,
                                        "{\"$setElementOrder/containers\":[]}", &out,
                                        error, sizeof error),
                      ZUBE_PATCH_FAILED);
    ZT_ASSERT_STR_CONTAINS (error, "not supported");
    ZT_ASSERT_INT_EQ (zube_patch_apply (&pod->base, ZUBE_PATCH_STRATEGIC,
                                        "{\"spec\":{\"nodeSelector\":{\"$patch\":"
                                        "\"delete\"}}}",
                                        &out, error, sizeof error),
                      ZUBE_PATCH_FAILED);
    ZT_ASSERT (out == (ProtobufCMessage *)1);
    //  "$patch": "replace" replaces a map whole (a merge would keep disk)
    out = NULL;
    ZT_ASSERT_INT_EQ (zube_patch_apply (&pod->base, ZUBE_PATCH_STRATEGIC,
                                        "{\"spec\":{\"nodeSelector\":{\"$patch\":"
                                        "\"replace\",\"zone\":\"b\"}}}",
                                        &out, error, sizeof error),
                      0);
    ZT_ASSERT_INT_EQ (((Zube__Pod *)out)->spec->n_node_selector, 1);
    ZT_ASSERT_STR_EQ (((Zube__Pod *)out)->spec->node_selector[0]->key, "zone");
    protobuf_c_message_free_unpacked (out, NULL);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

int
main (void)
{
    ZT_RUN (test_rfc7386_appendix_a);
    ZT_RUN (test_nested_and_order);
    ZT_RUN (test_strings);
    ZT_RUN (test_json_errors);
    ZT_RUN (test_apply_labels);
    ZT_RUN (test_apply_nested);
    ZT_RUN (test_apply_errors);
    ZT_RUN (test_json_patch_rfc6902);
    ZT_RUN (test_patch_apply_types);
    return zt_done ();
}
