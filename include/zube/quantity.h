/*  zube_quantity - Kubernetes resource quantities ("500m", "128Mi", "1Gi").

    A quantity is held as an exact count of thousandths of its unit (milli),
    as Kubernetes' Quantity.MilliValue gives it: "500m" -> 500, "2" -> 2000,
    "1Ki" -> 1024000. Parsing uses integer arithmetic only, so "0.1" is
    exactly 100 and never 99.999...

    Grammar (Kubernetes' resource.ParseQuantity):

        quantity = [+-] number [suffix]
        number   = digits | digits "." | digits "." digits | "." digits
        suffix   = Ki | Mi | Gi | Ti | Pi | Ei          (powers of 1024)
                 | n | u | m | k | M | G | T | P | E    (powers of 1000)
                 | (e | E) [+-] digits                  (power of ten)

    A fraction of a thousandth is rounded away from zero ("0.1m" -> 1), as
    MilliValue rounds. A value whose milli count does not fit in int64
    (anything above about 9.2P, 8Pi) is an error. */
#ifndef ZUBE_QUANTITY_H_INCLUDED
#define ZUBE_QUANTITY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Parses text into *milli_p. Returns 0, or -1 with a message naming the
//  text in error (when error is not NULL). *milli_p is set only on success.
int zube_quantity_parse (const char *text, int64_t *milli_p, char *error,
                         size_t error_size);

//  Writes the canonical form of milli into buf: "500m", "2", "1k", or with
//  binary true and a whole multiple of 1024, "1Gi", "128Mi". Returns the
//  length written, or -1 if buf is too small (buf is then "").
int zube_quantity_format (int64_t milli, bool binary, char *buf, size_t size);

//  The quantity in whole units, rounded away from zero as Kubernetes'
//  Quantity.Value does: ceil(milli / 1000) for positive milli.
int64_t zube_quantity_value (int64_t milli);

#ifdef __cplusplus
}
#endif
#endif
