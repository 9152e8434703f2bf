/*  zt_bus_batch - bus batches written and read by tests, from the spec.

    docs/bus-protocol.md (Batches): one frame [0x00][format 1][varint count],
    then count entries [varint header size][BusHeader][varint payload size]
    [payload]. Written here independently of lib/zube_bus_wire.h, so that
    the tests check the library and the broker against the page rather
    than against themselves. Header only, for tests/unit/test_bus.c and
    tests/integration/test_broker.c. */
#ifndef ZT_BUS_BATCH_H_INCLUDED
#define ZT_BUS_BATCH_H_INCLUDED

#include "bus.pb-c.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

//  Entries being written (no prefix yet), or a whole frame
typedef struct {
    uint8_t *data;
    size_t size;
    size_t count;
} zt_batch_t;

//  One entry read back: the header unpacked (NULL when it does not unpack)
//  and a NUL-terminated copy of the payload
typedef struct {
    Zube__BusHeader *header;
    char *payload;
    size_t payload_size;
} zt_batch_entry_t;

static inline void
zt_batch_bytes (zt_batch_t *batch, const void *data, size_t size)
{
    batch->data = (uint8_t *)realloc (batch->data, batch->size + size + 1);
    if (size)
        memcpy (batch->data + batch->size, data, size);
    batch->size += size;
}

static inline void
zt_batch_varint (zt_batch_t *batch, uint64_t value)
{
    uint8_t buffer[10];
    size_t size = 0;
    while (value >= 0x80) {
        buffer[size++] = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    buffer[size++] = (uint8_t)value;
    zt_batch_bytes (batch, buffer, size);
}

static inline void
zt_batch_entry_raw (zt_batch_t *batch, const void *header, size_t header_size,
                    const void *payload, size_t payload_size)
{
    zt_batch_varint (batch, header_size);
    zt_batch_bytes (batch, header, header_size);
    zt_batch_varint (batch, payload_size);
    zt_batch_bytes (batch, payload, payload_size);
    batch->count++;
}

static inline void
zt_batch_entry (zt_batch_t *batch, const Zube__BusHeader *header, const char *payload)
{
    size_t size = zube__bus_header__get_packed_size (header);
    uint8_t *packed = (uint8_t *)malloc (size + 1);
    zube__bus_header__pack (header, packed);
    zt_batch_entry_raw (batch, packed, size, payload ? payload : "",
                        payload ? strlen (payload) : 0);
    free (packed);
}

//  Sends the entries as one batch frame with their count (count < 0: the
//  real one; another one makes a malformed batch), and empties batch
static inline int
zt_batch_send (void *socket, zt_batch_t *batch, long long count)
{
    zt_batch_t frame = {NULL, 0, 0};
    uint8_t prefix[2] = {0x00, 0x01};
    zt_batch_bytes (&frame, prefix, 2);
    zt_batch_varint (&frame, count < 0 ? (uint64_t)batch->count : (uint64_t)count);
    zt_batch_bytes (&frame, batch->data, batch->size);
    int rc = zmq_send (socket, frame.data, frame.size, 0);
    free (frame.data);
    free (batch->data);
    memset (batch, 0, sizeof *batch);
    return rc < 0 ? -1 : 0;
}

static inline void
zt_batch_entry_clear (zt_batch_entry_t *entry)
{
    if (entry->header)
        zube__bus_header__free_unpacked (entry->header, NULL);
    free (entry->payload);
    memset (entry, 0, sizeof *entry);
}

static inline bool
zt_batch_varint_read (const uint8_t **cursor, const uint8_t *end, uint64_t *value)
{
    *value = 0;
    for (int shift = 0; shift < 64 && *cursor < end; shift += 7) {
        uint8_t byte = *(*cursor)++;
        *value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return true;
    }
    return false;
}

//  Reads a batch frame into entries (at most max); returns how many it
//  holds, or -1 when the frame is not a well-formed batch
static inline int
zt_batch_parse (const uint8_t *data, size_t size, zt_batch_entry_t *entries, int max)
{
    const uint8_t *cursor = data + 2, *end = data + size;
    uint64_t count;
    if (size < 3 || data[0] != 0x00 || data[1] != 0x01 ||
        !zt_batch_varint_read (&cursor, end, &count) || count == 0 ||
        count > (uint64_t)max)
        return -1;
    for (uint64_t index = 0; index < count; index++) {
        uint64_t lengths[2];
        const uint8_t *parts[2];
        for (int side = 0; side < 2; side++) {
            if (!zt_batch_varint_read (&cursor, end, &lengths[side]) ||
                lengths[side] > (uint64_t)(end - cursor)) {
                while (index > 0)
                    zt_batch_entry_clear (&entries[--index]);
                return -1;
            }
            parts[side] = cursor;
            cursor += lengths[side];
        }
        zt_batch_entry_t *entry = &entries[index];
        entry->header = zube__bus_header__unpack (NULL, lengths[0], parts[0]);
        entry->payload_size = lengths[1];
        entry->payload = (char *)malloc (lengths[1] + 1);
        memcpy (entry->payload, parts[1], lengths[1]);
        entry->payload[lengths[1]] = 0;
    }
    if (cursor != end) {
        for (uint64_t index = 0; index < count; index++)
            zt_batch_entry_clear (&entries[index]);
        return -1;
    }
    return (int)count;
}

#endif
