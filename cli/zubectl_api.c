/*  zubectl api - what the API verbs (apply, get, describe, delete, patch,
    label, annotate, backup) share: the apiserver client, the namespace,
    resource names, errors printed as kubectl prints them, manifests read
    from files, directories and stdin, and the AGE column. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "zubectl.h"

zube_api_t *
zubectl_api (zubectl_t *self)
{
    if (self->api)
        return self->api;
    zube_bus_t *bus = zubectl_connect (self);
    if (!bus)
        return NULL;
    self->api = zube_api_new (bus);
    if (!self->api) {
        zube_cli_error ("out of memory");
        return NULL;
    }
    zube_api_set_timeout (self->api, zubectl_timeout_ms (self));
    return self->api;
}

const char *
zubectl_namespace (zubectl_t *self)
{
    return self->namespace_flag && *self->namespace_flag ? self->namespace_flag : "default";
}

const zube_kind_t *
zubectl_kind (const char *resource)
{
    const zube_kind_t *kind = zube_kind_by_resource (resource);
    if (!kind)
        zube_cli_error ("the server doesn't have a resource type \"%s\"", resource);
    return kind;
}

void
zubectl_print_api_error (zubectl_t *self, const zube_api_error_t *error, const char *context)
{
    const char *message = error->message[0] ? error->message : "(no message)";
    if (error->status == ZUBE_INVALID) {
        //  kubectl: `The Pod "web" is invalid: field: message`, one cause per
        //  line ("* ...") when there are several.
        const char *cut = strstr (message, " is invalid");
        if (cut) {
            if (error->cause_count == 0) {
                fprintf (stderr, "The %s\n", message);
                return;
            }
            fprintf (stderr, "The %.*s is invalid: ", (int) (cut - message), message);
            for (size_t i = 0; i < error->cause_count; i++) {
                if (error->cause_count > 1)
                    fprintf (stderr, "\n* ");
                if (error->causes[i].field[0])
                    fprintf (stderr, "%s: ", error->causes[i].field);
                fputs (error->causes[i].message, stderr);
            }
            fputc ('\n', stderr);
            return;
        }
    }
    if ((error->status == ZUBE_UNAVAILABLE || error->status == ZUBE_DEADLINE_EXCEEDED)
        && self->bus && !zube_bus_connected (self->bus)) {
        char timeout_text[32];
        zube_cli_duration_format (zubectl_timeout_ms (self), timeout_text, sizeof timeout_text);
        zube_cli_error ("unable to connect to the broker at %s: no answer within %s "
                        "(is it running? \"zube status\" tells for a local cluster)",
                        zubectl_endpoint (self), timeout_text);
        return;
    }
    fprintf (stderr, "Error from server (%s): %s%s%s\n",
             error->reason[0] ? error->reason : zube_status_reason (error->status),
             context ? context : "", context ? ": " : "", message);
}

const char *
zubectl_kind_name (const zube_kind_t *kind, char *buf, size_t size)
{
    if (kind->group && *kind->group)
        snprintf (buf, size, "%s.%s", kind->singular, kind->group);
    else
        snprintf (buf, size, "%s", kind->singular);
    return buf;
}

const char *
zubectl_object_name (const ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = object ? zube_object_meta (object) : NULL;
    return meta && meta->name ? meta->name : "";
}

const char *
zubectl_object_namespace (const ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = object ? zube_object_meta (object) : NULL;
    return meta && meta->namespace_ ? meta->namespace_ : "";
}

static void
s_set_string_field (ProtobufCMessage *object, const char *name, const char *value)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (object->descriptor, name);
    if (!field || field->type != PROTOBUF_C_TYPE_STRING || field->label == PROTOBUF_C_LABEL_REPEATED)
        return;
    char **slot = (char **) ((uint8_t *) object + field->offset);
    if (*slot && **slot)
        return;
    char *copy = strdup (value);
    if (!copy)
        return;
    if (*slot && *slot != (char *) field->default_value)
        free (*slot);
    *slot = copy;
}

void
zubectl_object_set_type (ProtobufCMessage *object, const zube_kind_t *kind)
{
    if (!object || !kind)
        return;
    s_set_string_field (object, "api_version", kind->api_version);
    s_set_string_field (object, "kind", kind->kind);
}

bool
zubectl_objects_equal (const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    char *ja = zube_codec_encode_json (a, false);
    char *jb = zube_codec_encode_json (b, false);
    bool equal = ja && jb && strcmp (ja, jb) == 0;
    free (ja);
    free (jb);
    return equal;
}

int64_t
zubectl_parse_time (const char *timestamp)
{
    if (!timestamp || !*timestamp)
        return -1;
    struct tm tm = {0};
    const char *rest = strptime (timestamp, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    int64_t seconds = (int64_t) timegm (&tm);
    if (*rest == '.')
        while (isdigit ((unsigned char) *++rest))
            ;
    if ((*rest == '+' || *rest == '-') && strlen (rest) >= 6) {
        int hours = atoi (rest + 1), minutes = atoi (rest + 4);
        int offset = hours * 3600 + minutes * 60;
        seconds += *rest == '+' ? -offset : offset;
    }
    return seconds;
}

//  kubectl's HumanDuration (k8s.io/apimachinery/pkg/util/duration).
const char *
zubectl_human_duration (int64_t seconds, char *buf, size_t size)
{
    if (seconds < -1) {
        snprintf (buf, size, "<invalid>");
        return buf;
    }
    if (seconds < 0)
        seconds = 0;
    int64_t minutes = seconds / 60, hours = seconds / 3600;
    if (seconds < 60 * 2)
        snprintf (buf, size, "%" PRId64 "s", seconds);
    else
    if (minutes < 10) {
        if (seconds % 60 == 0)
            snprintf (buf, size, "%" PRId64 "m", minutes);
        else
            snprintf (buf, size, "%" PRId64 "m%" PRId64 "s", minutes, seconds % 60);
    }
    else
    if (minutes < 60 * 3)
        snprintf (buf, size, "%" PRId64 "m", minutes);
    else
    if (hours < 8) {
        if (minutes % 60 == 0)
            snprintf (buf, size, "%" PRId64 "h", hours);
        else
            snprintf (buf, size, "%" PRId64 "h%" PRId64 "m", hours, minutes % 60);
    }
    else
    if (hours < 48)
        snprintf (buf, size, "%" PRId64 "h", hours);
    else
    if (hours < 24 * 8) {
        if (hours % 24 == 0)
            snprintf (buf, size, "%" PRId64 "d", hours / 24);
        else
            snprintf (buf, size, "%" PRId64 "d%" PRId64 "h", hours / 24, hours % 24);
    }
    else
    if (hours < 24 * 365 * 2)
        snprintf (buf, size, "%" PRId64 "d", hours / 24);
    else
    if (hours < 24 * 365 * 8) {
        int64_t days = hours / 24;
        if (days % 365 == 0)
            snprintf (buf, size, "%" PRId64 "y", days / 365);
        else
            snprintf (buf, size, "%" PRId64 "y%" PRId64 "d", days / 365, days % 365);
    }
    else
        snprintf (buf, size, "%" PRId64 "y", hours / 24 / 365);
    return buf;
}

const char *
zubectl_age (const char *timestamp, char *buf, size_t size)
{
    int64_t then = zubectl_parse_time (timestamp);
    if (then < 0) {
        snprintf (buf, size, "<unknown>");
        return buf;
    }
    return zubectl_human_duration ((int64_t) time (NULL) - then, buf, size);
}

int
zubectl_rv_compare (const char *a, const char *b)
{
    a = a ? a : "";
    b = b ? b : "";
    while (*a == '0' && a[1])
        a++;
    while (*b == '0' && b[1])
        b++;
    size_t la = strlen (a), lb = strlen (b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp (a, b);
}

char *
zubectl_json_quote (const char *text)
{
    char *out = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&out, &size);
    if (!stream)
        return NULL;
    zube_cli_json_string (stream, text);
    fclose (stream);
    return out;
}

//  ---------------------------------------------------------------------
//  Manifests

//  One document of a stream, as it lies in the text.
typedef struct {
    const char *text;
    size_t size;
    int first_line;     //  1-based line of its first byte in the whole text
    int document;       //  1-based number in the stream
} s_piece_t;

static char *
s_read_stream (FILE *file, size_t *size_p)
{
    size_t cap = 65536, used = 0;
    char *text = malloc (cap);
    if (!text)
        return NULL;
    size_t n;
    while ((n = fread (text + used, 1, cap - used - 1, file)) > 0) {
        used += n;
        if (cap - used < 2) {
            char *grown = realloc (text, cap * 2);
            if (!grown) {
                free (text);
                return NULL;
            }
            text = grown;
            cap *= 2;
        }
    }
    if (ferror (file)) {
        free (text);
        return NULL;
    }
    text[used] = 0;
    *size_p = used;
    return text;
}

static bool
s_blank (const char *text, size_t size)
{
    //  Only white space and comments.
    bool comment = false;
    for (size_t i = 0; i < size; i++) {
        if (comment) {
            comment = text[i] != '\n';
            continue;
        }
        if (text[i] == '#')
            comment = true;
        else
        if (!isspace ((unsigned char) text[i]))
            return false;
    }
    return true;
}

static int
s_count_lines (const char *text, size_t size)
{
    int lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += text[i] == '\n';
    return lines;
}

//  Splits a JSON stream into its top-level values.
static size_t
s_split_json (const char *text, size_t size, s_piece_t *pieces, size_t max)
{
    size_t count = 0, i = 0;
    while (i < size && count < max) {
        while (i < size && isspace ((unsigned char) text[i]))
            i++;
        if (i >= size)
            break;
        size_t start = i;
        int depth = 0;
        bool in_string = false;
        for (; i < size; i++) {
            char c = text[i];
            if (in_string) {
                if (c == '\\')
                    i++;
                else
                if (c == '"')
                    in_string = false;
                continue;
            }
            if (c == '"')
                in_string = true;
            else
            if (c == '{' || c == '[')
                depth++;
            else
            if (c == '}' || c == ']') {
                if (--depth <= 0) {
                    i++;
                    break;
                }
            }
            else
            if (depth == 0 && isspace ((unsigned char) c))
                break;
        }
        pieces[count] = (s_piece_t) {.text = text + start,
                                     .size = i - start,
                                     .first_line = 1 + s_count_lines (text, start),
                                     .document = (int) count + 1};
        count++;
    }
    return count;
}

//  Splits a YAML stream at its "---" lines.
static size_t
s_split_yaml (const char *text, size_t size, s_piece_t *pieces, size_t max)
{
    size_t count = 0, start = 0;
    int line = 1, start_line = 1, document = 0;
    bool leading = true;
    for (size_t i = 0; i <= size; line++) {
        size_t end = i;
        while (end < size && text[end] != '\n')
            end++;
        bool marker = i < size && end - i >= 3 && strncmp (text + i, "---", 3) == 0
                      && (end - i == 3 || isspace ((unsigned char) text[i + 3]));
        if ((marker || i >= size) && (i > start || !leading)) {
            bool empty = s_blank (text + start, i - start);
            if (!(leading && empty) && count < max) {
                //  An empty document between two markers still counts.
                document++;
                if (!empty)
                    pieces[count++] = (s_piece_t) {.text = text + start,
                                                   .size = i - start,
                                                   .first_line = start_line,
                                                   .document = document};
            }
            leading = false;
        }
        if (marker) {
            start = i;
            start_line = line;
            leading = false;
        }
        if (i >= size)
            break;
        i = end + 1;
    }
    return count;
}

//  A problem of the whole file (syntax, limits) rather than of one
//  object's fields: nothing of the file is applied then.
static bool
s_fatal (const zube_codec_error_t *error)
{
    return error->field[0] == 0 && !strstr (error->message, "no matches for kind")
           && !strstr (error->message, "missing field");
}

static int
s_each_in_text (zubectl_t *self, const char *source, const char *text, size_t size,
                zubectl_object_fn *fn, void *arg)
{
    zube_codec_object_t *objects = NULL;
    size_t count = 0;
    zube_codec_error_t error;
    char line[1024];
    if (zube_codec_decode_objects (text, size, &objects, &count, &error) == 0) {
        int failures = 0;
        for (size_t i = 0; i < count; i++)
            if (fn (self, source, &objects[i], arg) != 0)
                failures++;
        zube_codec_objects_free (&objects, count);
        return failures;
    }
    if (s_fatal (&error)) {
        zube_cli_error ("error parsing %s: %s", source,
                        zube_codec_error_format (&error, line, sizeof line));
        return 1;
    }
    //  One document is wrong: decode each on its own, so the others are
    //  applied, unless one has a syntax error (then none is).
    size_t max = 1;
    for (size_t i = 0; i < size; i++)
        max += text[i] == '\n' || text[i] == '{';
    s_piece_t *pieces = calloc (max, sizeof *pieces);
    zube_codec_object_t **decoded = calloc (max, sizeof *decoded);
    size_t *decoded_count = calloc (max, sizeof *decoded_count);
    zube_codec_error_t *errors = calloc (max, sizeof *errors);
    bool *failed = calloc (max, sizeof *failed);
    if (!pieces || !decoded || !decoded_count || !errors || !failed) {
        zube_cli_error ("out of memory");
        free (pieces);
        free (decoded);
        free (decoded_count);
        free (errors);
        free (failed);
        return 1;
    }
    size_t at = 0;
    while (at < size && isspace ((unsigned char) text[at]))
        at++;
    bool json = at < size && (text[at] == '{' || text[at] == '[');
    size_t piece_count = json ? s_split_json (text, size, pieces, max)
                              : s_split_yaml (text, size, pieces, max);
    bool fatal = false;
    int failures = 0;
    for (size_t p = 0; p < piece_count; p++) {
        if (zube_codec_decode_objects (pieces[p].text, pieces[p].size, &decoded[p],
                                       &decoded_count[p], &errors[p])
            != 0) {
            failed[p] = true;
            errors[p].document = pieces[p].document;
            if (errors[p].line)
                errors[p].line += pieces[p].first_line - 1;
            if (s_fatal (&errors[p]) && !fatal) {
                fatal = true;
                zube_cli_error ("error parsing %s: %s", source,
                                zube_codec_error_format (&errors[p], line, sizeof line));
            }
        }
        else
            for (size_t i = 0; i < decoded_count[p]; i++) {
                decoded[p][i].document = pieces[p].document;
                decoded[p][i].line += pieces[p].first_line - 1;
            }
    }
    if (fatal)
        failures = 1;
    else
        for (size_t p = 0; p < piece_count; p++) {
            if (failed[p]) {
                zube_cli_error ("error validating \"%s\": %s", source,
                                zube_codec_error_format (&errors[p], line, sizeof line));
                failures++;
                continue;
            }
            for (size_t i = 0; i < decoded_count[p]; i++)
                if (fn (self, source, &decoded[p][i], arg) != 0)
                    failures++;
        }
    for (size_t p = 0; p < piece_count; p++)
        zube_codec_objects_free (&decoded[p], decoded_count[p]);
    free (pieces);
    free (decoded);
    free (decoded_count);
    free (errors);
    free (failed);
    return failures;
}

static int
s_each_in_file (zubectl_t *self, const char *path, zubectl_object_fn *fn, void *arg)
{
    bool standard_input = strcmp (path, "-") == 0;
    FILE *file = standard_input ? stdin : fopen (path, "rb");
    if (!file) {
        zube_cli_error ("the path \"%s\" cannot be read: %s", path, strerror (errno));
        return 1;
    }
    size_t size = 0;
    char *text = s_read_stream (file, &size);
    if (!standard_input)
        fclose (file);
    if (!text) {
        zube_cli_error ("the path \"%s\" cannot be read", path);
        return 1;
    }
    int failures = s_each_in_text (self, standard_input ? "STDIN" : path, text, size, fn, arg);
    free (text);
    return failures;
}

static int
s_manifest_filter (const struct dirent *entry)
{
    const char *name = entry->d_name;
    if (name[0] == '.')
        return 0;
    size_t length = strlen (name);
    static const char *suffixes[] = {".yaml", ".yml", ".json"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t suffix = strlen (suffixes[i]);
        if (length > suffix && strcmp (name + length - suffix, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

static int
s_name_order (const struct dirent **a, const struct dirent **b)
{
    return strcmp ((*a)->d_name, (*b)->d_name);
}

int
zubectl_each_manifest_object (zubectl_t *self, const char *path, zubectl_object_fn *fn,
                              void *arg)
{
    struct stat st;
    if (strcmp (path, "-") != 0 && stat (path, &st) != 0) {
        zube_cli_error ("the path \"%s\" does not exist", path);
        return -1;
    }
    if (strcmp (path, "-") == 0 || !S_ISDIR (st.st_mode))
        return s_each_in_file (self, path, fn, arg);
    struct dirent **entries = NULL;
    int count = scandir (path, &entries, s_manifest_filter, s_name_order);
    if (count < 0) {
        zube_cli_error ("the path \"%s\" cannot be read: %s", path, strerror (errno));
        return -1;
    }
    int failures = 0;
    for (int i = 0; i < count; i++) {
        char file[4096];
        size_t length = strlen (path);
        snprintf (file, sizeof file, "%s%s%s", path,
                  length && path[length - 1] == '/' ? "" : "/", entries[i]->d_name);
        if (stat (file, &st) == 0 && S_ISREG (st.st_mode))
            failures += s_each_in_file (self, file, fn, arg);
        free (entries[i]);
    }
    free (entries);
    if (count == 0) {
        zube_cli_error ("no objects passed to apply");
        return -1;
    }
    return failures;
}
