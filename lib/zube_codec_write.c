/*  zube_codec_write - the two output formats behind one set of calls.

    The encoder walks a message and calls mapping/sequence/key/scalar
    functions; a writer turns those into block-style YAML through
    libyaml's emitter, or into JSON (compact, or indented by four spaces
    as kubectl -o json writes it).

    YAML strings are written plain where a reader would read them back
    as the same string, and double-quoted otherwise: "80", "true", "",
    "null", and the YAML 1.1 words (yes, no, on, off) that older readers,
    kubectl among them, would take for booleans. Multi-line strings use
    the literal block style. */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "zube_codec_private.h"

typedef struct {
    bool mapping;
    bool has_items;
} s_level_t;

struct zc_writer_s {
    bool json;
    bool pretty;
    bool failed;
    zc_buffer_t out;
    //  YAML
    yaml_emitter_t emitter;
    bool emitter_ready;
    //  JSON: open containers
    s_level_t *levels;
    size_t depth;
    size_t capacity;
    bool after_key;
};

static int
s_yaml_output (void *data, unsigned char *buffer, size_t size)
{
    zc_buffer_t *out = data;
    zc_buffer_append (out, (const char *)buffer, size);
    return out->failed ? 0 : 1;
}

static void
s_yaml_emit (zc_writer_t *self, yaml_event_t *event, int initialized)
{
    if (!initialized) {
        self->failed = true;
        return;
    }
    if (self->failed) {
        yaml_event_delete (event);
        return;
    }
    if (!yaml_emitter_emit (&self->emitter, event))
        self->failed = true;
}

zc_writer_t *
zc_writer_new_yaml (void)
{
    zc_writer_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    if (!yaml_emitter_initialize (&self->emitter)) {
        free (self);
        return NULL;
    }
    self->emitter_ready = true;
    yaml_emitter_set_output (&self->emitter, s_yaml_output, &self->out);
    yaml_emitter_set_unicode (&self->emitter, 1);
    yaml_emitter_set_width (&self->emitter, -1);
    yaml_emitter_set_indent (&self->emitter, 2);
    yaml_event_t event;
    s_yaml_emit (self, &event,
                 yaml_stream_start_event_initialize (&event, YAML_UTF8_ENCODING));
    s_yaml_emit (self, &event,
                 yaml_document_start_event_initialize (&event, NULL, NULL, NULL, 1));
    return self;
}

zc_writer_t *
zc_writer_new_json (bool pretty)
{
    zc_writer_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->json = true;
    self->pretty = pretty;
    return self;
}

void
zc_writer_destroy (zc_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zc_writer_t *self = *self_p;
    if (self->emitter_ready)
        yaml_emitter_delete (&self->emitter);
    free (self->levels);
    free (self->out.data);
    free (self);
    *self_p = NULL;
}

char *
zc_writer_finish (zc_writer_t **self_p)
{
    zc_writer_t *self = *self_p;
    if (self->json) {
        if (self->pretty)
            zc_buffer_append (&self->out, "\n", 1);
    } else {
        yaml_event_t event;
        s_yaml_emit (self, &event, yaml_document_end_event_initialize (&event, 1));
        s_yaml_emit (self, &event, yaml_stream_end_event_initialize (&event));
        if (!self->failed && !yaml_emitter_flush (&self->emitter))
            self->failed = true;
    }
    char *result = NULL;
    if (!self->failed && !self->out.failed) {
        result = self->out.data ? self->out.data : strdup ("");
        self->out.data = NULL;
    }
    zc_writer_destroy (self_p);
    return result;
}

void
zc_writer_fail (zc_writer_t *self)
{
    self->failed = true;
}

//  ---------------------------------------------------------------------
//  JSON layout

static void
s_json_newline (zc_writer_t *self)
{
    zc_buffer_append (&self->out, "\n", 1);
    for (size_t i = 0; i < self->depth; i++)
        zc_buffer_append (&self->out, "    ", 4);
}

//  Before a value or a key: the separator and, when pretty, the indent
static void
s_json_before (zc_writer_t *self)
{
    if (self->after_key) {
        self->after_key = false;
        return;
    }
    if (self->depth == 0)
        return;
    s_level_t *level = &self->levels[self->depth - 1];
    if (level->has_items)
        zc_buffer_append (&self->out, ",", 1);
    level->has_items = true;
    if (self->pretty)
        s_json_newline (self);
}

