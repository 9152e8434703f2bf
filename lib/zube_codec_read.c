/*  zube_codec_read - YAML and JSON text to a tree of nodes, one document
    at a time.

    YAML goes through libyaml's event parser rather than its document
    loader, so the limits hold while parsing: a document over the size
    limit, nested too deep, or whose aliases would expand to more nodes
    than the budget stops at the event that crosses the line. An alias
    does not copy its anchor's subtree: the tree shares it, and every node
    carries the count of nodes it stands for when expanded, which is what
    the budget is charged. YAML 1.1 merge keys (<<) are resolved here too.

    JSON has its own small parser, so its errors read like JSON errors
    ("invalid character '}' looking for beginning of value") and carry a
    line and column. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "zube_codec_private.h"

struct zc_reader_s {
    const char *text;
    size_t size;
    zube_codec_limits_t limits;
    bool json;
    bool done;
    int documents; //  documents started so far
    //  YAML
    yaml_parser_t parser;
    bool parser_ready;
    //  JSON cursor
    size_t pos;
    int line;              //  1-based
    int column;            //  1-based, in characters
    size_t document_start; //  offset of the JSON value being read
};

//  Builds one document's tree from nodes as they arrive
typedef struct {
    zc_document_t *document;
    const zube_codec_limits_t *limits;
    zube_codec_error_t *error;
    zc_node_t **stack;    //  open containers
    char **stack_anchors; //  their anchors, registered when they close
    int depth;
    zc_strmap_t anchors;
    size_t alias_nodes;
} s_builder_t;

void
zc_limits_resolve (const zube_codec_limits_t *limits, zube_codec_limits_t *resolved)
{
    resolved->max_document_size = limits && limits->max_document_size
                                      ? limits->max_document_size
                                      : ZUBE_CODEC_MAX_DOCUMENT_SIZE;
    resolved->max_alias_nodes = limits && limits->max_alias_nodes
                                    ? limits->max_alias_nodes
                                    : ZUBE_CODEC_MAX_ALIAS_NODES;
    resolved->max_depth =
        limits && limits->max_depth > 0 ? limits->max_depth : ZUBE_CODEC_MAX_DEPTH;
}

//  ---------------------------------------------------------------------
//  Buffers and string maps

void
zc_buffer_append (zc_buffer_t *self, const char *data, size_t size)
{
    if (self->failed)
        return;
    if (self->size + size + 1 > self->capacity) {
        size_t capacity = self->capacity ? self->capacity : 256;
        while (capacity < self->size + size + 1)
            capacity *= 2;
        char *grown = realloc (self->data, capacity);
        if (!grown) {
            self->failed = true;
            return;
        }
        self->data = grown;
        self->capacity = capacity;
    }
    memcpy (self->data + self->size, data, size);
    self->size += size;
    self->data[self->size] = 0;
}

void
zc_buffer_append_str (zc_buffer_t *self, const char *text)
{
    zc_buffer_append (self, text, strlen (text));
}

void
zc_buffer_append_json_string (zc_buffer_t *self, const char *text, size_t size)
{
    zc_buffer_append (self, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)text[i];
        const char *escape = NULL;
        char hex[8];
        switch (c) {
        case '"':
            escape = "\\\"";
            break;
        case '\\':
            escape = "\\\\";
            break;
        case '\n':
            escape = "\\n";
            break;
        case '\r':
            escape = "\\r";
            break;
        case '\t':
            escape = "\\t";
            break;
        case '\b':
            escape = "\\b";
            break;
        case '\f':
            escape = "\\f";
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf (hex, sizeof hex, "\\u%04x", c);
                escape = hex;
            }
        }
        if (escape) {
            zc_buffer_append (self, text + i - run, run);
            run = 0;
            zc_buffer_append_str (self, escape);
        } else
            run++;
    }
    zc_buffer_append (self, text + size - run, run);
    zc_buffer_append (self, "\"", 1);
}

static size_t
s_hash (const char *key, size_t length)
{
    uint64_t hash = 14695981039346656037ULL;
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ (unsigned char)key[i]) * 1099511628211ULL;
    return (size_t)hash;
}

static size_t
s_strmap_slot (zc_strmap_t *self, const char *key, size_t length)
{
    size_t slot = s_hash (key, length) & (self->capacity - 1);
    while (self->keys[slot] && !(self->lengths[slot] == length &&
                                 memcmp (self->keys[slot], key, length) == 0))
        slot = (slot + 1) & (self->capacity - 1);
    return slot;
}

void *
zc_strmap_get (zc_strmap_t *self, const char *key, size_t length)
{
    if (!self->count)
        return NULL;
    size_t slot = s_strmap_slot (self, key, length);
    return self->keys[slot] ? self->values[slot] : NULL;
}

int
zc_strmap_put (zc_strmap_t *self, const char *key, size_t length, void *value)
{
    if ((self->count + 1) * 2 > self->capacity) {
        zc_strmap_t grown = {.capacity = self->capacity ? self->capacity * 2 : 16};
        grown.keys = calloc (grown.capacity, sizeof *grown.keys);
        grown.lengths = calloc (grown.capacity, sizeof *grown.lengths);
        grown.values = calloc (grown.capacity, sizeof *grown.values);
        if (!grown.keys || !grown.lengths || !grown.values) {
            free (grown.keys);
            free (grown.lengths);
            free (grown.values);
            return -1;
        }
        for (size_t i = 0; i < self->capacity; i++)
            if (self->keys[i]) {
                size_t slot = s_strmap_slot (&grown, self->keys[i], self->lengths[i]);
                grown.keys[slot] = self->keys[i];
                grown.lengths[slot] = self->lengths[i];
                grown.values[slot] = self->values[i];
            }
        grown.count = self->count;
        free (self->keys);
        free (self->lengths);
        free (self->values);
        *self = grown;
    }
    size_t slot = s_strmap_slot (self, key, length);
    if (self->keys[slot]) {
        self->values[slot] = value;
        return 0;
    }
    char *copy = malloc (length + 1);
    if (!copy)
        return -1;
    memcpy (copy, key, length);
    copy[length] = 0;
    self->keys[slot] = copy;
    self->lengths[slot] = length;
    self->values[slot] = value;
    self->count++;
    return 0;
}

void
zc_strmap_clear (zc_strmap_t *self)
{
    for (size_t i = 0; i < self->capacity; i++)
        free ((char *)self->keys[i]);
    free (self->keys);
    free (self->lengths);
    free (self->values);
    memset (self, 0, sizeof *self);
}

//  ---------------------------------------------------------------------
//  Plain scalar resolution (YAML 1.2 core schema)

static bool
s_is_digits (const char *p, const char *end, const char *set)
{
    if (p >= end)
        return false;
    for (; p < end; p++)
        if (!strchr (set, *p) || !*p)
            return false;
    return true;
}

zc_scalar_kind_t
zc_plain_kind (const char *text, size_t length)
{
    const char *end = text + length;
    static const char *nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *bools[] = {"true", "True", "TRUE", "false", "False", "FALSE"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (length == strlen (nulls[i]) && memcmp (text, nulls[i], length) == 0)
            return ZC_NULL;
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
        if (length == strlen (bools[i]) && memcmp (text, bools[i], length) == 0)
            return ZC_BOOL;
    if (length > 2 && text[0] == '0' && text[1] == 'o' &&
        s_is_digits (text + 2, end, "01234567"))
        return ZC_INT;
    if (length > 2 && text[0] == '0' && text[1] == 'x' &&
        s_is_digits (text + 2, end, "0123456789abcdefABCDEF"))
        return ZC_INT;
    const char *p = text;
    if (p < end && (*p == '-' || *p == '+'))
        p++;
    if (s_is_digits (p, end, "0123456789"))
        return ZC_INT;
    static const char *specials[] = {".inf", ".Inf", ".INF"};
    for (size_t i = 0; i < 3; i++)
        if ((size_t)(end - p) == 4 && memcmp (p, specials[i], 4) == 0)
            return ZC_FLOAT;
    if (length == 4 && (memcmp (text, ".nan", 4) == 0 || memcmp (text, ".NaN", 4) == 0 ||
                        memcmp (text, ".NAN", 4) == 0))
        return ZC_FLOAT;
    //  [0-9]+(\.[0-9]*)? or \.[0-9]+, then ([eE][-+]?[0-9]+)?
    size_t int_digits = 0, frac_digits = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        p++;
        int_digits++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            frac_digits++;
        }
    }
    if (int_digits == 0 && frac_digits == 0)
        return ZC_STRING;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '-' || *p == '+'))
            p++;
        if (!s_is_digits (p, end, "0123456789"))
            return ZC_STRING;
        p = end;
    }
    return p == end ? ZC_FLOAT : ZC_STRING;
}

//  ---------------------------------------------------------------------
//  Tree building

static void s_error (zube_codec_error_t *error, int document, int line, int column,
                     const char *format, ...) __attribute__ ((format (printf, 5, 6)));

static void
s_error (zube_codec_error_t *error, int document, int line, int column,
         const char *format, ...)
{
    if (!error)
        return;
    error->document = document;
    error->line = line;
    error->column = column;
    error->field[0] = 0;
    va_list args;
    va_start (args, format);
    vsnprintf (error->message, sizeof error->message, format, args);
    va_end (args);
}

void
zc_document_clear (zc_document_t *document)
{
    zc_node_t *node = document->allocs;
    while (node) {
        zc_node_t *next = node->next_alloc;
        free (node->text);
        free (node->items);
        free (node);
        node = next;
    }
    memset (document, 0, sizeof *document);
}

static zc_node_t *
s_node_new (s_builder_t *self, zc_node_type_t type, int line, int column)
{
    zc_node_t *node = calloc (1, sizeof *node);
    if (!node) {
        s_error (self->error, self->document->number, line, column, "out of memory");
        return NULL;
    }
    node->type = type;
    node->line = line;
    node->column = column;
    node->expanded = 1;
    node->next_alloc = self->document->allocs;
    self->document->allocs = node;
    return node;
}

static int
s_items_push (zc_node_t *parent, zc_node_t *child)
{
    if (parent->count == parent->capacity) {
        size_t capacity = parent->capacity ? parent->capacity * 2 : 4;
        zc_node_t **items = realloc (parent->items, capacity * sizeof *items);
        if (!items)
            return -1;
        parent->items = items;
        parent->capacity = capacity;
    }
    parent->items[parent->count++] = child;
    return 0;
}

//  Hangs a node under the open container, or makes it the root. A
//  container's own expansion count is added when it closes.
static int
s_attach (s_builder_t *self, zc_node_t *node, size_t expanded)
{
    if (self->depth == 0) {
        self->document->root = node;
        return 0;
    }
    zc_node_t *parent = self->stack[self->depth - 1];
    if (s_items_push (parent, node)) {
        s_error (self->error, self->document->number, node->line, node->column,
                 "out of memory");
        return -1;
    }
    parent->expanded += expanded;
    return 0;
}

static int
s_register_anchor (s_builder_t *self, const char *anchor, zc_node_t *node)
{
    if (anchor && zc_strmap_put (&self->anchors, anchor, strlen (anchor), node)) {
        s_error (self->error, self->document->number, node->line, node->column,
                 "out of memory");
        return -1;
    }
    return 0;
}

static int
s_scalar (s_builder_t *self, const char *text, size_t length, zc_scalar_kind_t kind,
          bool plain, const char *anchor, int line, int column)
{
    zc_node_t *node = s_node_new (self, ZC_SCALAR, line, column);
    if (!node)
        return -1;
    node->text = malloc (length + 1);
    if (!node->text) {
        s_error (self->error, self->document->number, line, column, "out of memory");
        return -1;
    }
    memcpy (node->text, text, length);
    node->text[length] = 0;
    node->length = length;
    node->kind = kind;
    node->plain = plain;
    if (s_register_anchor (self, anchor, node))
        return -1;
    return s_attach (self, node, 1);
}

static int
s_container_start (s_builder_t *self, zc_node_type_t type, const char *anchor, int line,
                   int column)
{
    if (self->depth >= self->limits->max_depth) {
        s_error (self->error, self->document->number, line, column,
                 "nesting is deeper than the limit of %d levels",
                 self->limits->max_depth);
        return -1;
    }
    zc_node_t *node = s_node_new (self, type, line, column);
    if (!node || s_attach (self, node, 0))
        return -1;
    char *anchor_copy = NULL;
    if (anchor && !(anchor_copy = strdup (anchor))) {
        s_error (self->error, self->document->number, line, column, "out of memory");
        return -1;
    }
    self->stack[self->depth] = node;
    self->stack_anchors[self->depth] = anchor_copy;
    self->depth++;
    return 0;
}

//  A mapping with merge keys (<<: *base, or <<: [*a, *b]) becomes the
//  plain mapping they stand for: its own keys first, then each merged
//  mapping's keys not already present, earlier merges winning.
static int
s_resolve_merge_keys (s_builder_t *self, zc_node_t *mapping)
{
    bool has_merge = false;
    for (size_t i = 0; i < mapping->count; i += 2) {
        zc_node_t *key = mapping->items[i];
        if (key->type == ZC_SCALAR && key->plain && key->length == 2 &&
            memcmp (key->text, "<<", 2) == 0)
            has_merge = true;
    }
    if (!has_merge)
        return 0;

    zc_node_t **items = mapping->items;
    size_t count = mapping->count;
    mapping->items = NULL;
    mapping->count = mapping->capacity = 0;
    mapping->expanded = 1;
    zc_strmap_t seen = {0};
    int rc = 0;
    //  Pass 0 takes the mapping's own pairs, pass 1 the merged ones
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t i = 0; i < count && rc == 0; i += 2) {
            zc_node_t *key = items[i];
            bool is_merge = key->type == ZC_SCALAR && key->plain && key->length == 2 &&
                            memcmp (key->text, "<<", 2) == 0;
            if (pass == 0 && !is_merge) {
                if (key->type == ZC_SCALAR)
                    zc_strmap_put (&seen, key->text, key->length, key);
                if (s_items_push (mapping, key) || s_items_push (mapping, items[i + 1]))
                    rc = -1;
                mapping->expanded += key->expanded + items[i + 1]->expanded;
                continue;
            }
            if (pass == 0 || !is_merge)
                continue;
            zc_node_t *value = items[i + 1];
            zc_node_t **sources = &items[i + 1];
            size_t source_count = 1;
            if (value->type == ZC_SEQUENCE) {
                sources = value->items;
                source_count = value->count;
            }
            for (size_t s = 0; s < source_count && rc == 0; s++) {
                zc_node_t *source = sources[s];
                if (source->type != ZC_MAPPING) {
                    s_error (
                        self->error, self->document->number, source->line, source->column,
                        "a merge key (<<) needs a mapping or a sequence of mappings");
                    rc = -2;
                    break;
                }
                for (size_t j = 0; j < source->count && rc == 0; j += 2) {
                    zc_node_t *source_key = source->items[j];
                    if (source_key->type == ZC_SCALAR) {
                        if (zc_strmap_get (&seen, source_key->text, source_key->length))
                            continue;
                        zc_strmap_put (&seen, source_key->text, source_key->length,
                                       source_key);
                    }
                    if (s_items_push (mapping, source_key) ||
                        s_items_push (mapping, source->items[j + 1]))
                        rc = -1;
                    mapping->expanded +=
                        source_key->expanded + source->items[j + 1]->expanded;
                }
            }
        }
    zc_strmap_clear (&seen);
    free (items);
    if (rc == -1)
        s_error (self->error, self->document->number, mapping->line, mapping->column,
                 "out of memory");
    return rc ? -1 : 0;
}

static int
s_container_end (s_builder_t *self)
{
    self->depth--;
    zc_node_t *node = self->stack[self->depth];
    char *anchor = self->stack_anchors[self->depth];
    self->stack_anchors[self->depth] = NULL;
    int rc = 0;
    if (node->type == ZC_MAPPING)
        rc = s_resolve_merge_keys (self, node);
    if (rc == 0)
        rc = s_register_anchor (self, anchor, node);
    free (anchor);
    if (rc == 0 && self->depth > 0)
        self->stack[self->depth - 1]->expanded += node->expanded;
    return rc;
}

static int
s_alias (s_builder_t *self, const char *anchor, int line, int column)
{
    zc_node_t *target = zc_strmap_get (&self->anchors, anchor, strlen (anchor));
    if (!target) {
        //  Unknown, or an alias to a node still open (a cycle)
        s_error (
            self->error, self->document->number, line, column,
            "unknown anchor \"%.64s\" (an alias must follow its complete anchored node)",
            anchor);
        return -1;
    }
    self->alias_nodes += target->expanded;
    if (self->alias_nodes > self->limits->max_alias_nodes) {
        s_error (self->error, self->document->number, line, column,
                 "aliases expand to more than the budget of %zu nodes",
                 self->limits->max_alias_nodes);
        return -1;
    }
    return s_attach (self, target, target->expanded);
}

static int
s_builder_init (s_builder_t *self, zc_reader_t *reader, zc_document_t *document,
                zube_codec_error_t *error)
{
    memset (self, 0, sizeof *self);
    self->document = document;
    self->limits = &reader->limits;
    self->error = error;
    self->stack = calloc ((size_t)reader->limits.max_depth + 1, sizeof *self->stack);
    self->stack_anchors =
        calloc ((size_t)reader->limits.max_depth + 1, sizeof *self->stack_anchors);
    if (!self->stack || !self->stack_anchors) {
        free (self->stack);
        free (self->stack_anchors);
        s_error (error, document->number, 0, 0, "out of memory");
        return -1;
    }
    return 0;
}

static void
s_builder_fini (s_builder_t *self)
{
    for (int i = 0; i < self->depth; i++)
        free (self->stack_anchors[i]);
    free (self->stack);
    free (self->stack_anchors);
    zc_strmap_clear (&self->anchors);
}

//  ---------------------------------------------------------------------
//  YAML

static void
s_offset_position (const char *text, size_t size, size_t offset, int *line_p,
                   int *column_p)
{
    int line = 1, column = 1;
    for (size_t i = 0; i < offset && i < size; i++) {
        if (text[i] == '\n') {
            line++;
            column = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80)
            column++;
    }
    *line_p = line;
    *column_p = column;
}

static void
s_yaml_syntax_error (zc_reader_t *self, int document, zube_codec_error_t *error)
{
    yaml_parser_t *parser = &self->parser;
    if (parser->error == YAML_MEMORY_ERROR) {
        s_error (error, document, 0, 0, "out of memory");
        return;
    }
    if (parser->error == YAML_READER_ERROR) {
        int line, column;
        s_offset_position (self->text, self->size, parser->problem_offset, &line,
                           &column);
        if (parser->problem_value != -1)
            s_error (error, document, line, column, "%s: #%X", parser->problem,
                     parser->problem_value);
        else
            s_error (error, document, line, column, "%s", parser->problem);
        return;
    }
    int line = (int)parser->problem_mark.line + 1;
    int column = (int)parser->problem_mark.column + 1;
    if (parser->context)
        s_error (error, document, line, column, "%s (%s started at line %d, column %d)",
                 parser->problem ? parser->problem : "syntax error", parser->context,
                 (int)parser->context_mark.line + 1,
                 (int)parser->context_mark.column + 1);
    else
        s_error (error, document, line, column, "%s",
                 parser->problem ? parser->problem : "syntax error");
}

static int
s_yaml_next (zc_reader_t *self, zc_document_t *document, zube_codec_error_t *error)
{
    if (!self->parser_ready) {
        if (!yaml_parser_initialize (&self->parser)) {
            s_error (error, 1, 0, 0, "out of memory");
            return -1;
        }
        yaml_parser_set_input_string (&self->parser, (const unsigned char *)self->text,
                                      self->size);
        self->parser_ready = true;
    }
    s_builder_t builder;
    bool in_document = false;
    size_t document_start = 0;
    document->number = self->documents + 1;
    if (s_builder_init (&builder, self, document, error))
        return -1;
    int rc = -1;
    while (true) {
        yaml_event_t event;
        if (!yaml_parser_parse (&self->parser, &event)) {
            s_yaml_syntax_error (
                self, in_document ? self->documents : self->documents + 1, error);
            break;
        }
        int line = (int)event.start_mark.line + 1;
        int column = (int)event.start_mark.column + 1;
        if (in_document &&
            event.end_mark.index - document_start > self->limits.max_document_size) {
            s_error (error, document->number, (int)event.end_mark.line + 1,
                     (int)event.end_mark.column + 1,
                     "document is larger than the limit of %zu bytes",
                     self->limits.max_document_size);
            yaml_event_delete (&event);
            break;
        }
        int step = 0;
        bool finished = false;
        switch (event.type) {
        case YAML_STREAM_END_EVENT:
            self->done = true;
            rc = 0;
            finished = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            in_document = true;
            document->number = ++self->documents;
            document->line = line;
            document->column = column;
            document_start = event.start_mark.index;
            break;
        case YAML_DOCUMENT_END_EVENT:
            rc = 1;
            finished = true;
            break;
        case YAML_SCALAR_EVENT: {
            const char *tag = (const char *)event.data.scalar.tag;
            const char *value = (const char *)event.data.scalar.value;
            size_t length = event.data.scalar.length;
            bool plain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            zc_scalar_kind_t kind = plain ? zc_plain_kind (value, length) : ZC_STRING;
            if (tag && strcmp (tag, YAML_STR_TAG) == 0)
                kind = ZC_STRING;
            else if (tag && (strcmp (tag, YAML_INT_TAG) == 0 ||
                             strcmp (tag, YAML_FLOAT_TAG) == 0 ||
                             strcmp (tag, YAML_BOOL_TAG) == 0 ||
                             strcmp (tag, YAML_NULL_TAG) == 0))
                kind = zc_plain_kind (value, length);
            step = s_scalar (&builder, value, length, kind, plain && !tag,
                             (const char *)event.data.scalar.anchor, line, column);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
            step = s_container_start (&builder, ZC_SEQUENCE,
                                      (const char *)event.data.sequence_start.anchor,
                                      line, column);
            break;
        case YAML_MAPPING_START_EVENT:
            step = s_container_start (&builder, ZC_MAPPING,
                                      (const char *)event.data.mapping_start.anchor, line,
                                      column);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            step = s_container_end (&builder);
            break;
        case YAML_ALIAS_EVENT:
            step =
                s_alias (&builder, (const char *)event.data.alias.anchor, line, column);
            break;
        default:
            break;
        }
        yaml_event_delete (&event);
        if (step)
            break;
        if (finished)
            break;
    }
    s_builder_fini (&builder);
    if (rc != 1) {
        zc_document_clear (document);
        if (rc == -1)
            self->done = true;
    }
    return rc;
}

//  ---------------------------------------------------------------------
//  JSON

static int
s_json_peek (zc_reader_t *self)
{
    return self->pos < self->size ? (unsigned char)self->text[self->pos] : -1;
}

static void
s_json_advance (zc_reader_t *self)
{
    unsigned char c = (unsigned char)self->text[self->pos++];
    if (c == '\n') {
        self->line++;
        self->column = 1;
    } else if ((c & 0xc0) != 0x80)
        self->column++;
}

static void
s_json_skip_space (zc_reader_t *self)
{
    int c;
    while ((c = s_json_peek (self)) == ' ' || c == '\t' || c == '\n' || c == '\r')
        s_json_advance (self);
}

//  "invalid character 'x' <context>", or end of input
static int
s_json_unexpected (zc_reader_t *self, s_builder_t *builder, const char *context)
{
    int c = s_json_peek (self);
    if (c == -1)
        s_error (builder->error, builder->document->number, self->line, self->column,
                 "unexpected end of JSON input");
    else if (c >= 0x20 && c < 0x7f)
        s_error (builder->error, builder->document->number, self->line, self->column,
                 "invalid character '%c' %s", c, context);
    else
        s_error (builder->error, builder->document->number, self->line, self->column,
                 "invalid character '\\x%02x' %s", c, context);
    return -1;
}

static void
s_utf8_put (zc_buffer_t *buffer, unsigned long code)
{
    char out[4];
    size_t n;
    if (code < 0x80) {
        out[0] = (char)code;
        n = 1;
    } else if (code < 0x800) {
        out[0] = (char)(0xc0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3f));
        n = 2;
    } else if (code < 0x10000) {
        out[0] = (char)(0xe0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3f));
        out[2] = (char)(0x80 | (code & 0x3f));
        n = 3;
    } else {
        out[0] = (char)(0xf0 | (code >> 18));
        out[1] = (char)(0x80 | ((code >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((code >> 6) & 0x3f));
        out[3] = (char)(0x80 | (code & 0x3f));
        n = 4;
    }
    zc_buffer_append (buffer, out, n);
}

//  Length of the valid UTF-8 sequence at p, 0 if invalid
static size_t
s_utf8_length (const unsigned char *p, size_t available)
{
    if (p[0] < 0x80)
        return 1;
    size_t n;
    unsigned long code;
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        code = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        code = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        code = p[0] & 0x07;
    } else
        return 0;
    if (n > available)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        code = (code << 6) | (p[i] & 0x3f);
    }
    static const unsigned long minimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < minimum[n] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        return 0;
    return n;
}

static int
s_json_hex4 (zc_reader_t *self, unsigned long *code_p)
{
    unsigned long code = 0;
    for (int i = 0; i < 4; i++) {
        int c = s_json_peek (self);
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0)
            return -1;
        code = code * 16 + (unsigned long)digit;
        s_json_advance (self);
    }
    *code_p = code;
    return 0;
}

static int
s_json_string (zc_reader_t *self, s_builder_t *builder)
{
    int line = self->line, column = self->column;
    s_json_advance (self); //  the opening quote
    zc_buffer_t buffer = {0};
    int rc = -1;
    while (true) {
        int c = s_json_peek (self);
        if (c == -1) {
            s_json_unexpected (self, builder, "");
            break;
        }
        if (c == '"') {
            s_json_advance (self);
            if (buffer.failed)
                s_error (builder->error, builder->document->number, line, column,
                         "out of memory");
            else
                rc = s_scalar (builder, buffer.data ? buffer.data : "", buffer.size,
                               ZC_STRING, false, NULL, line, column);
            break;
        }
        if (c < 0x20) {
            s_json_unexpected (self, builder, "in string literal");
            break;
        }
        if (c == '\\') {
            s_json_advance (self);
            int e = s_json_peek (self);
            const char *simple = NULL;
            switch (e) {
            case '"':
                simple = "\"";
                break;
            case '\\':
                simple = "\\";
                break;
            case '/':
                simple = "/";
                break;
            case 'b':
                simple = "\b";
                break;
            case 'f':
                simple = "\f";
                break;
            case 'n':
                simple = "\n";
                break;
            case 'r':
                simple = "\r";
                break;
            case 't':
                simple = "\t";
                break;
            case 'u':
                break;
            default:
                s_json_unexpected (self, builder, "in string escape code");
                goto done;
            }
            s_json_advance (self);
            if (simple) {
                zc_buffer_append (&buffer, simple, 1);
                continue;
            }
            unsigned long code;
            if (s_json_hex4 (self, &code)) {
                s_json_unexpected (self, builder, "in \\u hexadecimal character escape");
                break;
            }
            if (code >= 0xd800 && code < 0xdc00 && self->pos + 1 < self->size &&
                self->text[self->pos] == '\\' && self->text[self->pos + 1] == 'u') {
                //  A surrogate pair, as JSON writes characters past U+FFFF
                size_t saved_pos = self->pos;
                int saved_line = self->line, saved_column = self->column;
                s_json_advance (self);
                s_json_advance (self);
                unsigned long low;
                if (s_json_hex4 (self, &low) == 0 && low >= 0xdc00 && low < 0xe000)
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                else {
                    self->pos = saved_pos;
                    self->line = saved_line;
                    self->column = saved_column;
                }
            }
            if (code >= 0xd800 && code < 0xe000)
                code = 0xfffd; //  a lone surrogate, as Go's decoder does
            s_utf8_put (&buffer, code);
            continue;
        }
        size_t n = s_utf8_length ((const unsigned char *)self->text + self->pos,
                                  self->size - self->pos);
        if (n == 0) {
            s_error (builder->error, builder->document->number, self->line, self->column,
                     "invalid UTF-8 in string literal");
            break;
        }
        zc_buffer_append (&buffer, self->text + self->pos, n);
        for (size_t i = 0; i < n; i++)
            s_json_advance (self);
    }
done:
    free (buffer.data);
    return rc;
}

static int
s_json_number (zc_reader_t *self, s_builder_t *builder)
{
    int line = self->line, column = self->column;
    size_t start = self->pos;
    bool is_float = false;
    if (s_json_peek (self) == '-')
        s_json_advance (self);
    int c = s_json_peek (self);
    if (c == '0')
        s_json_advance (self);
    else if (c >= '1' && c <= '9')
        while ((c = s_json_peek (self)) >= '0' && c <= '9')
            s_json_advance (self);
    else
        return s_json_unexpected (self, builder, "in numeric literal");
    if (s_json_peek (self) == '.') {
        is_float = true;
        s_json_advance (self);
        if (!((c = s_json_peek (self)) >= '0' && c <= '9'))
            return s_json_unexpected (self, builder,
                                      "after decimal point in numeric literal");
        while ((c = s_json_peek (self)) >= '0' && c <= '9')
            s_json_advance (self);
    }
    if ((c = s_json_peek (self)) == 'e' || c == 'E') {
        is_float = true;
        s_json_advance (self);
        if ((c = s_json_peek (self)) == '+' || c == '-')
            s_json_advance (self);
        if (!((c = s_json_peek (self)) >= '0' && c <= '9'))
            return s_json_unexpected (self, builder, "in exponent of numeric literal");
        while ((c = s_json_peek (self)) >= '0' && c <= '9')
            s_json_advance (self);
    }
    return s_scalar (builder, self->text + start, self->pos - start,
                     is_float ? ZC_FLOAT : ZC_INT, true, NULL, line, column);
}

static int
s_json_literal (zc_reader_t *self, s_builder_t *builder)
{
    static const struct {
        const char *word;
        zc_scalar_kind_t kind;
    } literals[] = {{"true", ZC_BOOL}, {"false", ZC_BOOL}, {"null", ZC_NULL}};
    int line = self->line, column = self->column;
    for (size_t i = 0; i < 3; i++) {
        if (s_json_peek (self) != literals[i].word[0])
            continue;
        size_t start = self->pos;
        for (const char *w = literals[i].word; *w; w++) {
            if (s_json_peek (self) != *w) {
                char context[48];
                snprintf (context, sizeof context, "in literal %s (expecting '%c')",
                          literals[i].word, *w);
                return s_json_unexpected (self, builder, context);
            }
            s_json_advance (self);
        }
        return s_scalar (builder, self->text + start, self->pos - start, literals[i].kind,
                         true, NULL, line, column);
    }
    return s_json_unexpected (self, builder, "looking for beginning of value");
}

//  Parses one JSON value iteratively; containers use the builder's stack
//  so the depth limit bounds memory, not the C stack.
static int
s_json_value (zc_reader_t *self, s_builder_t *builder)
{
    //  What the innermost open container expects next
    enum { S_VALUE, S_AFTER_VALUE } state = S_VALUE;
    bool after_key = false; //  in an object, a key was just read
    do {
        s_json_skip_space (self);
        if (self->pos - self->document_start > self->limits.max_document_size) {
            s_error (builder->error, builder->document->number, self->line, self->column,
                     "document is larger than the limit of %zu bytes",
                     self->limits.max_document_size);
            return -1;
        }
        int c = s_json_peek (self);
        zc_node_t *open = builder->depth ? builder->stack[builder->depth - 1] : NULL;
        if (state == S_AFTER_VALUE) {
            if (!open)
                return 0;
            if (open->type == ZC_MAPPING && after_key) {
                if (c != ':')
                    return s_json_unexpected (self, builder, "after object key");
                s_json_advance (self);
                after_key = false;
                state = S_VALUE;
                continue;
            }
            char close = open->type == ZC_MAPPING ? '}' : ']';
            if (c == ',') {
                s_json_advance (self);
                s_json_skip_space (self);
                if (open->type == ZC_MAPPING) {
                    if (s_json_peek (self) != '"')
                        return s_json_unexpected (
                            self, builder, "looking for beginning of object key string");
                    if (s_json_string (self, builder))
                        return -1;
                    after_key = true;
                    continue;
                }
                state = S_VALUE;
                continue;
            }
            if (c == close) {
                s_json_advance (self);
                if (s_container_end (builder))
                    return -1;
                continue;
            }
            return s_json_unexpected (self, builder,
                                      open->type == ZC_MAPPING
                                          ? "after object key:value pair"
                                          : "after array element");
        }
        //  A value
        int line = self->line, column = self->column;
        if (c == '{' || c == '[') {
            if (s_container_start (builder, c == '{' ? ZC_MAPPING : ZC_SEQUENCE, NULL,
                                   line, column))
                return -1;
            s_json_advance (self);
            s_json_skip_space (self);
            int next = s_json_peek (self);
            if (next == (c == '{' ? '}' : ']')) {
                s_json_advance (self);
                if (s_container_end (builder))
                    return -1;
                state = S_AFTER_VALUE;
                continue;
            }
            if (c == '{') {
                if (next != '"')
                    return s_json_unexpected (
                        self, builder, "looking for beginning of object key string");
                if (s_json_string (self, builder))
                    return -1;
                after_key = true;
            }
            state = c == '{' ? S_AFTER_VALUE : S_VALUE;
            continue;
        }
        int rc;
        if (c == '"')
            rc = s_json_string (self, builder);
        else if (c == '-' || (c >= '0' && c <= '9'))
            rc = s_json_number (self, builder);
        else
            rc = s_json_literal (self, builder);
        if (rc)
            return -1;
        state = S_AFTER_VALUE;
    } while (true);
}

static int
s_json_next (zc_reader_t *self, zc_document_t *document, zube_codec_error_t *error)
{
    s_json_skip_space (self);
    if (self->pos >= self->size) {
        self->done = true;
        return 0;
    }
    document->number = ++self->documents;
    document->line = self->line;
    document->column = self->column;
    size_t start = self->pos;
    self->document_start = start;
    s_builder_t builder;
    if (s_builder_init (&builder, self, document, error))
        return -1;
    int rc = s_json_value (self, &builder);
    s_builder_fini (&builder);
    if (rc == 0 && self->pos - start > self->limits.max_document_size) {
        s_error (error, document->number, document->line, document->column,
                 "document is larger than the limit of %zu bytes",
                 self->limits.max_document_size);
        rc = -1;
    }
    if (rc) {
        zc_document_clear (document);
        self->done = true;
        return -1;
    }
    return 1;
}

int
zc_json_parse (const char *text, size_t size, zc_document_t *document,
               zube_codec_error_t *error)
{
    zube_codec_limits_t limits = {.max_document_size = SIZE_MAX};
    zc_reader_t *reader = zc_reader_new (text, size, &limits);
    if (!reader)
        return -1;
    reader->json = true;
    memset (document, 0, sizeof *document);
    int rc = s_json_next (reader, document, error);
    if (rc == 1) {
        s_json_skip_space (reader);
        if (reader->pos < reader->size) {
            zc_document_clear (document);
            rc = -1;
        }
    }
    zc_reader_destroy (&reader);
    return rc == 1 ? 0 : -1;
}

//  ---------------------------------------------------------------------
//  Reader

zc_reader_t *
zc_reader_new (const char *text, size_t size, const zube_codec_limits_t *limits)
{
    zc_reader_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->text = text ? text : "";
    self->size = text ? size : 0;
    self->line = 1;
    self->column = 1;
    zc_limits_resolve (limits, &self->limits);
    //  Kubernetes' own test: JSON if it starts with a brace
    size_t i = 0;
    if (self->size >= 3 && memcmp (self->text, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < self->size && strchr (" \t\r\n", self->text[i]))
        i++;
    self->json = i < self->size && (self->text[i] == '{' || self->text[i] == '[');
    if (self->json && self->size >= 3 && memcmp (self->text, "\xef\xbb\xbf", 3) == 0)
        self->pos = 3;
    return self;
}

void
zc_reader_destroy (zc_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zc_reader_t *self = *self_p;
    if (self->parser_ready)
        yaml_parser_delete (&self->parser);
    free (self);
    *self_p = NULL;
}

int
zc_reader_next (zc_reader_t *self, zc_document_t *document, zube_codec_error_t *error)
{
    memset (document, 0, sizeof *document);
    if (self->done)
        return 0;
    return self->json ? s_json_next (self, document, error)
                      : s_yaml_next (self, document, error);
}
