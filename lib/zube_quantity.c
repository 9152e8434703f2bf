/*  zube_quantity - Kubernetes resource quantities, in exact integers.

    The number is kept as a string of significant decimal digits D and a
    power of ten, so the value in thousandths is D * 10^scale * 1024^k.
    Multiplying by 1024 and dividing by a power of ten are done on that
    digit string, which is exact for any input length; only the result has
    to fit in int64. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zube/quantity.h"

//  Exponents beyond this are clamped: the value then either overflows or
//  rounds to one thousandth, whatever the exact exponent.
#define S_EXPONENT_CLAMP 100000

static int
s_fail (const char *text, char *error, size_t error_size, const char *why)
{
    if (error && error_size)
        snprintf (error, error_size, "invalid quantity \"%.64s%s\": %s", text,
                  strlen (text) > 64 ? "..." : "", why);
    return -1;
}

//  Multiplies the big-endian decimal digit string digits[0..*len) by m
//  in place; digits has room for *len + 8 digits.
static void
s_digits_multiply (char *digits, size_t *len, unsigned m)
{
    unsigned carry = 0;
    for (size_t i = *len; i-- > 0;) {
        unsigned v = (unsigned)(digits[i] - '0') * m + carry;
        digits[i] = (char)('0' + v % 10);
        carry = v / 10;
    }
    while (carry) {
        memmove (digits + 1, digits, *len);
        digits[0] = (char)('0' + carry % 10);
        carry /= 10;
        (*len)++;
    }
}

int
zube_quantity_parse (const char *text, int64_t *milli_p, char *error, size_t error_size)
{
    if (!text || !*text)
        return s_fail (text ? text : "", error, error_size, "empty quantity");

    const char *p = text;
    bool negative = false;
    if (*p == '+' || *p == '-')
        negative = *p++ == '-';

    //  Significant digits of the number, integer and fraction together
    const char *number = p;
    size_t int_digits = 0, frac_digits = 0;
    while (*p >= '0' && *p <= '9') {
        p++;
        int_digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            frac_digits++;
        }
    }
    if (int_digits + frac_digits == 0)
        return s_fail (text, error, error_size, "expected a number");
    const char *number_end = p;

    //  Suffix: decimal exponent from SI prefixes or e<n>, binary power k
    long exponent = 0;
    int binary = 0;
    if (*p) {
        static const struct {
            const char *suffix;
            int exponent;
            int binary;
        } suffixes[] = {
            {.suffix = "Ki", .binary = 1},   {.suffix = "Mi", .binary = 2},
            {.suffix = "Gi", .binary = 3},   {.suffix = "Ti", .binary = 4},
            {.suffix = "Pi", .binary = 5},   {.suffix = "Ei", .binary = 6},
            {.suffix = "n", .exponent = -9}, {.suffix = "u", .exponent = -6},
            {.suffix = "m", .exponent = -3}, {.suffix = "k", .exponent = 3},
            {.suffix = "M", .exponent = 6},  {.suffix = "G", .exponent = 9},
            {.suffix = "T", .exponent = 12}, {.suffix = "P", .exponent = 15},
            {.suffix = "E", .exponent = 18},
        };
        bool found = false;
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
            if (strcmp (p, suffixes[i].suffix) == 0) {
                exponent = suffixes[i].exponent;
                binary = suffixes[i].binary;
                found = true;
                break;
            }
        if (!found && (*p == 'e' || *p == 'E')) {
            const char *q = p + 1;
            bool exp_negative = false;
            if (*q == '+' || *q == '-')
                exp_negative = *q++ == '-';
            if (!(*q >= '0' && *q <= '9'))
                return s_fail (text, error, error_size,
                               "expected digits after the exponent");
            while (*q >= '0' && *q <= '9') {
                if (exponent < S_EXPONENT_CLAMP)
                    exponent = exponent * 10 + (*q - '0');
                q++;
            }
            if (*q)
                return s_fail (text, error, error_size,
                               "unexpected characters after the exponent");
            if (exp_negative)
                exponent = -exponent;
            found = true;
        }
        if (!found)
            return s_fail (
                text, error, error_size,
                "unknown suffix (expected one of n u m k M G T P E Ki Mi Gi Ti Pi Ei, "
                "or an exponent such as e3)");
    }

    //  D: the digits without leading zeros; scale: the power of ten that
    //  turns D into the value in thousandths.
    size_t digits_size = int_digits + frac_digits + 32;
    char *digits = malloc (digits_size);
    if (!digits)
        return s_fail (text, error, error_size, "out of memory");
    size_t len = 0;
    for (const char *q = number; q < number_end; q++)
        if (*q != '.' && (len > 0 || *q != '0'))
            digits[len++] = *q;
    long scale = exponent + 3 - (long)frac_digits;
    while (len > 0 && digits[len - 1] == '0') {
        len--;
        scale++;
    }
    if (len == 0) {
        free (digits);
        *milli_p = 0;
        return 0;
    }
    for (int i = 0; i < binary; i++)
        s_digits_multiply (digits, &len, 1024);

    //  Integer part of D * 10^scale, and whether a fraction was cut off
    bool inexact = false;
    size_t whole_len = len;
    if (scale < 0) {
        size_t cut = (size_t)-scale;
        if (cut >= len) {
            whole_len = 0;
            inexact = true;
        } else {
            whole_len = len - cut;
            for (size_t i = whole_len; i < len; i++)
                if (digits[i] != '0')
                    inexact = true;
        }
    } else if (len + (size_t)scale > 19) {
        free (digits);
        return s_fail (text, error, error_size,
                       "too large: the value in thousandths does not fit in 64 bits");
    }
    unsigned __int128 magnitude = 0;
    for (size_t i = 0; i < whole_len; i++) {
        magnitude = magnitude * 10 + (unsigned)(digits[i] - '0');
        if (magnitude > (unsigned __int128)INT64_MAX)
            break;
    }
    free (digits);
    if (scale > 0)
        for (long i = 0; i < scale && magnitude <= (unsigned __int128)INT64_MAX; i++)
            magnitude *= 10;
    if (inexact)
        magnitude++;
    if (magnitude > (unsigned __int128)INT64_MAX)
        return s_fail (text, error, error_size,
                       "too large: the value in thousandths does not fit in 64 bits");
    *milli_p = negative ? -(int64_t)magnitude : (int64_t)magnitude;
    return 0;
}

int
zube_quantity_format (int64_t milli, bool binary, char *buf, size_t size)
{
    if (!buf || size == 0)
        return -1;
    int n;
    if (milli == 0)
        n = snprintf (buf, size, "0");
    else if (milli % 1000 != 0)
        n = snprintf (buf, size, "%" PRId64 "m", milli);
    else {
        int64_t value = milli / 1000;
        const char *suffix = "";
        if (binary && value % 1024 == 0) {
            static const char *binary_suffixes[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
            int k = 0;
            while (k < 6 && value % 1024 == 0) {
                value /= 1024;
                suffix = binary_suffixes[k++];
            }
        } else {
            static const char *decimal_suffixes[] = {"k", "M", "G", "T", "P", "E"};
            int k = 0;
            while (k < 6 && value % 1000 == 0) {
                value /= 1000;
                suffix = decimal_suffixes[k++];
            }
        }
        n = snprintf (buf, size, "%" PRId64 "%s", value, suffix);
    }
    if (n < 0 || (size_t)n >= size) {
        buf[0] = 0;
        return -1;
    }
    return n;
}

int64_t
zube_quantity_value (int64_t milli)
{
    int64_t value = milli / 1000;
    if (milli % 1000 > 0)
        value++;
    else if (milli % 1000 < 0)
        value--;
    return value;
}
