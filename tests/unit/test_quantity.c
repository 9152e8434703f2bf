/*  test_quantity - zube_quantity parse, format and value. */
#include <stdint.h>

#include "../zube_test.h"
#include "zube/quantity.h"

//  ZT_ASSERT_STR_CONTAINS in zube_test.h shadows its needle inside ZT_FAIL
#define S_ASSERT_CONTAINS(haystack, needle)                                              \
    do {                                                                                 \
        const char *s_h_ = (haystack), *s_needle_ = (needle);                            \
        if (!s_h_ || !strstr (s_h_, s_needle_))                                          \
            ZT_FAIL ("\"%s\" does not contain \"%s\"", s_h_ ? s_h_ : "(null)",           \
                     s_needle_);                                                         \
    } while (0)

typedef struct {
    const char *text;
    int64_t milli;
} s_case_t;

static void
s_check_table (const s_case_t *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        int64_t milli = -42;
        char error[256] = "";
        int rc = zube_quantity_parse (cases[i].text, &milli, error, sizeof error);
        ZT_ASSERT_MSG (rc == 0, "parse \"%s\" failed: %s", cases[i].text, error);
        ZT_ASSERT_MSG (milli == cases[i].milli,
                       "parse \"%s\" gave %" PRId64 ", expected %" PRId64, cases[i].text,
                       milli, cases[i].milli);
    }
}

static void
test_plain_numbers (void)
{
    static const s_case_t cases[] = {
        {"0", 0},
        {"1", 1000},
        {"2", 2000},
        {"+2", 2000},
        {"-2", -2000},
        {"0.5", 500},
        {".5", 500},
        {"1.", 1000},
        {"1.25", 1250},
        {"0.1", 100},
        {"007", 7000},
        {"0.000", 0},
        {"-0", 0},
        {"1000000", 1000000000},
        {"123456789012345", INT64_C (123456789012345000)},
    };
    s_check_table (cases, sizeof cases / sizeof cases[0]);
}

static void
test_decimal_suffixes (void)
{
    static const s_case_t cases[] = {
        {"1n", 1}, //  a billionth rounds up to one thousandth
        {"1000000n", 1},
        {"1000001n", 2},
        {"1u", 1},
        {"1000u", 1},
        {"500m", 500},
        {"1500m", 1500},
        {"1m", 1},
        {"1k", 1000000},
        {"1M", INT64_C (1000000000)},
        {"1G", INT64_C (1000000000000)},
        {"1T", INT64_C (1000000000000000)},
        {"1P", INT64_C (1000000000000000000)},
        {"2.5k", 2500000},
        {"0.5m", 1},
        {"-0.5m", -1},
        {"0n", 0},
    };
    s_check_table (cases, sizeof cases / sizeof cases[0]);
}

static void
test_binary_suffixes (void)
{
    static const s_case_t cases[] = {
        {"1Ki", 1024000},
        {"128Mi", INT64_C (128) * 1024 * 1024 * 1000},
        {"1Gi", INT64_C (1073741824000)},
        {"1Ti", INT64_C (1099511627776000)},
        {"1Pi", INT64_C (1125899906842624000)},
        {"8Pi", INT64_C (9007199254740992000)},
        {"1.5Gi", INT64_C (1610612736000)},
        {"0.5Ki", 512000},
        {"0.001Ki", 1024},
        {"0.0001Ki", 103}, //  102.4 thousandths round up
        {"0Ei", 0},
    };
    s_check_table (cases, sizeof cases / sizeof cases[0]);
}

static void
test_exponents (void)
{
    static const s_case_t cases[] = {
        {"1e3", 1000000},
        {"1E3", 1000000},
        {"1e+3", 1000000},
        {"1e-3", 1},
        {"1E-3", 1},
        {"1e0", 1000},
        {"2.5e2", 250000},
        {"1e-4", 1},
        {"5e-7", 1},
        {"0e99", 0},
        {"1e-999999999999", 1},
        {"12e-1", 1200},
        {"1e15", INT64_C (1000000000000000000)},
    };
    s_check_table (cases, sizeof cases / sizeof cases[0]);
}

static void
test_rounding (void)
{
    static const s_case_t cases[] = {
        {"0.0001", 1},
        {"0.0011", 2},
        {"1.0001", 1001},
        {"0.00000000000000000000000000000000000001", 1},
        {"100.0000000000000000000000000000000000001", 100001},
        {"-0.0001", -1},
        {"-1.0001", -1001},
    };
    s_check_table (cases, sizeof cases / sizeof cases[0]);
}

