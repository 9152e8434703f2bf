/*  zube_config - the client config file, read by zubectl.

    The file is small and flat, so it is read with libyaml's document
    loader: every node keeps its line, which is what an error about an
    unknown key or a bad value has to name. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include "zube/config.h"
#include "zube/log.h"
#include "zube/version.h"

struct _zube_config_t {
    char *broker;
    char *certs_dir;        //  as written in the file or set
    char *certs_dir_path;   //  resolved against the file's folder
    char *name;
    bool insecure;
    int timeout_ms;
    char *path;
    zube_config_source_t source;
};

static const char *s_known_keys = "apiVersion, kind, broker, certsDir, name, insecure, timeoutMs";
static const char *s_keys[] = {"apiVersion", "kind", "broker", "certsDir",
                               "name", "insecure", "timeoutMs"};

static int
s_key_index (const char *key)
{
    for (int i = 0; i < (int) (sizeof s_keys / sizeof s_keys[0]); i++)
        if (strcmp (s_keys[i], key) == 0)
            return i;
    return -1;
}

static void
s_set_string (char **field, const char *value)
{
    free (*field);
    *field = value ? strdup (value) : NULL;
}

static void
s_error (char *error, size_t error_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_error (char *error, size_t error_size, const char *format, ...)
{
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (error, error_size, format, args);
    va_end (args);
}

//  "~/x" -> "$HOME/x"; a relative path -> base_dir/path; else a copy.
static char *
s_resolve_path (const char *path, const char *base_dir)
{
    char *resolved = NULL;
    const char *home = getenv ("HOME");
    if (strncmp (path, "~/", 2) == 0 && home && *home) {
        if (asprintf (&resolved, "%s/%s", home, path + 2) < 0)
            resolved = NULL;
    }
    else
    if (path[0] != '/' && base_dir && *base_dir && strcmp (base_dir, ".") != 0) {
        if (asprintf (&resolved, "%s/%s", base_dir, path) < 0)
            resolved = NULL;
    }
    else
        resolved = strdup (path);
    return resolved;
}

zube_config_t *
zube_config_new (void)
{
    zube_config_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->broker = strdup (ZUBE_BUS_DEFAULT_ENDPOINT);
    self->timeout_ms = ZUBE_BUS_DEFAULT_TIMEOUT_MS;
    self->source = ZUBE_CONFIG_FROM_DEFAULTS;
    return self;
}

void
zube_config_destroy (zube_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_config_t *self = *self_p;
    free (self->broker);
    free (self->certs_dir);
    free (self->certs_dir_path);
    free (self->name);
    free (self->path);
    free (self);
    *self_p = NULL;
}

static int
s_parse_bool (const char *text, bool *value)
{
    static const char *trues[] = {"true", "yes", "on"};
    static const char *falses[] = {"false", "no", "off"};
    for (size_t i = 0; i < sizeof trues / sizeof trues[0]; i++) {
        if (strcasecmp (text, trues[i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcasecmp (text, falses[i]) == 0) {
            *value = false;
            return 0;
        }
    }
    return -1;
}

//  Applies one key: value pair; line is 1-based.
static int
s_apply_key (zube_config_t *self, const char *key, const char *value, int line,
             const char *origin, const char *base_dir, char *error, size_t error_size)
{
    if (strcmp (key, "apiVersion") == 0) {
        if (strcmp (value, ZUBE_CONFIG_API_VERSION) != 0) {
            s_error (error, error_size, "%s:%d: apiVersion \"%s\" is not supported (expected \"%s\")",
                     origin, line, value, ZUBE_CONFIG_API_VERSION);
            return -1;
        }
    }
    else
    if (strcmp (key, "kind") == 0) {
        if (strcmp (value, ZUBE_CONFIG_KIND) != 0) {
            s_error (error, error_size, "%s:%d: kind \"%s\" is not a client config (expected \"%s\")",
                     origin, line, value, ZUBE_CONFIG_KIND);
            return -1;
        }
    }
    else
    if (strcmp (key, "broker") == 0) {
        if (!strstr (value, "://")) {
            s_error (error, error_size,
                     "%s:%d: broker \"%s\" is not an endpoint (like tcp://127.0.0.1:7400 or ipc:///path)",
                     origin, line, value);
            return -1;
        }
        s_set_string (&self->broker, value);
    }
    else
    if (strcmp (key, "certsDir") == 0) {
        if (*value == 0) {
            s_set_string (&self->certs_dir, NULL);
            s_set_string (&self->certs_dir_path, NULL);
        }
        else {
            s_set_string (&self->certs_dir, value);
            free (self->certs_dir_path);
            self->certs_dir_path = s_resolve_path (value, base_dir);
        }
    }
    else
    if (strcmp (key, "name") == 0)
        s_set_string (&self->name, *value ? value : NULL);
    else
    if (strcmp (key, "insecure") == 0) {
        if (s_parse_bool (value, &self->insecure) != 0) {
            s_error (error, error_size, "%s:%d: insecure must be true or false, not \"%s\"",
                     origin, line, value);
            return -1;
        }
    }
    else
    if (strcmp (key, "timeoutMs") == 0) {
        char *end = NULL;
        errno = 0;
        long timeout = strtol (value, &end, 10);
        if (errno || end == value || *end || timeout <= 0 || timeout > INT_MAX) {
            s_error (error, error_size,
                     "%s:%d: timeoutMs must be a positive number of milliseconds, not \"%s\"",
                     origin, line, value);
            return -1;
        }
        self->timeout_ms = (int) timeout;
    }
    else {
        s_error (error, error_size, "%s:%d: unknown key \"%s\" (known keys: %s)", origin,
                 line, key, s_known_keys);
        return -1;
    }
    return 0;
}

zube_config_t *
zube_config_parse (const char *text, const char *base_dir, const char *origin,
                   char *error, size_t error_size)
{
    if (!origin)
        origin = "config";
    zube_config_t *self = zube_config_new ();
    if (!self) {
        s_error (error, error_size, "%s: out of memory", origin);
        return NULL;
    }
    yaml_parser_t parser;
    yaml_document_t document;
    yaml_parser_initialize (&parser);
    yaml_parser_set_input_string (&parser, (const unsigned char *) text, strlen (text));
    if (!yaml_parser_load (&parser, &document)) {
        s_error (error, error_size, "%s:%zu: %s%s%s", origin,
                 parser.problem_mark.line + 1, parser.problem ? parser.problem : "YAML error",
                 parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete (&parser);
        zube_config_destroy (&self);
        return NULL;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node (&document);
    if (!root) {
        s_error (error, error_size, "%s: the file is empty", origin);
        rc = -1;
    }
    else
    if (root->type != YAML_MAPPING_NODE) {
        s_error (error, error_size, "%s:%zu: expected a mapping of keys (apiVersion, kind, broker, ...)",
                 origin, root->start_mark.line + 1);
        rc = -1;
    }
    unsigned seen = 0;
    for (yaml_node_pair_t *pair = root && rc == 0 ? root->data.mapping.pairs.start : NULL;
         pair && pair < root->data.mapping.pairs.top && rc == 0; pair++) {
        yaml_node_t *key = yaml_document_get_node (&document, pair->key);
        yaml_node_t *value = yaml_document_get_node (&document, pair->value);
        int line = key ? (int) key->start_mark.line + 1 : 0;
        if (!key || key->type != YAML_SCALAR_NODE) {
            s_error (error, error_size, "%s:%d: a key must be a plain word", origin, line);
            rc = -1;
            break;
        }
        const char *key_text = (const char *) key->data.scalar.value;
        int key_index = s_key_index (key_text);
        if (key_index < 0) {
            s_error (error, error_size, "%s:%d: unknown key \"%s\" (known keys: %s)", origin,
                     line, key_text, s_known_keys);
            rc = -1;
        }
        else
        if (!value || value->type != YAML_SCALAR_NODE) {
            s_error (error, error_size, "%s:%d: %s must be a single value, not a list or mapping",
                     origin, line, key_text);
            rc = -1;
        }
        else
        if (seen & (1u << key_index)) {
            //  YAML parsers silently let the last one win; that hides mistakes.
            s_error (error, error_size, "%s:%d: key \"%s\" appears twice", origin, line,
                     key_text);
            rc = -1;
        }
        seen |= 1u << (key_index < 0 ? 0 : key_index);
        if (rc == 0)
            rc = s_apply_key (self, key_text, (const char *) value->data.scalar.value, line,
                              origin, base_dir, error, error_size);
    }
    yaml_document_delete (&document);
    yaml_parser_delete (&parser);
    if (rc != 0)
        zube_config_destroy (&self);
    return self;
}

zube_config_t *
zube_config_load (const char *path, char *error, size_t error_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        s_error (error, error_size, "cannot read client config %s: %s", path, strerror (errno));
        return NULL;
    }
    size_t cap = 4096, used = 0, n;
    char *text = malloc (cap);
    while (text && (n = fread (text + used, 1, cap - used - 1, file)) > 0) {
        used += n;
        if (cap - used < 2) {
            if (cap >= 1024 * 1024) {
                free (text);
                text = NULL;
                break;
            }
            char *bigger = realloc (text, cap *= 2);
            if (!bigger)
                free (text);
            text = bigger;
        }
    }
    fclose (file);
    if (!text) {
        s_error (error, error_size, "%s: too large or out of memory", path);
        return NULL;
    }
    text[used] = 0;
    char *dir_copy = strdup (path);
    char *slash = dir_copy ? strrchr (dir_copy, '/') : NULL;
    const char *base_dir = ".";
    if (slash == dir_copy)
        base_dir = "/";
    else
    if (slash) {
        *slash = 0;
        base_dir = dir_copy;
    }
    zube_config_t *self = zube_config_parse (text, base_dir, path, error, error_size);
    free (dir_copy);
    free (text);
    if (self) {
        s_set_string (&self->path, path);
        self->source = ZUBE_CONFIG_FROM_FLAG;
    }
    return self;
}

zube_config_t *
zube_config_resolve (const char *explicit_path, char *error, size_t error_size)
{
    zube_config_t *self = NULL;
    if (explicit_path && *explicit_path)
        return zube_config_load (explicit_path, error, error_size);

    const char *env_path = getenv (ZUBE_CONFIG_ENV);
    if (env_path && *env_path) {
        self = zube_config_load (env_path, error, error_size);
        if (self)
            self->source = ZUBE_CONFIG_FROM_ENV;
        else {
            //  Say where the path came from: an old variable is easy to miss.
            char reason[512];
            snprintf (reason, sizeof reason, "%s", error ? error : "");
            s_error (error, error_size, "%s (from $%s)", reason, ZUBE_CONFIG_ENV);
        }
        return self;
    }
    const char *home = getenv ("HOME");
    const char *home_files[] = {ZUBE_CONFIG_HOME_PATH, ZUBE_CONFIG_CLUSTER_PATH};
    for (size_t i = 0; home && *home && i < 2; i++) {
        char *home_path = NULL;
        if (asprintf (&home_path, "%s/%s", home, home_files[i]) < 0)
            home_path = NULL;
        struct stat st;
        if (home_path && stat (home_path, &st) == 0) {
            self = zube_config_load (home_path, error, error_size);
            if (self)
                self->source = ZUBE_CONFIG_FROM_HOME;
            free (home_path);
            return self;
        }
        free (home_path);
    }
    self = zube_config_new ();
    if (!self)
        s_error (error, error_size, "out of memory");
    return self;
}

//  libyaml emitter output into a growing buffer.
typedef struct {
    char *data;
    size_t size;
    size_t cap;
} s_buffer_t;

static int
s_buffer_write (void *arg, unsigned char *bytes, size_t size)
{
    s_buffer_t *buffer = arg;
    if (buffer->size + size + 1 > buffer->cap) {
        size_t cap = buffer->cap ? buffer->cap : 512;
        while (cap < buffer->size + size + 1)
            cap *= 2;
        char *data = realloc (buffer->data, cap);
        if (!data)
            return 0;
        buffer->data = data;
        buffer->cap = cap;
    }
    memcpy (buffer->data + buffer->size, bytes, size);
    buffer->size += size;
    buffer->data[buffer->size] = 0;
    return 1;
}

static int
s_emit_scalar (yaml_emitter_t *emitter, const char *value, bool plain_only)
{
    yaml_event_t event;
    yaml_scalar_event_initialize (&event, NULL, NULL, (yaml_char_t *) value, (int) strlen (value),
                                  1, !plain_only, YAML_ANY_SCALAR_STYLE);
    return yaml_emitter_emit (emitter, &event);
}

static int
s_emit_pair (yaml_emitter_t *emitter, const char *key, const char *value, bool is_string)
{
    return s_emit_scalar (emitter, key, true) && s_emit_scalar (emitter, value, !is_string);
}

char *
zube_config_to_yaml (zube_config_t *self)
{
    s_buffer_t buffer = {0};
    s_buffer_write (&buffer, (unsigned char *) "# zube client config: see zube-config(5)\n",
                    strlen ("# zube client config: see zube-config(5)\n"));
    yaml_emitter_t emitter;
    yaml_event_t event;
    yaml_emitter_initialize (&emitter);
    yaml_emitter_set_output (&emitter, s_buffer_write, &buffer);
    yaml_emitter_set_unicode (&emitter, 1);
    char timeout[32];
    snprintf (timeout, sizeof timeout, "%d", self->timeout_ms);
    int ok = 1;
    yaml_stream_start_event_initialize (&event, YAML_UTF8_ENCODING);
    ok = ok && yaml_emitter_emit (&emitter, &event);
    yaml_document_start_event_initialize (&event, NULL, NULL, NULL, 1);
    ok = ok && yaml_emitter_emit (&emitter, &event);
    yaml_mapping_start_event_initialize (&event, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    ok = ok && yaml_emitter_emit (&emitter, &event);
    ok = ok && s_emit_pair (&emitter, "apiVersion", ZUBE_CONFIG_API_VERSION, true);
    ok = ok && s_emit_pair (&emitter, "kind", ZUBE_CONFIG_KIND, true);
    ok = ok && s_emit_pair (&emitter, "broker", self->broker, true);
    if (self->certs_dir)
        ok = ok && s_emit_pair (&emitter, "certsDir", self->certs_dir, true);
    if (self->name)
        ok = ok && s_emit_pair (&emitter, "name", self->name, true);
    ok = ok && s_emit_pair (&emitter, "insecure", self->insecure ? "true" : "false", false);
    ok = ok && s_emit_pair (&emitter, "timeoutMs", timeout, false);
    yaml_mapping_end_event_initialize (&event);
    ok = ok && yaml_emitter_emit (&emitter, &event);
    yaml_document_end_event_initialize (&event, 1);
    ok = ok && yaml_emitter_emit (&emitter, &event);
    yaml_stream_end_event_initialize (&event);
    ok = ok && yaml_emitter_emit (&emitter, &event);
    ok = ok && yaml_emitter_flush (&emitter);
    yaml_emitter_delete (&emitter);
    if (!ok) {
        free (buffer.data);
        return NULL;
    }
    return buffer.data;
}

int
zube_config_save (zube_config_t *self, const char *path, char *error, size_t error_size)
{
    char *text = zube_config_to_yaml (self);
    if (!text) {
        s_error (error, error_size, "cannot write %s: YAML emitter failed", path);
        return -1;
    }
    char *temp_path = NULL;
    if (asprintf (&temp_path, "%s.tmp.%d", path, (int) getpid ()) < 0) {
        free (text);
        s_error (error, error_size, "cannot write %s: out of memory", path);
        return -1;
    }
    int rc = -1;
    FILE *file = fopen (temp_path, "w");
    if (!file)
        s_error (error, error_size, "cannot write %s: %s", temp_path, strerror (errno));
    else {
        size_t size = strlen (text);
        bool written = fwrite (text, 1, size, file) == size;
        if (fclose (file) != 0)
            written = false;
        if (!written)
            s_error (error, error_size, "cannot write %s: %s", temp_path, strerror (errno));
        else
        if (rename (temp_path, path) != 0)
            s_error (error, error_size, "cannot rename %s to %s: %s", temp_path, path,
                     strerror (errno));
        else
            rc = 0;
        if (rc != 0)
            unlink (temp_path);
    }
    free (temp_path);
    free (text);
    return rc;
}

int
zube_config_check (zube_config_t *self, char *error, size_t error_size)
{
    if (self->insecure)
        return 0;
    if (!self->certs_dir_path || !self->name) {
        if (self->source == ZUBE_CONFIG_FROM_DEFAULTS)
            s_error (error, error_size,
                     "no client config: no --config, $%s is not set, and neither ~/%s nor ~/%s "
                     "exists.\n"
                     "Start a local cluster with \"zube up\" (it writes ~/%s), "
                     "or pass --config FILE, or --certs-dir DIR and --name NAME for a secure "
                     "broker, or --insecure for a broker started with --insecure",
                     ZUBE_CONFIG_ENV, ZUBE_CONFIG_HOME_PATH, ZUBE_CONFIG_CLUSTER_PATH,
                     ZUBE_CONFIG_CLUSTER_PATH);
        else
            s_error (error, error_size,
                     "%s: %s is not set and insecure is false: set certsDir and name (or "
                     "pass --certs-dir DIR and --name NAME), or insecure: true (--insecure) for a "
                     "broker started with --insecure",
                     self->path ? self->path : "config",
                     !self->certs_dir_path ? (!self->name ? "neither certsDir nor name" : "certsDir")
                                           : "name");
        return -1;
    }
    char *broker_cert = NULL, *secret = NULL;
    int rc = 0;
    if (asprintf (&broker_cert, "%s/broker.cert", self->certs_dir_path) < 0)
        broker_cert = NULL;
    if (asprintf (&secret, "%s/private/%s.cert_secret", self->certs_dir_path, self->name) < 0)
        secret = NULL;
    if (!broker_cert || !secret) {
        s_error (error, error_size, "out of memory");
        rc = -1;
    }
    else
    if (access (broker_cert, R_OK) != 0) {
        s_error (error, error_size,
                 "cannot read the broker's certificate %s: %s (is %s a certificates directory? "
                 "\"zube certs create --dir DIR NAME\" makes one)",
                 broker_cert, strerror (errno), self->certs_dir_path);
        rc = -1;
    }
    else
    if (access (secret, R_OK) != 0) {
        s_error (error, error_size,
                 "cannot read the certificate of \"%s\": %s: %s (create it with "
                 "\"zube certs create --dir %s %s\")",
                 self->name, secret, strerror (errno), self->certs_dir_path, self->name);
        rc = -1;
    }
    free (broker_cert);
    free (secret);
    return rc;
}

void
zube_config_bus_config (zube_config_t *self, zube_bus_config_t *bus_config)
{
    *bus_config = (zube_bus_config_t) {
        .endpoint = self->broker,
        .insecure = self->insecure,
        .certs_dir = self->insecure ? NULL : self->certs_dir_path,
        .name = self->insecure ? NULL : self->name,
    };
}

const char *
zube_config_broker (zube_config_t *self)
{
    return self->broker;
}

void
zube_config_set_broker (zube_config_t *self, const char *endpoint)
{
    s_set_string (&self->broker, endpoint ? endpoint : ZUBE_BUS_DEFAULT_ENDPOINT);
}

const char *
zube_config_certs_dir (zube_config_t *self)
{
    return self->certs_dir_path;
}

void
zube_config_set_certs_dir (zube_config_t *self, const char *certs_dir)
{
    s_set_string (&self->certs_dir, certs_dir && *certs_dir ? certs_dir : NULL);
    free (self->certs_dir_path);
    self->certs_dir_path = self->certs_dir ? s_resolve_path (self->certs_dir, NULL) : NULL;
}

const char *
zube_config_name (zube_config_t *self)
{
    return self->name;
}

void
zube_config_set_name (zube_config_t *self, const char *name)
{
    s_set_string (&self->name, name && *name ? name : NULL);
}

bool
zube_config_insecure (zube_config_t *self)
{
    return self->insecure;
}

void
zube_config_set_insecure (zube_config_t *self, bool insecure)
{
    self->insecure = insecure;
}

int
zube_config_timeout_ms (zube_config_t *self)
{
    return self->timeout_ms;
}

void
zube_config_set_timeout_ms (zube_config_t *self, int timeout_ms)
{
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : ZUBE_BUS_DEFAULT_TIMEOUT_MS;
}

const char *
zube_config_path (zube_config_t *self)
{
    return self->path;
}

zube_config_source_t
zube_config_source (zube_config_t *self)
{
    return self->source;
}

zube_config_t *
zube_config_for_service (const char *path, const char *file_flag, const char *bus,
                         bool insecure, const char *certs, const char *name, char *error,
                         size_t error_size)
{
    zube_config_t *self = NULL;
    if (path) {
        char reason[1024];
        self = zube_config_load (path, reason, sizeof reason);
        if (!self) {
            snprintf (error, error_size, "%s: %s", file_flag, reason);
            return NULL;
        }
    } else if (!(self = zube_config_new ())) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    if (bus)
        zube_config_set_broker (self, bus);
    if (insecure) {
        zube_config_set_insecure (self, true);
        zube_config_set_certs_dir (self, NULL);
        zube_config_set_name (self, NULL);
    }
    if (certs) {
        zube_config_set_insecure (self, false);
        zube_config_set_certs_dir (self, certs);
        zube_config_set_name (self, name);
    }
    if (zube_config_check (self, error, error_size) != 0)
        zube_config_destroy (&self);
    return self;
}

//  ---------------------------------------------------------------------
//  Service flags

static const zube_flag_t *
s_flag_find (const zube_flag_t *const tables[], const char *arg, size_t name_size)
{
    for (size_t table = 0; tables[table]; table++)
        for (const zube_flag_t *flag = tables[table]; flag->name; flag++)
            if (strlen (flag->name) == name_size &&
                strncmp (flag->name, arg, name_size) == 0)
                return flag;
    return NULL;
}

int
zube_flags_parse (const char *program, const zube_flag_t *const tables[],
                  zube_flags_usage_fn *usage, int argc, char *argv[])
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            usage (stdout);
            return 1;
        }
        if (strcmp (arg, "--version") == 0) {
            printf ("%s %s\n", program, ZUBE_VERSION_STRING);
            return 1;
        }
        const char *equals = strchr (arg, '=');
        const zube_flag_t *flag = s_flag_find (tables, arg, strlen (arg));
        if (flag && flag->set) {
            *flag->set = true;
            continue;
        }
        if (!flag && equals)
            flag = s_flag_find (tables, arg, (size_t)(equals - arg));
        if (!flag || flag->set) {
            fprintf (stderr, "%s: unknown flag \"%s\" (see --help)\n", program, arg);
            return -1;
        }
        const char *value = equals ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value || (!*value && !flag->empty_ok)) {
            fprintf (stderr, "%s: %s needs a value\n", program, flag->name);
            return -1;
        }
        if (flag->valid && !flag->valid (value)) {
            fprintf (stderr, "%s: %s: expected %s, got \"%s\"\n", program, flag->name,
                     flag->expected, value);
            return -1;
        }
        if (flag->list) {
            if (*flag->list_count == flag->list_max) {
                if (flag->expected)
                    fprintf (stderr, "%s: %s: expected %s, got \"%s\"\n", program,
                             flag->name, flag->expected, value);
                else
                    fprintf (stderr, "%s: more than %zu %s\n", program, flag->list_max,
                             flag->name);
                return -1;
            }
            flag->list[(*flag->list_count)++] = value;
        } else
            *flag->value = value;
    }
    return 0;
}

bool
zube_flag_valid_log_level (const char *value)
{
    return zube_log_level_parse (value) >= 0;
}

bool
zube_flag_valid_bool (const char *value)
{
    return strcmp (value, "true") == 0 || strcmp (value, "false") == 0;
}

void
zube_service_flags_init (zube_service_flags_t *self, const char *file_flag)
{
    const zube_flag_t rows[] = {
        {.name = "--bus", .value = &self->bus},
        {.name = "--certs", .value = &self->certs},
        {.name = "--name", .value = &self->name},
        {.name = "--insecure", .set = &self->insecure},
        {.name = file_flag, .value = &self->file},
        {.name = "--log-level",
         .value = &self->log_level,
         .valid = zube_flag_valid_log_level,
         .expected = ZUBE_FLAG_LOG_LEVEL_EXPECTED},
        {.name = NULL},
    };
    _Static_assert(sizeof rows == sizeof self->rows, "rows fit zube_service_flags_t");
    memcpy (self->rows, rows, sizeof rows);
}

int
zube_service_flags_check (zube_service_flags_t *self, const char *program,
                          bool certs_with_name, bool required)
{
    if (self->insecure && (self->certs || (certs_with_name && self->name))) {
        fprintf (stderr, "%s: --insecure excludes --certs%s\n", program,
                 certs_with_name ? " and --name" : "");
        return -1;
    }
    if (certs_with_name && (self->certs != NULL) != (self->name != NULL)) {
        fprintf (stderr, "%s: --certs and --name go together\n", program);
        return -1;
    }
    if (required && !self->insecure && !self->certs && !self->file) {
        fprintf (stderr, "%s: one of --certs DIR%s, --insecure or %s FILE is required\n",
                 program, certs_with_name ? " --name NAME" : "", self->rows[4].name);
        return -1;
    }
    return 0;
}

void
zube_service_flags_set_log_level (zube_service_flags_t *self)
{
    if (self->log_level)
        zube_log_set_level ((zube_log_level_t)zube_log_level_parse (self->log_level));
}

zube_config_t *
zube_service_flags_client (zube_service_flags_t *self, const char *default_name,
                           char *error, size_t error_size)
{
    return zube_config_for_service (
        self->file, self->rows[4].name, self->bus, self->insecure, self->certs,
        self->name ? self->name : default_name, error, error_size);
}
