/*  zube_bus_wire - BusHeader read and written in place, without protobuf-c.

    Every bus message carries a BusHeader (schemas/bus.proto). Unpacking it
    with protobuf-c costs an allocation per field and a descriptor walk per
    byte; the broker and the client library only need a handful of fields.
    So both read a header in place (zube_bus_wire_scan: pointers into the
    frame, no allocation) and write the headers they send field by field
    into a buffer they own. The encoding is plain protobuf: a header written
    here unpacks with protobuf-c and the other way round. A header that is
    not well-formed protobuf, or has a known field with the wrong wire type,
    does not scan; unknown fields are skipped (and kept by whoever copies
    the bytes on).

    Batches (docs/bus-protocol.md): one frame that holds several requests
    and replies, written with zube_bus_batch_add / zube_bus_batch_take and
    read with zube_bus_batch_check / zube_bus_batch_next.

    Header only, all static inline: it is shared by libzube (lib/zube_bus*.c)
    and zube-broker (bus/), and exports nothing. Not installed. */
#ifndef ZUBE_BUS_WIRE_H_INCLUDED
#define ZUBE_BUS_WIRE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

//  BusHeader field numbers (schemas/bus.proto)
enum {
    ZUBE_BUS_F_VERSION = 1,
    ZUBE_BUS_F_KIND = 2,
    ZUBE_BUS_F_SERVICE = 3,
    ZUBE_BUS_F_METHOD = 4,
    ZUBE_BUS_F_CORRELATION_ID = 5,
    ZUBE_BUS_F_DEADLINE_MS = 6,
    ZUBE_BUS_F_STATUS = 7,
    ZUBE_BUS_F_ERROR = 8,
    ZUBE_BUS_F_SENDER = 9,
    ZUBE_BUS_F_CLIENT_ID = 10,
    ZUBE_BUS_F_SEQUENCE = 11,
    ZUBE_BUS_F_TOPIC = 12,
    ZUBE_BUS_F_HEARTBEAT_MS = 13,
    ZUBE_BUS_F_INSTANCE = 14,
    ZUBE_BUS_F_ROUTE = 15,
    ZUBE_BUS_F_ATTEMPT = 16,
    ZUBE_BUS_F_EVENT_SEQUENCE = 17,
    ZUBE_BUS_F_BATCH_FORMAT = 18,
    ZUBE_BUS_F_BATCH_MAX_BYTES = 19,
    ZUBE_BUS_F_COUNT = 20
};

//  A length-delimited field inside a received header
typedef struct {
    const uint8_t *data;
    size_t size;
} zube_bus_wire_bytes_t;

//  A received BusHeader, read in place. Only fields whose bit is set in
//  `present` have a value; for a repeated field the last one wins, as in
//  protobuf. span[] is how many bytes each known field took, for a
//  caller that copies the header without some fields.
typedef struct {
    const uint8_t *data;
    size_t size;
    uint32_t present;
    uint64_t varint[ZUBE_BUS_F_COUNT];
    zube_bus_wire_bytes_t bytes[ZUBE_BUS_F_COUNT];
    size_t span[ZUBE_BUS_F_COUNT];
} zube_bus_wire_t;

#define ZUBE_BUS_WIRE_HAS(header, field) ((((header)->present) >> (field)) & 1)

//  The wire type each known field must have: 0 varint, 2 length-delimited
static const uint8_t zube_bus_wire_types[ZUBE_BUS_F_COUNT] = {
    [ZUBE_BUS_F_VERSION] = 0,     [ZUBE_BUS_F_KIND] = 0,
    [ZUBE_BUS_F_SERVICE] = 2,     [ZUBE_BUS_F_METHOD] = 2,
    [ZUBE_BUS_F_CORRELATION_ID] = 0, [ZUBE_BUS_F_DEADLINE_MS] = 0,
    [ZUBE_BUS_F_STATUS] = 0,      [ZUBE_BUS_F_ERROR] = 2,
    [ZUBE_BUS_F_SENDER] = 2,      [ZUBE_BUS_F_CLIENT_ID] = 2,
    [ZUBE_BUS_F_SEQUENCE] = 0,    [ZUBE_BUS_F_TOPIC] = 2,
    [ZUBE_BUS_F_HEARTBEAT_MS] = 0, [ZUBE_BUS_F_INSTANCE] = 2,
    [ZUBE_BUS_F_ROUTE] = 2,       [ZUBE_BUS_F_ATTEMPT] = 0,
    [ZUBE_BUS_F_EVENT_SEQUENCE] = 0, [ZUBE_BUS_F_BATCH_FORMAT] = 0,
    [ZUBE_BUS_F_BATCH_MAX_BYTES] = 0,
};

