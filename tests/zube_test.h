/*  zube_test - a tiny TAP test harness for zube's unit and integration tests.

    Each test program is a list of cases; every assertion that fails marks
    its case "not ok" and the case stops. The automake TAP driver counts
    cases, so `make check` reports one line per case.

        static void
        test_quantity_parse (void)
        {
            ZT_ASSERT_INT_EQ (parse ("500m"), 500);
        }

        int
        main (void)
        {
            ZT_RUN (test_quantity_parse);
            return zt_done ();
        }
*/
#ifndef ZUBE_TEST_H_INCLUDED
#define ZUBE_TEST_H_INCLUDED

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int zt_case_count = 0;
static int zt_failed_count = 0;
static jmp_buf zt_case_jump;
static char zt_failure[1024];

#define ZT_FAIL(...)                                                          \
    do {                                                                      \
        int zt_n_ = snprintf (zt_failure, sizeof zt_failure, "%s:%d: ",      \
                              __FILE__, __LINE__);                            \
        snprintf (zt_failure + zt_n_, sizeof zt_failure - zt_n_, __VA_ARGS__); \
        longjmp (zt_case_jump, 1);                                            \
    } while (0)

#define ZT_ASSERT(cond)                                                       \
    do {                                                                      \
        if (!(cond))                                                          \
            ZT_FAIL ("assertion failed: %s", #cond);                          \
    } while (0)

#define ZT_ASSERT_MSG(cond, ...)                                              \
    do {                                                                      \
        if (!(cond))                                                          \
            ZT_FAIL (__VA_ARGS__);                                            \
    } while (0)

#define ZT_ASSERT_INT_EQ(a, b)                                                \
    do {                                                                      \
        long long zt_a_ = (long long) (a), zt_b_ = (long long) (b);           \
        if (zt_a_ != zt_b_)                                                   \
            ZT_FAIL ("%s == %lld, expected %s == %lld", #a, zt_a_, #b, zt_b_); \
    } while (0)

#define ZT_ASSERT_STR_EQ(a, b)                                                \
    do {                                                                      \
        const char *zt_a_ = (a), *zt_b_ = (b);                                \
        if (!zt_a_ || !zt_b_ || strcmp (zt_a_, zt_b_) != 0)                   \
            ZT_FAIL ("%s == \"%s\", expected \"%s\"", #a,                     \
                     zt_a_ ? zt_a_ : "(null)", zt_b_ ? zt_b_ : "(null)");     \
    } while (0)

#define ZT_ASSERT_STR_CONTAINS(haystack, needle)                              \
    do {                                                                      \
        const char *zt_h_ = (haystack), *zt_needle_ = (needle);               \
        if (!zt_h_ || !strstr (zt_h_, zt_needle_))                            \
            ZT_FAIL ("%s == \"%s\" does not contain \"%s\"", #haystack,       \
                     zt_h_ ? zt_h_ : "(null)", zt_needle_);                   \
    } while (0)

//  Runs one case; a case that longjmps out may leak what it allocated,
//  which is why LeakSanitizer is told to ignore leaks only when a case
//  already failed (the suite fails then anyway).
#define ZT_RUN(fn) zt_run (#fn, fn)

static inline void
zt_run (const char *name, void (*fn) (void))
{
    zt_case_count++;
    zt_failure[0] = 0;
    if (setjmp (zt_case_jump) == 0) {
        fn ();
        printf ("ok %d - %s\n", zt_case_count, name);
    }
    else {
        zt_failed_count++;
        printf ("not ok %d - %s\n# %s\n", zt_case_count, name, zt_failure);
    }
    fflush (stdout);
}

//  Prints the TAP plan; returns the exit code for main.
static inline int
zt_done (void)
{
    printf ("1..%d\n", zt_case_count);
    fflush (stdout);
    return zt_failed_count ? 1 : 0;
}

//  A skipped case (a missing optional tool, say) still shows in the count.
static inline void
zt_skip (const char *name, const char *why)
{
    zt_case_count++;
    printf ("ok %d - %s # SKIP %s\n", zt_case_count, name, why);
    fflush (stdout);
}

#endif