static void
s_json_open (zc_writer_t *self, bool mapping)
{
    s_json_before (self);
    if (self->depth == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 16;
        s_level_t *levels = realloc (self->levels, capacity * sizeof *levels);
        if (!levels) {
            self->failed = true;
            return;
        }
        self->levels = levels;
        self->capacity = capacity;
    }
    self->levels[self->depth++] = (s_level_t){.mapping = mapping};
    zc_buffer_append (&self->out, mapping ? "{" : "[", 1);
}

static void
s_json_close (zc_writer_t *self, bool mapping)
{
    if (self->failed || self->depth == 0)
        return;
    bool has_items = self->levels[--self->depth].has_items;
    if (self->pretty && has_items)
        s_json_newline (self);
    zc_buffer_append (&self->out, mapping ? "}" : "]", 1);
}

//  ---------------------------------------------------------------------
//  YAML quoting

static bool
s_yaml_needs_quotes (const char *text, size_t size)
{
    if (zc_plain_kind (text, size) != ZC_STRING)
        return true;
    static const char *words[] = {"y",   "Y",   "yes", "Yes", "YES", "n",  "N",
                                  "no",  "No",  "NO",  "on",  "On",  "ON", "off",
                                  "Off", "OFF", "<<",  "=",   "~"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (size == strlen (words[i]) && memcmp (text, words[i], size) == 0)
            return true;
    //  YAML 1.1 numbers that 1.2 reads as strings: 1_000, 0b101, 1:30, 0777
    const char *start = text;
    if (size && (*start == '-' || *start == '+' || *start == '.'))
        start++;
    if (start < text + size && *start >= '0' && *start <= '9') {
        bool numeric = true;
        for (const char *p = start; p < text + size; p++)
            if (!strchr ("0123456789_:.+-eExXoObBabcdefABCDEF", *p) || !*p)
                numeric = false;
        if (numeric)
            return true;
    }
    return false;
}

static void
s_yaml_scalar (zc_writer_t *self, const char *text, size_t size,
               yaml_scalar_style_t style)
{
    yaml_event_t event;
    s_yaml_emit (self, &event,
                 yaml_scalar_event_initialize (&event, NULL, NULL, (yaml_char_t *)text,
                                               (int)size, 1, 1, style));
}

static void
s_yaml_string (zc_writer_t *self, const char *text, size_t size, bool key)
{
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    if (s_yaml_needs_quotes (text, size))
        style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    else if (!key && memchr (text, '\n', size))
        style = YAML_LITERAL_SCALAR_STYLE;
    s_yaml_scalar (self, text, size, style);
}

//  ---------------------------------------------------------------------
//  Calls

void
zc_writer_mapping_start (zc_writer_t *self)
{
    if (self->json) {
        s_json_open (self, true);
        return;
    }
    yaml_event_t event;
    s_yaml_emit (self, &event,
                 yaml_mapping_start_event_initialize (&event, NULL, NULL, 1,
                                                      YAML_BLOCK_MAPPING_STYLE));
}

void
zc_writer_mapping_end (zc_writer_t *self)
{
    if (self->json) {
        s_json_close (self, true);
        return;
    }
    yaml_event_t event;
    s_yaml_emit (self, &event, yaml_mapping_end_event_initialize (&event));
}

void
zc_writer_sequence_start (zc_writer_t *self)
{
    if (self->json) {
        s_json_open (self, false);
        return;
    }
    yaml_event_t event;
    s_yaml_emit (self, &event,
                 yaml_sequence_start_event_initialize (&event, NULL, NULL, 1,
                                                       YAML_BLOCK_SEQUENCE_STYLE));
}

void
zc_writer_sequence_end (zc_writer_t *self)
{
    if (self->json) {
        s_json_close (self, false);
        return;
    }
    yaml_event_t event;
    s_yaml_emit (self, &event, yaml_sequence_end_event_initialize (&event));
}

void
zc_writer_key (zc_writer_t *self, const char *text, size_t size)
{
    if (self->json) {
        s_json_before (self);
        zc_buffer_append_json_string (&self->out, text, size);
        zc_buffer_append_str (&self->out, self->pretty ? ": " : ":");
        self->after_key = true;
        return;
    }
    s_yaml_string (self, text, size, true);
}

void
zc_writer_string (zc_writer_t *self, const char *text, size_t size)
{
    if (self->json) {
        s_json_before (self);
        zc_buffer_append_json_string (&self->out, text, size);
        return;
    }
    s_yaml_string (self, text, size, false);
}

void
zc_writer_literal (zc_writer_t *self, const char *text)
{
    if (self->json) {
        s_json_before (self);
        zc_buffer_append_str (&self->out, text);
        return;
    }
    s_yaml_scalar (self, text, strlen (text), YAML_PLAIN_SCALAR_STYLE);
}
