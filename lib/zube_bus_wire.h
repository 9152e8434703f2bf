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

    Header only, all static inline: it is shared by libzube (lib/zube_bus*.c)
    and zube-broker (bus/), and exports nothing. Not installed. */
#ifndef ZUBE_BUS_WIRE_H_INCLUDED
#define ZUBE_BUS_WIRE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
    ZUBE_BUS_F_COUNT = 18
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
    [ZUBE_BUS_F_EVENT_SEQUENCE] = 0,
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

#endif
