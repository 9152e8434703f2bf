/*  zube_config - the client config file, read by zubectl.

    Like kubectl's kubeconfig, it tells a client where the broker is and
    who it is there. A YAML mapping (zube-config(5)):

        apiVersion: zube.io/v1alpha1
        kind: Config
        broker: tcp://127.0.0.1:7400
        certsDir: certs          # relative to the file's folder
        name: admin
        insecure: false
        timeoutMs: 10000

    Lookup order (zube_config_resolve): an explicit path (--config FILE),
    else $ZUBE_CONFIG, else ~/.zube/config, else ~/.zube/cluster/config
    (what `zube up` writes for its default cluster), else the defaults
    (tcp://127.0.0.1:7400, secure, no certificates: zube_config_check then
    says how to connect). Unknown keys are an error naming key and line.

        char error[512];
        zube_config_t *config = zube_config_resolve (path, error, sizeof error);
        if (!config || zube_config_check (config, error, sizeof error) != 0)
            ...
        zube_bus_config_t bus_config;
        zube_config_bus_config (config, &bus_config);
        zube_bus_t *bus = zube_bus_new (&bus_config);
*/
#ifndef ZUBE_CONFIG_H_INCLUDED
#define ZUBE_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "zube/bus.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZUBE_CONFIG_API_VERSION "zube.io/v1alpha1"
#define ZUBE_CONFIG_KIND "Config"
//  Environment variable naming the config file, like $KUBECONFIG.
#define ZUBE_CONFIG_ENV "ZUBE_CONFIG"
//  The user's own file, relative to $HOME, like ~/.kube/config.
#define ZUBE_CONFIG_HOME_PATH ".zube/config"
//  The file `zube up` writes for its default cluster, relative to $HOME.
#define ZUBE_CONFIG_CLUSTER_PATH ".zube/cluster/config"

typedef struct _zube_config_t zube_config_t;

//  Where a config came from.
typedef enum {
    ZUBE_CONFIG_FROM_DEFAULTS = 0,  //  no file: built-in defaults
    ZUBE_CONFIG_FROM_FLAG = 1,      //  an explicit path (--config)
    ZUBE_CONFIG_FROM_ENV = 2,       //  $ZUBE_CONFIG
    ZUBE_CONFIG_FROM_HOME = 3       //  ~/.zube/config or ~/.zube/cluster/config
} zube_config_source_t;

//  A config holding the defaults: broker tcp://127.0.0.1:7400, secure,
//  no certificates directory, no name, timeout 10 s.
zube_config_t *zube_config_new (void);
void zube_config_destroy (zube_config_t **self_p);

//  Parses YAML text. A relative certsDir is taken relative to base_dir
//  (NULL: the current directory). origin names the text in errors
//  ("FILE:LINE: ..."). Returns NULL with the reason in error.
zube_config_t *zube_config_parse (const char *text, const char *base_dir,
                                  const char *origin, char *error, size_t error_size);

//  Reads a file; a relative certsDir is relative to the file's folder.
//  Returns NULL with the reason in error.
zube_config_t *zube_config_load (const char *path, char *error, size_t error_size);

//  The lookup order above. explicit_path may be NULL. A file that was
//  named (flag or environment) must exist; the home file is optional.
//  Returns NULL with the reason in error.
zube_config_t *zube_config_resolve (const char *explicit_path, char *error,
                                    size_t error_size);

//  Writes the config as YAML to path (through a temporary file renamed
//  into place). certsDir is written as set, so a relative one stays
//  relative. Returns 0, or -1 with the reason in error.
int zube_config_save (zube_config_t *self, const char *path, char *error,
                      size_t error_size);

//  The YAML text zube_config_save writes; the caller frees it.
char *zube_config_to_yaml (zube_config_t *self);

//  0 if a client can connect with this config; else -1 and error says
//  what is missing and how to connect (zube up, --config, --certs-dir
//  and --name, or --insecure).
int zube_config_check (zube_config_t *self, char *error, size_t error_size);

//  What every zube service's main does with its connection flags: the
//  config file (path NULL: the defaults), then --bus ENDPOINT, --insecure
//  (which drops certificates and name) and --certs DIR with --name NAME
//  over it, each only when given, then zube_config_check. Returns the
//  config, or NULL with error naming the problem ("--config: ..." after
//  the flag that named the file, file_flag).
zube_config_t *zube_config_for_service (const char *path, const char *file_flag,
                                        const char *bus, bool insecure,
                                        const char *certs, const char *name,
                                        char *error, size_t error_size);