static void
test_limits (void)
{
    static const s_case_t cases[] = {
        {"9223372036854775807m", INT64_MAX},
        {"-9223372036854775807m", -INT64_MAX},
        {"9223372036854775.807", INT64_MAX},
        {"9223372036854775806.1m", INT64_MAX},
    };
    s_check_table (cases, sizeof cases / sizeof cases[0]);
}

static void
test_overflow (void)
{
    static const char *texts[] = {
        "9223372036854775808m",
        "1E",
        "10P",
        "9Pi",
        "1Ei",
        "1e16",
        "1e999999999",
        "99999999999999999999999999",
        "9223372036854775807.1m",
        "-1E",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int64_t milli = 42;
        char error[256] = "";
        ZT_ASSERT_MSG (zube_quantity_parse (texts[i], &milli, error, sizeof error) == -1,
                       "\"%s\" parsed", texts[i]);
        ZT_ASSERT_INT_EQ (milli, 42);
        S_ASSERT_CONTAINS (error, texts[i]);
        S_ASSERT_CONTAINS (error, "too large");
    }
}

static void
test_garbage (void)
{
    static const char *texts[] = {
        "",    "m",   ".",    "-",    "+",    "abc",  "1.2.3", "1 ",
        " 1",  "1K",  "1KiB", "1mi",  "1e",   "1e+",  "1e3x",  "1x",
        "--1", "1,5", "0x10", "1Gi5", "1 Gi", "1ee3", "Mi",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int64_t milli = 42;
        char error[256] = "";
        ZT_ASSERT_MSG (zube_quantity_parse (texts[i], &milli, error, sizeof error) == -1,
                       "\"%s\" parsed", texts[i]);
        ZT_ASSERT_INT_EQ (milli, 42);
        S_ASSERT_CONTAINS (error, "invalid quantity");
    }
    //  NULL error buffer is allowed
    int64_t milli;
    ZT_ASSERT_INT_EQ (zube_quantity_parse ("bad", &milli, NULL, 0), -1);
}

static void
test_format (void)
{
    static const struct {
        int64_t milli;
        bool binary;
        const char *text;
    } cases[] = {
        {0, false, "0"},
        {500, false, "500m"},
        {1500, false, "1500m"},
        {2000, false, "2"},
        {1000000, false, "1k"},
        {1024000, false, "1024"},
        {1024000, true, "1Ki"},
        {INT64_C (1073741824000), true, "1Gi"},
        {INT64_C (1610612736000), true, "1536Mi"},
        {INT64_C (128) * 1024 * 1024 * 1000, true, "128Mi"},
        {1500000, true, "1500"},
        {-500, false, "-500m"},
        {-2000000, false, "-2k"},
        {INT64_C (1000000000000000000), false, "1P"},
        {INT64_MAX, false, "9223372036854775807m"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        int n = zube_quantity_format (cases[i].milli, cases[i].binary, buf, sizeof buf);
        ZT_ASSERT_STR_EQ (buf, cases[i].text);
        ZT_ASSERT_INT_EQ (n, strlen (cases[i].text));
        //  The canonical form parses back to the same amount
        int64_t milli = 0;
        ZT_ASSERT_INT_EQ (zube_quantity_parse (buf, &milli, NULL, 0), 0);
        ZT_ASSERT_INT_EQ (milli, cases[i].milli);
    }
    char small[3];
    ZT_ASSERT_INT_EQ (zube_quantity_format (500, false, small, sizeof small), -1);
    ZT_ASSERT_STR_EQ (small, "");
}

static void
test_value (void)
{
    ZT_ASSERT_INT_EQ (zube_quantity_value (0), 0);
    ZT_ASSERT_INT_EQ (zube_quantity_value (1), 1);
    ZT_ASSERT_INT_EQ (zube_quantity_value (500), 1);
    ZT_ASSERT_INT_EQ (zube_quantity_value (1000), 1);
    ZT_ASSERT_INT_EQ (zube_quantity_value (1001), 2);
    ZT_ASSERT_INT_EQ (zube_quantity_value (-1500), -2);
    ZT_ASSERT_INT_EQ (zube_quantity_value (INT64_MAX), INT64_MAX / 1000 + 1);
}

int
main (void)
{
    ZT_RUN (test_plain_numbers);
    ZT_RUN (test_decimal_suffixes);
    ZT_RUN (test_binary_suffixes);
    ZT_RUN (test_exponents);
    ZT_RUN (test_rounding);
    ZT_RUN (test_limits);
    ZT_RUN (test_overflow);
    ZT_RUN (test_garbage);
    ZT_RUN (test_format);
    ZT_RUN (test_value);
    return zt_done ();
}