static inline bool
zube_bus_wire_varint_read (const uint8_t **cursor, const uint8_t *end, uint64_t *value)
{
    if (*cursor < end && !(**cursor & 0x80)) { //  most tags and values: one byte
        *value = *(*cursor)++;
        return true;
    }
    uint64_t result = 0;
    for (int shift = 0; shift < 70 && *cursor < end; shift += 7) {
        uint8_t byte = *(*cursor)++;
        result |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *value = result;
            return true;
        }
    }
    return false;
}

static inline size_t
zube_bus_wire_varint_size (uint64_t value)
{
    size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        size++;
    }
    return size;
}

static inline uint8_t *
zube_bus_wire_varint_write (uint8_t *out, uint64_t value)
{
    while (value >= 0x80) {
        *out++ = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    *out++ = (uint8_t)value;
    return out;
}

//  Reads the field at *cursor; false when the bytes are not protobuf
static inline bool
zube_bus_wire_field_read (const uint8_t **cursor, const uint8_t *end, uint64_t *number,
                          uint64_t *value, zube_bus_wire_bytes_t *bytes,
                          unsigned *wire_type)
{
    uint64_t tag;
    if (!zube_bus_wire_varint_read (cursor, end, &tag))
        return false;
    *number = tag >> 3;
    *wire_type = tag & 7;
    if (*number == 0 || *number > 536870911)
        return false;
    switch (*wire_type) {
    case 0:
        return zube_bus_wire_varint_read (cursor, end, value);
    case 1:
        if (end - *cursor < 8)
            return false;
        *cursor += 8;
        return true;
    case 2:
        if (!zube_bus_wire_varint_read (cursor, end, value) ||
            *value > (uint64_t)(end - *cursor))
            return false;
        bytes->data = *cursor;
        bytes->size = (size_t)*value;
        *cursor += *value;
        return true;
    case 5:
        if (end - *cursor < 4)
            return false;
        *cursor += 4;
        return true;
    default:
        return false; //  groups and invalid wire types
    }
}

//  Reads a header in place: header points into data, which must outlive it.
//  Returns false when data is not a well-formed BusHeader.
static inline bool
zube_bus_wire_scan (zube_bus_wire_t *header, const uint8_t *data, size_t size)
{
    header->data = data;
    header->size = size;
    header->present = 0;
    header->span[ZUBE_BUS_F_DEADLINE_MS] = header->span[ZUBE_BUS_F_SENDER] =
        header->span[ZUBE_BUS_F_ROUTE] = 0;
    const uint8_t *cursor = data, *end = data + size;
    while (cursor < end) {
        const uint8_t *start = cursor;
        uint64_t number, value = 0;
        zube_bus_wire_bytes_t bytes = {NULL, 0};
        unsigned wire_type;
        if (!zube_bus_wire_field_read (&cursor, end, &number, &value, &bytes, &wire_type))
            return false;
        if (number >= ZUBE_BUS_F_COUNT)
            continue; //  unknown: skipped here, kept by a copy
        if (wire_type != zube_bus_wire_types[number])
            return false;
        uint32_t bit = 1u << number;
        if (!(header->present & bit))
            header->span[number] = 0;
        header->present |= bit;
        if (wire_type == 0)
            header->varint[number] = value;
        else
            header->bytes[number] = bytes;
        header->span[number] += (size_t)(cursor - start);
    }
    return true;
}

//  A string field as protobuf-c would hand it to C: up to its first NUL.
//  Returns its length (0 when absent); *text_p points into the frame.
static inline size_t
zube_bus_wire_string (const zube_bus_wire_t *header, int field, const char **text_p)
{
    if (!ZUBE_BUS_WIRE_HAS (header, field)) {
        *text_p = NULL;
        return 0;
    }
    const zube_bus_wire_bytes_t *bytes = &header->bytes[field];
    *text_p = (const char *)bytes->data;
    const void *nul = bytes->size ? memchr (bytes->data, 0, bytes->size) : NULL;
    return nul ? (size_t)((const uint8_t *)nul - bytes->data) : bytes->size;
}

//  Writing: sizes first (to size the buffer), then the fields, each one a
//  tag and its value.
static inline size_t
zube_bus_wire_varint_field_size (int field, uint64_t value)
{
    return zube_bus_wire_varint_size ((uint64_t)field << 3) +
           zube_bus_wire_varint_size (value);
}

static inline size_t
zube_bus_wire_bytes_field_size (int field, size_t size)
{
    return zube_bus_wire_varint_size ((uint64_t)field << 3 | 2) +
           zube_bus_wire_varint_size (size) + size;
}

static inline uint8_t *
zube_bus_wire_varint_field_write (uint8_t *out, int field, uint64_t value)
{
    out = zube_bus_wire_varint_write (out, (uint64_t)field << 3);
    return zube_bus_wire_varint_write (out, value);
}

static inline uint8_t *
zube_bus_wire_bytes_field_write (uint8_t *out, int field, const void *data, size_t size)
{
    out = zube_bus_wire_varint_write (out, (uint64_t)field << 3 | 2);
    out = zube_bus_wire_varint_write (out, size);
    if (size)
        memcpy (out, data, size);
    return out + size;
}

//  --------------------------------------------------------------------------
//  Batches: one frame [0x00][format 1][varint count], then count entries
//  [varint header size][BusHeader][varint payload size][payload]. The
//  first byte can never start a BusHeader (it would be the tag of field
//  number 0, which protobuf forbids), so a receiver tells a batch from a
//  classic [BusHeader][payload] message by it.

#define ZUBE_BUS_BATCH_MARKER 0x00
#define ZUBE_BUS_BATCH_FORMAT 1
#define ZUBE_BUS_BATCH_MAX_ENTRIES 1024     //  what a receiver accepts in one batch
#define ZUBE_BUS_BATCH_ENTRIES 64           //  what a sender puts in one batch
#define ZUBE_BUS_BATCH_BYTES (64 * 1024)    //  nor more bytes than this
#define ZUBE_BUS_BATCH_INLINE_MAX (16 * 1024) //  larger payloads go as classic messages
#define ZUBE_BUS_BATCH_PREFIX 4             //  bytes kept free for marker, format, count

//  A batch being written: entries after ZUBE_BUS_BATCH_PREFIX free bytes
typedef struct {
    uint8_t *data;
    size_t size;
    size_t max;
    uint32_t count;
} zube_bus_batch_t;

//  The bytes an entry takes in a batch
static inline size_t
zube_bus_batch_entry_size (size_t header_size, size_t payload_size)
{
    return zube_bus_wire_varint_size (header_size) + header_size +
           zube_bus_wire_varint_size (payload_size) + payload_size;
}

//  Whether an entry of entry_size bytes still fits a batch of at most
//  max_bytes (the receiver's limit) and ZUBE_BUS_BATCH_ENTRIES entries
static inline bool
zube_bus_batch_fits (const zube_bus_batch_t *batch, size_t entry_size, size_t max_bytes)
{
    size_t used = batch->count ? batch->size : ZUBE_BUS_BATCH_PREFIX;
    return batch->count < ZUBE_BUS_BATCH_ENTRIES && used + entry_size <= max_bytes;
}

//  Appends an entry: copies payload in and returns where its header_size
//  header bytes go (the caller writes them). NULL when out of memory.
static inline uint8_t *
zube_bus_batch_add (zube_bus_batch_t *batch, size_t header_size, const void *payload,
                    size_t payload_size)
{
    if (!batch->count)
        batch->size = ZUBE_BUS_BATCH_PREFIX;
    size_t needed = batch->size + zube_bus_batch_entry_size (header_size, payload_size);
    if (needed > batch->max) {
        size_t max = batch->max ? batch->max : 32768; //  64 entries of 256 bytes fit
        while (max < needed)
            max *= 2;
        uint8_t *data = (uint8_t *)realloc (batch->data, max);
        if (!data)
            return NULL;
        batch->data = data;
        batch->max = max;
    }
    uint8_t *out = zube_bus_wire_varint_write (batch->data + batch->size, header_size);
    uint8_t *header = out;
    out = zube_bus_wire_varint_write (out + header_size, payload_size);
    if (payload_size)
        memcpy (out, payload, payload_size);
    batch->size = needed;
    batch->count++;
    return header;
}

static inline void
zube_bus_batch_free_fn (void *data, void *hint)
{
    (void)data;
    free (hint);
}

//  Moves the batch into frame (no copy: libzmq frees the buffer once it is
//  sent) and empties it. -1 when there is nothing in it or no memory.
static inline int
zube_bus_batch_take (zube_bus_batch_t *batch, zmq_msg_t *frame)
{
    if (!batch->count)
        return -1;
    size_t count_size = zube_bus_wire_varint_size (batch->count);
    size_t start = ZUBE_BUS_BATCH_PREFIX - 2 - count_size;
    uint8_t *out = batch->data + start;
    out[0] = ZUBE_BUS_BATCH_MARKER;
    out[1] = ZUBE_BUS_BATCH_FORMAT;
    zube_bus_wire_varint_write (out + 2, batch->count);
    if (zmq_msg_init_data (frame, out, batch->size - start, zube_bus_batch_free_fn,
                           batch->data) != 0)
        return -1;
    batch->data = NULL;
    batch->size = batch->max = 0;
    batch->count = 0;
    return 0;
}

//  Drops what the batch holds and its buffer
static inline void
zube_bus_batch_clear (zube_bus_batch_t *batch)
{
    free (batch->data);
    batch->data = NULL;
    batch->size = batch->max = 0;
    batch->count = 0;
}

static inline bool
zube_bus_batch_is (const uint8_t *data, size_t size)
{
    return size > 0 && data[0] == ZUBE_BUS_BATCH_MARKER;
}

//  One entry of a received batch, pointing into its frame
typedef struct {
    const uint8_t *header;
    size_t header_size;
    const uint8_t *payload;
    size_t payload_size;
} zube_bus_batch_entry_t;

//  Reads the entry at *cursor; false when its lengths run past end
static inline bool
zube_bus_batch_next (const uint8_t **cursor, const uint8_t *end,
                     zube_bus_batch_entry_t *entry)
{
    uint64_t size;
    if (!zube_bus_wire_varint_read (cursor, end, &size) || size > (uint64_t)(end - *cursor))
        return false;
    entry->header = *cursor;
    entry->header_size = (size_t)size;
    *cursor += size;
    if (!zube_bus_wire_varint_read (cursor, end, &size) || size > (uint64_t)(end - *cursor))
        return false;
    entry->payload = *cursor;
    entry->payload_size = (size_t)size;
    *cursor += size;
    return true;
}

//  Checks a received batch's framing as a whole: the marker, format 1, a
//  count of 1..ZUBE_BUS_BATCH_MAX_ENTRIES, and exactly that many entries
//  filling the frame to its end. On success *entries_p is where the first
//  entry starts and *count_p the count. A batch that fails is dropped
//  whole: nothing in it can be trusted to start where it seems to.
static inline bool
zube_bus_batch_check (const uint8_t *data, size_t size, const uint8_t **entries_p,
                      uint32_t *count_p)
{
    const uint8_t *cursor = data + 2, *end = data + size;
    uint64_t count;
    if (size < 3 || data[0] != ZUBE_BUS_BATCH_MARKER || data[1] != ZUBE_BUS_BATCH_FORMAT ||
        !zube_bus_wire_varint_read (&cursor, end, &count) || count == 0 ||
        count > ZUBE_BUS_BATCH_MAX_ENTRIES)
        return false;
    const uint8_t *entries = cursor;
    for (uint64_t index = 0; index < count; index++) {
        zube_bus_batch_entry_t entry;
        if (!zube_bus_batch_next (&cursor, end, &entry))
            return false;
    }
    if (cursor != end)
        return false;
    *entries_p = entries;
    *count_p = (uint32_t)count;
    return true;
}

#endif