//  Fills a bus config. Its strings point into self: keep self alive while
//  bus_config is used (zube_bus_new copies what it keeps).
void zube_config_bus_config (zube_config_t *self, zube_bus_config_t *bus_config);

//  Accessors. Setters copy their argument; NULL clears a string.
const char *zube_config_broker (zube_config_t *self);
void zube_config_set_broker (zube_config_t *self, const char *endpoint);
//  The certificates directory as resolved (absolute when the file gave a
//  relative one), or NULL.
const char *zube_config_certs_dir (zube_config_t *self);
void zube_config_set_certs_dir (zube_config_t *self, const char *certs_dir);
const char *zube_config_name (zube_config_t *self);
void zube_config_set_name (zube_config_t *self, const char *name);
bool zube_config_insecure (zube_config_t *self);
void zube_config_set_insecure (zube_config_t *self, bool insecure);
int zube_config_timeout_ms (zube_config_t *self);
void zube_config_set_timeout_ms (zube_config_t *self, int timeout_ms);

//  The file the config was read from (NULL for defaults), and how it was
//  found.
const char *zube_config_path (zube_config_t *self);
zube_config_source_t zube_config_source (zube_config_t *self);

//  ---------------------------------------------------------------------
//  Service flags: every service's main describes its flags in one table
//  and parses argv with zube_flags_parse: --flag VALUE or --flag=VALUE,
//  the last of a repeated flag wins, -h/--help prints the usage to
//  stdout, --version prints "PROGRAM VERSION".

//  true when value is acceptable for the flag
typedef bool (zube_flag_valid_fn) (const char *value);

typedef struct {
    const char *name;           //  "--bus"
    bool *set;                  //  a switch (no value): set to true
    const char **value;         //  or a flag with a value: stored here
    const char **list;          //  or a repeatable one: appended here,
    size_t *list_count;         //  counted here,
    size_t list_max;            //  up to this many
    bool empty_ok;              //  an empty value is accepted
    zube_flag_valid_fn *valid;  //  NULL: any value
    const char *expected;       //  what valid accepts, for the error
} zube_flag_t;

typedef void (zube_flags_usage_fn) (FILE *stream);

//  Parses argv[1..] against tables, a NULL-terminated list of tables
//  each ending with a row whose name is NULL. Returns 0; 1 after printing
//  the usage or the version (the program should exit 0); -1 after
//  printing to stderr what is wrong ("PROGRAM: unknown flag ...", "...
//  needs a value", "PROGRAM: FLAG: expected EXPECTED, got \"VALUE\"").
int zube_flags_parse (const char *program, const zube_flag_t *const tables[],
                      zube_flags_usage_fn *usage, int argc, char *argv[]);

//  The flags every service takes: --bus, --certs, --name, --insecure,
//  its config file flag (--config or --kubeconfig) and --log-level
//  (checked). rows is their table, pointing into the struct: init it
//  where it stays, and do not copy it.
typedef struct {
    const char *bus;
    const char *certs;
    const char *name;
    bool insecure;
    const char *file;
    const char *log_level;
    zube_flag_t rows[7];
} zube_service_flags_t;

void zube_service_flags_init (zube_service_flags_t *self, const char *file_flag);

//  After zube_flags_parse: --insecure excludes --certs (and --name, and
//  --certs and --name go together, when certs_with_name), and, when
//  required, one of --certs, --insecure or the file flag is given.
//  Returns 0, or -1 after printing "PROGRAM: ..." to stderr.
int zube_service_flags_check (zube_service_flags_t *self, const char *program,
                              bool certs_with_name, bool required);

//  Sets the log level --log-level gave, if it was given.
void zube_service_flags_set_log_level (zube_service_flags_t *self);

//  zube_config_for_service with these flags (default_name when --name
//  is not given; may be NULL).
zube_config_t *zube_service_flags_client (zube_service_flags_t *self,
                                          const char *default_name, char *error,
                                          size_t error_size);

//  Validators for common flags, with what they expect.
#define ZUBE_FLAG_LOG_LEVEL_EXPECTED "debug, info, warn, error or off"
bool zube_flag_valid_log_level (const char *value);
#define ZUBE_FLAG_BOOL_EXPECTED "true or false"
bool zube_flag_valid_bool (const char *value);

#ifdef __cplusplus
}
#endif
#endif
