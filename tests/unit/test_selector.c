/*  test_selector - label selectors (string syntax and LabelSelector),
    label key/value and DNS name validation, and field selectors.

    Expected strings and error messages are Kubernetes' own
    (k8s.io/apimachinery labels and fields packages). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../zube_test.h"
#include "batch.pb-c.h"
#include "core.pb-c.h"
#include "meta.pb-c.h"
#include "zube/codec.h"
#include "zube/selector.h"

//  Own assertions: messages here are long, so failures print them cut
#define S_ASSERT_CONTAINS(haystack, needle)                                              \
    do {                                                                                 \
        const char *s_h_ = (haystack), *s_needle_ = (needle);                            \
        if (!s_h_ || !strstr (s_h_, s_needle_))                                          \
            ZT_FAIL ("\"%.400s\" does not contain \"%.400s\"", s_h_ ? s_h_ : "(null)",   \
                     s_needle_);                                                         \
    } while (0)

#define S_ASSERT_STR_EQ(a, b)                                                            \
    do {                                                                                 \
        const char *s_a_ = (a), *s_b_ = (b);                                             \
        if (!s_a_ || strcmp (s_a_, s_b_) != 0)                                           \
            ZT_FAIL ("\"%.450s\", expected \"%.450s\"", s_a_ ? s_a_ : "(null)", s_b_);   \
    } while (0)

//  ---------------------------------------------------------------------
//  Helpers

//  Parses text (which must parse) and returns its canonical string
static char *
s_canonical (const char *text)
{
    zube_selector_t *sel = NULL;
    char error[1024] = "";
    if (zube_selector_parse (text, &sel, error, sizeof error))
        ZT_FAIL ("parse \"%.200s\" failed: %.400s", text, error);
    char *string = zube_selector_string (sel);
    zube_selector_destroy (&sel);
    ZT_ASSERT (sel == NULL);
    return string;
}

#define S_ASSERT_CANONICAL(text, expected)                                               \
    do {                                                                                 \
        char *s_c_ = s_canonical (text);                                                 \
        int s_same_ = s_c_ && strcmp (s_c_, expected) == 0;                              \
        char s_copy_[512];                                                               \
        snprintf (s_copy_, sizeof s_copy_, "%s", s_c_ ? s_c_ : "(null)");                \
        free (s_c_);                                                                     \
        if (!s_same_)                                                                    \
            ZT_FAIL ("\"%s\" -> \"%s\", expected \"%s\"", text, s_copy_, expected);      \
    } while (0)

//  Parsing must fail; the error into buf
static void
s_parse_error (const char *text, char *buf, size_t size)
{
    zube_selector_t *sel = NULL;
    buf[0] = 0;
    if (zube_selector_parse (text, &sel, buf, size) == 0) {
        zube_selector_destroy (&sel);
        ZT_FAIL ("parse \"%s\" succeeded, expected an error", text);
    }
    ZT_ASSERT (sel == NULL);
}

#define S_ASSERT_PARSE_ERROR(text, expected)                                             \
    do {                                                                                 \
        char s_e_[2048];                                                                 \
        s_parse_error (text, s_e_, sizeof s_e_);                                         \
        S_ASSERT_STR_EQ (s_e_, expected);                                                \
    } while (0)

//  Whether text matches the labels "k=v,k2=v2" (split on commas)
static bool
s_matches (const char *text, const char *labels)
{
    zube_selector_t *sel = NULL;
    char error[1024];
    if (zube_selector_parse (text, &sel, error, sizeof error))
        ZT_FAIL ("parse \"%.200s\" failed: %.400s", text, error);
    zube_label_t pairs[16];
    size_t count = 0;
    char copy[512];
    snprintf (copy, sizeof copy, "%s", labels);
    char *save = NULL;
    for (char *pair = strtok_r (copy, ",", &save); pair && count < 16;
         pair = strtok_r (NULL, ",", &save)) {
        char *eq = strchr (pair, '=');
        ZT_ASSERT (eq != NULL);
        *eq = 0;
        pairs[count].key = pair;
        pairs[count].value = eq + 1;
        count++;
    }
    bool yes = zube_selector_matches (sel, pairs, count);
    zube_selector_destroy (&sel);
    return yes;
}

static ProtobufCMessage *
s_decode (const char *yaml, const ProtobufCMessageDescriptor *descriptor)
{
    ProtobufCMessage *msg = NULL;
    zube_codec_error_t error;
    if (zube_codec_decode (yaml, strlen (yaml), descriptor, &msg, &error)) {
        char line[1024];
        ZT_FAIL ("decode: %s", zube_codec_error_format (&error, line, sizeof line));
    }
    return msg;
}

//  ---------------------------------------------------------------------
//  Label selectors: parsing and the canonical string

static void
test_parse_canonical (void)
{
    S_ASSERT_CANONICAL ("", "");
    S_ASSERT_CANONICAL ("app=web,tier!=db", "app=web,tier!=db");
    S_ASSERT_CANONICAL ("tier!=db,app=web", "app=web,tier!=db");
    S_ASSERT_CANONICAL ("app==web", "app==web");
    S_ASSERT_CANONICAL ("env in (qa,prod)", "env in (prod,qa)");
    S_ASSERT_CANONICAL ("env notin (qa, prod, qa)", "env notin (prod,qa)");
    S_ASSERT_CANONICAL ("!canary", "!canary");
    S_ASSERT_CANONICAL ("gpu", "gpu");
    S_ASSERT_CANONICAL ("  app = web ,  gpu  ", "app=web,gpu");
    //  Kubernetes' own example
    S_ASSERT_CANONICAL ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()");
    //  "in" and "notin" are keys or values where an identifier is due
    S_ASSERT_CANONICAL ("notin", "notin");
    S_ASSERT_CANONICAL ("x in (in,notin)", "x in (in,notin)");
    S_ASSERT_CANONICAL ("x=", "x=");
    S_ASSERT_CANONICAL ("x>1,y<10", "x>1,y<10");
    S_ASSERT_CANONICAL ("example.com/app=web", "example.com/app=web");
}

static void
test_parse_errors (void)
{
    S_ASSERT_PARSE_ERROR ("x=a b", "found 'b', expected: ',' or 'end of string'");
    S_ASSERT_PARSE_ERROR (
        "a b", "unable to parse requirement: found 'b', expected: in, notin, =, "
               "==, !=, gt, lt");
    S_ASSERT_PARSE_ERROR ("x in", "unable to parse requirement: found '' expected: '('");
    S_ASSERT_PARSE_ERROR ("x in (a",
                          "unable to parse requirement: found '', expected: ',' "
                          "or ')'");
    S_ASSERT_PARSE_ERROR ("x in (a b)",
                          "unable to parse requirement: found 'b', expected: ',' or ')'");
    S_ASSERT_PARSE_ERROR ("x in (=)",
                          "unable to parse requirement: found '=', expected: ',', "
                          "')' or identifier");
    S_ASSERT_PARSE_ERROR ("x=a,", "found '', expected: identifier after ','");
    S_ASSERT_PARSE_ERROR (",x", "found ',', expected: !, identifier, or 'end of string'");
    S_ASSERT_PARSE_ERROR ("!x=a", "found '=', expected: ',' or 'end of string'");
    S_ASSERT_PARSE_ERROR ("x==(", "unable to parse requirement: found '(', expected: "
                                  "identifier");
    S_ASSERT_PARSE_ERROR ("!",
                          "unable to parse requirement: found '', expected: identifier");
    S_ASSERT_PARSE_ERROR (
        "-x=a",
        "unable to parse requirement: <nil>: Invalid value: \"-x\": name part must "
        "consist "
        "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
        "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
    S_ASSERT_PARSE_ERROR (
        "x=-a",
        "unable to parse requirement: values[0][x]: Invalid value: \"-a\": a valid label "
        "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
        "and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
    S_ASSERT_PARSE_ERROR ("x>a", "unable to parse requirement: values[0]: Invalid value: "
                                 "\"a\": for 'Gt', 'Lt' operators, the value must be an "
                                 "integer");
    //  Two bad values: an aggregate in brackets
    char error[2048];
    s_parse_error ("x in (-a,-b)", error, sizeof error);
    ZT_ASSERT (error[strlen ("unable to parse requirement: ")] == '[');
    S_ASSERT_CONTAINS (error, "values[0][x]: Invalid value: \"-a\"");
    S_ASSERT_CONTAINS (error, ", values[1][x]: Invalid value: \"-b\"");
    //  The error buffer may be small or absent
    zube_selector_t *sel = NULL;
    char tiny[8];
    ZT_ASSERT_INT_EQ (zube_selector_parse ("a b", &sel, tiny, sizeof tiny), -1);
    ZT_ASSERT_INT_EQ (strlen (tiny), 7);
    ZT_ASSERT_INT_EQ (zube_selector_parse ("a b", &sel, NULL, 0), -1);
    ZT_ASSERT (sel == NULL);
}

//  ---------------------------------------------------------------------
//  Label selectors: matching

static void
test_matches (void)
{
    ZT_ASSERT (s_matches ("", ""));
    ZT_ASSERT (s_matches ("", "a=b"));
    ZT_ASSERT (s_matches ("app=web", "app=web,tier=db"));
    ZT_ASSERT (!s_matches ("app=web", "app=api"));
    ZT_ASSERT (!s_matches ("app=web", "tier=db"));
    ZT_ASSERT (s_matches ("app==web", "app=web"));
    ZT_ASSERT (s_matches ("app!=web", "app=api"));
    ZT_ASSERT (s_matches ("app!=web", "tier=db")); //  != matches an absent key
    ZT_ASSERT (!s_matches ("app!=web", "app=web"));
    ZT_ASSERT (s_matches ("env in (prod,qa)", "env=qa"));
    ZT_ASSERT (!s_matches ("env in (prod,qa)", "env=dev"));
    ZT_ASSERT (!s_matches ("env in (prod,qa)", "app=x"));
    ZT_ASSERT (s_matches ("env notin (prod,qa)", "env=dev"));
    ZT_ASSERT (s_matches ("env notin (prod,qa)", "app=x"));
    ZT_ASSERT (!s_matches ("env notin (prod,qa)", "env=prod"));
    ZT_ASSERT (s_matches ("gpu", "gpu="));
    ZT_ASSERT (!s_matches ("gpu", "cpu=1"));
    ZT_ASSERT (s_matches ("!canary", "app=web"));
    ZT_ASSERT (!s_matches ("!canary", "canary=true"));
    ZT_ASSERT (s_matches ("x=", "x="));
    ZT_ASSERT (!s_matches ("x=", "y="));
    ZT_ASSERT (s_matches ("x in (a,)", "x="));
    ZT_ASSERT (s_matches ("x>5", "x=6"));
    ZT_ASSERT (!s_matches ("x>5", "x=5"));
    ZT_ASSERT (!s_matches ("x>5", "x=abc"));
    ZT_ASSERT (!s_matches ("x>5", "y=9"));
    ZT_ASSERT (s_matches ("x<5", "x=-3"));
    ZT_ASSERT (s_matches ("app=web,env in (a,b),!canary", "app=web,env=b"));
    ZT_ASSERT (!s_matches ("app=web,env in (a,b),!canary", "app=web,env=b,canary=1"));
    //  NULL is the empty selector
    ZT_ASSERT (zube_selector_matches (NULL, NULL, 0));
    ZT_ASSERT (zube_selector_empty (NULL));
}

static void
test_matches_object (void)
{
    ProtobufCMessage *pod =
        s_decode ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n"
                  "  labels:\n    app: web\n    tier: front\n",
                  &zube__pod__descriptor);
    zube_selector_t *sel = NULL;
    ZT_ASSERT_INT_EQ (zube_selector_parse ("app=web,tier in (front,back)", &sel, NULL, 0),
                      0);
    ZT_ASSERT (!zube_selector_empty (sel));
    ZT_ASSERT (zube_selector_matches_object (sel, pod));
    ZT_ASSERT (zube_selector_matches_meta (sel, ((Zube__Pod *)pod)->metadata));
    ZT_ASSERT (!zube_selector_matches_meta (sel, NULL));
    zube_selector_destroy (&sel);
    ZT_ASSERT_INT_EQ (zube_selector_parse ("app=api", &sel, NULL, 0), 0);
    ZT_ASSERT (!zube_selector_matches_object (sel, pod));
    zube_selector_destroy (&sel);
    //  A pod without labels
    ProtobufCMessage *bare =
        s_decode ("metadata:\n  name: bare\n", &zube__pod__descriptor);
    ZT_ASSERT_INT_EQ (zube_selector_parse ("!app", &sel, NULL, 0), 0);
    ZT_ASSERT (zube_selector_matches_object (sel, bare));
    ZT_ASSERT (!zube_selector_matches_object (sel, pod));
    zube_selector_destroy (&sel);
    protobuf_c_message_free_unpacked (bare, NULL);
    protobuf_c_message_free_unpacked (pod, NULL);
}

static void
test_from_message (void)
{
    Zube__LabelSelector *ls = (Zube__LabelSelector *)s_decode (
        "matchLabels:\n  tier: front\n  app: web\nmatchExpressions:\n"
        "- key: env\n  operator: In\n  values: [qa, prod]\n"
        "- key: canary\n  operator: DoesNotExist\n"
        "- key: gpu\n  operator: Exists\n"
        "- key: zone\n  operator: NotIn\n  values: [b]\n",
        &zube__label_selector__descriptor);
    zube_selector_t *sel = NULL;
    char error[1024] = "";
    ZT_ASSERT_INT_EQ (zube_selector_from_message (ls, &sel, error, sizeof error), 0);
    char *string = zube_selector_string (sel);
    S_ASSERT_STR_EQ (string,
                     "app=web,!canary,env in (prod,qa),gpu,tier=front,zone notin (b)");
    free (string);
    zube_label_t yes[] = {{"app", "web"}, {"tier", "front"}, {"env", "qa"}, {"gpu", "1"}};
    ZT_ASSERT (zube_selector_matches (sel, yes, 4));
    zube_label_t no[] = {{"app", "web"}, {"tier", "front"}, {"env", "qa"}};
    ZT_ASSERT (!zube_selector_matches (sel, no, 3));
    zube_selector_destroy (&sel);
    protobuf_c_message_free_unpacked (&ls->base, NULL);

    //  NULL and {} match everything
    ZT_ASSERT_INT_EQ (zube_selector_from_message (NULL, &sel, error, sizeof error), 0);
    ZT_ASSERT (zube_selector_empty (sel));
    ZT_ASSERT (zube_selector_matches (sel, no, 3));
    zube_selector_destroy (&sel);

    //  Errors as LabelSelectorAsSelector gives them
    ls = (Zube__LabelSelector *)s_decode (
        "matchExpressions:\n- key: env\n  operator: Foo\n",
        &zube__label_selector__descriptor);
    ZT_ASSERT_INT_EQ (zube_selector_from_message (ls, &sel, error, sizeof error), -1);
    ZT_ASSERT (sel == NULL);
    S_ASSERT_STR_EQ (error, "\"Foo\" is not a valid label selector operator");
    protobuf_c_message_free_unpacked (&ls->base, NULL);

    ls = (Zube__LabelSelector *)s_decode (
        "matchExpressions:\n- key: env\n  operator: In\n",
        &zube__label_selector__descriptor);
    ZT_ASSERT_INT_EQ (zube_selector_from_message (ls, &sel, error, sizeof error), -1);
    S_ASSERT_STR_EQ (error, "values: Invalid value: null: for 'in', 'notin' operators, "
                            "values set can't be empty");
    protobuf_c_message_free_unpacked (&ls->base, NULL);

    ls = (Zube__LabelSelector *)s_decode (
        "matchExpressions:\n- key: env\n  operator: Exists\n  values: [a]\n",
        &zube__label_selector__descriptor);
    ZT_ASSERT_INT_EQ (zube_selector_from_message (ls, &sel, error, sizeof error), -1);
    S_ASSERT_STR_EQ (error,
                     "values: Invalid value: [\"a\"]: values set must be empty for "
                     "exists and does not exist");
    protobuf_c_message_free_unpacked (&ls->base, NULL);

    ls = (Zube__LabelSelector *)s_decode ("matchLabels:\n  Bad Key: x\n",
                                          &zube__label_selector__descriptor);
    ZT_ASSERT_INT_EQ (zube_selector_from_message (ls, &sel, error, sizeof error), -1);
    S_ASSERT_CONTAINS (error,
                       "key: Invalid value: \"Bad Key\": name part must consist of");
    protobuf_c_message_free_unpacked (&ls->base, NULL);
}

//  ---------------------------------------------------------------------
//  Names

static void
test_label_key_value (void)
{
    char error[1024];
    ZT_ASSERT_INT_EQ (zube_label_key_validate ("app", error, sizeof error), 0);
    ZT_ASSERT_INT_EQ (
        zube_label_key_validate ("example.com/App_1.x", error, sizeof error), 0);
    ZT_ASSERT_INT_EQ (zube_label_key_validate ("a/b/c", error, sizeof error), -1);
    S_ASSERT_STR_EQ (error,
                     "a qualified name must consist of alphanumeric characters, '-', "
                     "'_' or '.', and must start and end with an alphanumeric "
                     "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
                     "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
                     "') with an optional DNS subdomain prefix and '/' (e.g. "
                     "'example.com/MyName')");
    ZT_ASSERT_INT_EQ (zube_label_key_validate ("/x", error, sizeof error), -1);
    S_ASSERT_STR_EQ (error, "prefix part must be non-empty");
    ZT_ASSERT_INT_EQ (zube_label_key_validate ("Example.com/x", error, sizeof error), -1);
    S_ASSERT_STR_EQ (error,
                     "prefix part a lowercase RFC 1123 subdomain must consist of "
                     "lower case alphanumeric characters, '-' or '.', and must start "
                     "and end with an alphanumeric character (e.g. 'example.com', "
                     "regex used for validation is "
                     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
                     "*')");
    ZT_ASSERT_INT_EQ (zube_label_key_validate ("example.com/", error, sizeof error), -1);
    S_ASSERT_CONTAINS (error, "name part must be non-empty; name part must consist of");
    char long_name[80];
    memset (long_name, 'a', 64);
    long_name[64] = 0;
    ZT_ASSERT_INT_EQ (zube_label_key_validate (long_name, error, sizeof error), -1);
    S_ASSERT_STR_EQ (error, "name part must be no more than 63 characters");
    long_name[63] = 0;
    ZT_ASSERT_INT_EQ (zube_label_key_validate (long_name, error, sizeof error), 0);

    ZT_ASSERT_INT_EQ (zube_label_value_validate ("", error, sizeof error), 0);
    ZT_ASSERT_INT_EQ (zube_label_value_validate ("My_value.1", error, sizeof error), 0);
    ZT_ASSERT_INT_EQ (zube_label_value_validate ("a b", error, sizeof error), -1);
    S_ASSERT_CONTAINS (error, "a valid label must be an empty string or consist of");
    long_name[63] = 'a';
    ZT_ASSERT_INT_EQ (zube_label_value_validate (long_name, error, sizeof error), -1);
    S_ASSERT_STR_EQ (error, "must be no more than 63 characters");
}

static void
test_dns_names (void)
{
    char error[1024];
    ZT_ASSERT_INT_EQ (
        zube_dns1123_subdomain_validate ("web.example-1", error, sizeof error), 0);
    ZT_ASSERT_INT_EQ (zube_dns1123_subdomain_validate ("Web", error, sizeof error), -1);
    S_ASSERT_CONTAINS (error,
                       "a lowercase RFC 1123 subdomain must consist of lower case");
    ZT_ASSERT_INT_EQ (zube_dns1123_subdomain_validate ("a..b", error, sizeof error), -1);
    ZT_ASSERT_INT_EQ (zube_dns1123_subdomain_validate ("-a", error, sizeof error), -1);
    ZT_ASSERT_INT_EQ (zube_dns1123_subdomain_validate ("", error, sizeof error), -1);
    char long_name[300];
    memset (long_name, 'a', 254);
    long_name[254] = 0;
    ZT_ASSERT_INT_EQ (zube_dns1123_subdomain_validate (long_name, error, sizeof error),
                      -1);
    S_ASSERT_STR_EQ (error, "must be no more than 253 characters");
    ZT_ASSERT_INT_EQ (zube_dns1123_label_validate ("web-1", error, sizeof error), 0);
    ZT_ASSERT_INT_EQ (zube_dns1123_label_validate ("a.b", error, sizeof error), -1);
    S_ASSERT_STR_EQ (error, "must not contain dots");
    ZT_ASSERT_INT_EQ (zube_dns1123_label_validate ("A", error, sizeof error), -1);
    S_ASSERT_STR_EQ (error,
                     "a lowercase RFC 1123 label must consist of lower case "
                     "alphanumeric characters or '-', and must start and end with an "
                     "alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
                     "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
    long_name[64] = 0;
    ZT_ASSERT_INT_EQ (zube_dns1123_label_validate (long_name, error, sizeof error), -1);
    S_ASSERT_STR_EQ (error, "must be no more than 63 characters");
}

//  ---------------------------------------------------------------------
//  Field selectors

static bool
s_field_matches (const char *text, const char *resource, const ProtobufCMessage *object)
{
    zube_field_selector_t *sel = NULL;
    char error[512];
    if (zube_field_selector_parse (text, resource, &sel, error, sizeof error))
        ZT_FAIL ("field selector \"%s\": %s", text, error);
    bool yes = zube_field_selector_matches (sel, object);
    zube_field_selector_destroy (&sel);
    ZT_ASSERT (sel == NULL);
    return yes;
}

static void
test_field_selectors (void)
{
    ProtobufCMessage *pod =
        s_decode ("metadata:\n  name: web-1\n  namespace: prod\nspec:\n  nodeName: n1\n"
                  "  hostNetwork: true\n  schedulerName: default-scheduler\nstatus:\n"
                  "  phase: Running\n  podIP: 10.0.0.7\n",
                  &zube__pod__descriptor);
    ProtobufCMessage *pending = s_decode (
        "metadata:\n  name: web-2\nstatus:\n  phase: Pending\n", &zube__pod__descriptor);

    ZT_ASSERT (s_field_matches ("", "pods", pod));
    ZT_ASSERT (s_field_matches ("metadata.name=web-1", "pods", pod));
    ZT_ASSERT (!s_field_matches ("metadata.name=web-2", "pods", pod));
    ZT_ASSERT (s_field_matches ("metadata.namespace==prod", "pods", pod));
    ZT_ASSERT (s_field_matches ("spec.nodeName=n1,status.phase!=Pending", "pods", pod));
    ZT_ASSERT (!s_field_matches ("spec.nodeName=n1,status.phase!=Running", "pods", pod));
    ZT_ASSERT (s_field_matches ("spec.nodeName=", "pods", pending));
    ZT_ASSERT (!s_field_matches ("spec.nodeName=", "pods", pod));
    ZT_ASSERT (s_field_matches ("spec.hostNetwork=true", "pods", pod));
    ZT_ASSERT (s_field_matches ("spec.hostNetwork=false", "pods", pending));
    ZT_ASSERT (s_field_matches ("status.podIP=10.0.0.7", "po", pod));
    ZT_ASSERT (s_field_matches ("spec.schedulerName=default-scheduler", "pods", pod));

    zube_field_selector_t *sel = NULL;
    char error[512];
    ZT_ASSERT_INT_EQ (zube_field_selector_parse ("status.phase!=Failed,spec.nodeName=n1",
                                                 "pods", &sel, error, sizeof error),
                      0);
    ZT_ASSERT (!zube_field_selector_empty (sel));
    S_ASSERT_STR_EQ (zube_field_selector_required (sel, "spec.nodeName"), "n1");
    ZT_ASSERT (zube_field_selector_required (sel, "status.phase") == NULL);
    ZT_ASSERT (zube_field_selector_required (sel, "metadata.name") == NULL);
    zube_field_selector_destroy (&sel);

    //  Escapes
    ZT_ASSERT_INT_EQ (zube_field_selector_parse ("metadata.name=a\\,b\\=c\\\\", "pods",
                                                 &sel, error, sizeof error),
                      0);
    S_ASSERT_STR_EQ (zube_field_selector_required (sel, "metadata.name"), "a,b=c\\");
    zube_field_selector_destroy (&sel);

    //  Errors
    ZT_ASSERT_INT_EQ (
        zube_field_selector_parse ("spec.foo=x", "pods", &sel, error, sizeof error), -1);
    S_ASSERT_STR_EQ (error, "field label not supported: spec.foo");
    ZT_ASSERT (sel == NULL);
    ZT_ASSERT_INT_EQ (zube_field_selector_parse ("metadata.namespace=x", "nodes", &sel,
                                                 error, sizeof error),
                      -1);
    S_ASSERT_STR_EQ (error, "field label not supported: metadata.namespace");
    ZT_ASSERT_INT_EQ (zube_field_selector_parse ("spec.nodeName=x", "services", &sel,
                                                 error, sizeof error),
                      -1);
    S_ASSERT_STR_EQ (error, "field label not supported: spec.nodeName");
    ZT_ASSERT_INT_EQ (
        zube_field_selector_parse ("a=b,foo", "pods", &sel, error, sizeof error), -1);
    S_ASSERT_STR_EQ (error, "invalid selector: 'a=b,foo'; can't understand 'foo'");
    ZT_ASSERT_INT_EQ (zube_field_selector_parse ("metadata.name=a\\x", "pods", &sel,
                                                 error, sizeof error),
                      -1);
    S_ASSERT_STR_EQ (error, "invalid field selector: invalid escape sequence: \\x");
    ZT_ASSERT_INT_EQ (zube_field_selector_parse ("metadata.name=a=b", "pods", &sel, error,
                                                 sizeof error),
                      -1);
    S_ASSERT_STR_EQ (error, "invalid field selector: unescaped character in value: 61");

    //  Other kinds' fields
    ProtobufCMessage *node =
        s_decode ("metadata:\n  name: n1\n", &zube__node__descriptor);
    ZT_ASSERT (
        s_field_matches ("spec.unschedulable=false,metadata.name=n1", "nodes", node));
    ZT_ASSERT (!s_field_matches ("spec.unschedulable=true", "nodes", node));
    ProtobufCMessage *event = s_decode (
        "metadata:\n  name: e1\ninvolvedObject:\n  kind: Pod\n  name: web-1\nreason: "
        "Scheduled\nsource:\n  component: default-scheduler\ntype: Normal\n",
        &zube__event__descriptor);
    ZT_ASSERT (s_field_matches (
        "involvedObject.kind=Pod,involvedObject.name=web-1,reason=Scheduled,type=Normal",
        "events", event));
    ZT_ASSERT (s_field_matches ("source=default-scheduler", "events", event));
    ZT_ASSERT (!s_field_matches ("source=kubelet", "events", event));
    ProtobufCMessage *job = s_decode ("metadata:\n  name: j\nstatus:\n  succeeded: 2\n",
                                      &zube__job__descriptor);
    ZT_ASSERT (s_field_matches ("status.successful=2", "jobs", job));
    ZT_ASSERT (!s_field_matches ("status.successful=0", "jobs", job));

    protobuf_c_message_free_unpacked (job, NULL);
    protobuf_c_message_free_unpacked (event, NULL);
    protobuf_c_message_free_unpacked (node, NULL);
    protobuf_c_message_free_unpacked (pending, NULL);
    protobuf_c_message_free_unpacked (pod, NULL);
}

int
main (void)
{
    ZT_RUN (test_parse_canonical);
    ZT_RUN (test_parse_errors);
    ZT_RUN (test_matches);
    ZT_RUN (test_matches_object);
    ZT_RUN (test_from_message);
    ZT_RUN (test_label_key_value);
    ZT_RUN (test_dns_names);
    ZT_RUN (test_field_selectors);
    return zt_done ();
}
