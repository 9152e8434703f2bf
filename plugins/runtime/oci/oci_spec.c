/*  oci_spec - a container's OCI runtime config (config.json) from its pod.

    Kubernetes' rules, as the kubelet and containerd apply them: the
    process is command + args over the image's entrypoint + cmd; env is
    the image's, then the container's (valueFrom fieldRef resolved, and
    $(VAR) references expanded in env, command and args); the user is
    securityContext runAsUser/runAsGroup (the container's over the pod's)
    else the image's numeric user; capabilities are containerd's default
    set with securityContext.capabilities add and drop; limits become the
    cgroup's memory limit and CPU quota, requests its CPU shares. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "oci.h"

//  containerd's default capability set
static const char *s_default_caps[] = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE",     "CAP_FSETID",      "CAP_FOWNER",
    "CAP_MKNOD",  "CAP_NET_RAW",          "CAP_SETGID",      "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",         "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",   "CAP_AUDIT_WRITE",      NULL};

static const char *s_all_caps[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE", NULL};

#define S_CAP_COUNT 41

//  "NET_ADMIN", "CAP_NET_ADMIN", "net_admin": its index, -1 unknown.
static int
s_cap_index (const char *name)
{
    const char *bare = strncasecmp (name, "CAP_", 4) == 0 ? name + 4 : name;
    for (int i = 0; s_all_caps[i]; i++)
        if (strcasecmp (s_all_caps[i] + 4, bare) == 0)
            return i;
    return -1;
}

static const Zube__Quantity *
s_resource (Zube__ResourceRequirements *resources, bool limits, const char *name)
{
    if (!resources)
        return NULL;
    size_t count = limits ? resources->n_limits : resources->n_requests;
    for (size_t i = 0; i < count; i++) {
        const char *key = limits ? resources->limits[i]->key : resources->requests[i]->key;
        if (key && strcmp (key, name) == 0)
            return limits ? resources->limits[i]->value : resources->requests[i]->value;
    }
    return NULL;
}

const char *
oci_spec_cwd (const Zube__Container *container, const oci_image_config_t *image)
{
    if (container->working_dir && *container->working_dir)
        return container->working_dir;
    if (image && image->working_dir && *image->working_dir)
        return image->working_dir;
    return "/";
}

int64_t
oci_spec_memory_limit (const Zube__Container *container)
{
    const Zube__Quantity *memory = s_resource (container->resources, true, "memory");
    return memory && memory->has_milli_value ? (memory->milli_value + 999) / 1000 : 0;
}

//  ---------------------------------------------------------------------
//  Environment

typedef struct {
    char **items;   //  "NAME=value", malloc'd
    size_t count;
    size_t capacity;
} s_env_t;

static void
s_env_free (s_env_t *env)
{
    for (size_t i = 0; i < env->count; i++)
        free (env->items[i]);
    free (env->items);
}

static const char *
s_env_lookup (const s_env_t *env, const char *name, size_t length)
{
    for (size_t i = 0; i < env->count; i++)
        if (strncmp (env->items[i], name, length) == 0 && env->items[i][length] == '=')
            return env->items[i] + length + 1;
    return NULL;
}

//  Kubernetes' $(VAR) expansion: a defined variable is replaced, $$ is a
//  literal $, anything else stays as written.
static char *
s_expand (const s_env_t *env, const char *text)
{
    oci_buf_t out = {0};
    oci_buf_append (&out, "", 0);
    for (const char *c = text; *c;) {
        if (c[0] == '$' && c[1] == '$') {
            oci_buf_append (&out, "$", 1);
            c += 2;
        } else if (c[0] == '$' && c[1] == '(') {
            const char *end = strchr (c + 2, ')');
            const char *value = end ? s_env_lookup (env, c + 2, (size_t) (end - c - 2)) : NULL;
            if (value) {
                oci_buf_append (&out, value, strlen (value));
                c = end + 1;
            } else {
                oci_buf_append (&out, c, 2);
                c += 2;
            }
        } else
            oci_buf_append (&out, c++, 1);
    }
    if (out.failed) {
        oci_buf_free (&out);
        return NULL;
    }
    return out.data;
}

static int
s_env_set (s_env_t *env, const char *name, const char *value)
{
    char *item;
    if (asprintf (&item, "%s=%s", name, value ? value : "") < 0)
        return -1;
    size_t length = strlen (name);
    for (size_t i = 0; i < env->count; i++)
        if (strncmp (env->items[i], name, length) == 0 && env->items[i][length] == '=') {
            free (env->items[i]);
            env->items[i] = item;
            return 0;
        }
    if (env->count == env->capacity) {
        size_t capacity = env->capacity ? env->capacity * 2 : 16;
        char **items = realloc (env->items, capacity * sizeof *items);
        if (!items) {
            free (item);
            return -1;
        }
        env->items = items;
        env->capacity = capacity;
    }
    env->items[env->count++] = item;
    return 0;
}

static int
s_env_build (const oci_spec_input_t *input, s_env_t *env, char *error, size_t error_size)
{
    const Zube__Pod *pod = input->pod;
    const Zube__Container *container = input->container;
    if (s_env_set (env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        != 0)
        goto oom;
    for (size_t i = 0; input->image && i < input->image->env_count; i++) {
        const char *item = input->image->env[i];
        const char *equals = strchr (item, '=');
        if (!equals)
            continue;
        char name[256];
        snprintf (name, sizeof name, "%.*s", (int) (equals - item), item);
        if (s_env_set (env, name, equals + 1) != 0)
            goto oom;
    }
    const char *hostname = pod->spec && pod->spec->hostname && *pod->spec->hostname
                               ? pod->spec->hostname
                               : pod->metadata->name;
    if (s_env_set (env, "HOSTNAME", hostname) != 0)
        goto oom;
    for (size_t i = 0; i < container->n_env; i++) {
        const Zube__EnvVar *var = container->env[i];
        if (!var->name || !*var->name)
            continue;
        const char *value = var->value ? var->value : "";
        char *expanded = NULL;
        if (var->value_from && var->value_from->field_ref) {
            const char *path = var->value_from->field_ref->field_path
                                   ? var->value_from->field_ref->field_path
                                   : "";
            if (strcmp (path, "metadata.name") == 0)
                value = pod->metadata->name;
            else if (strcmp (path, "metadata.namespace") == 0)
                value = pod->metadata->namespace_;
            else if (strcmp (path, "metadata.uid") == 0)
                value = pod->metadata->uid;
            else if (strcmp (path, "status.podIP") == 0)
                value = input->pod_ip ? input->pod_ip : "";
            else if (strcmp (path, "spec.nodeName") == 0)
                value = pod->spec ? pod->spec->node_name : "";
            else if (strcmp (path, "spec.serviceAccountName") == 0)
                value = pod->spec ? pod->spec->service_account_name : "";
            else {
                snprintf (error, error_size,
                          "env %s: fieldRef %s is not supported by the oci runtime (supported: "
                          "metadata.name, metadata.namespace, metadata.uid, status.podIP, "
                          "spec.nodeName, spec.serviceAccountName)",
                          var->name, path);
                return -1;
            }
        } else if (var->value_from) {
            snprintf (error, error_size,
                      "env %s: configMapKeyRef, secretKeyRef and resourceFieldRef are not "
                      "supported by the oci runtime yet (the zubelet does not hand it the "
                      "objects)",
                      var->name);
            return -1;
        } else {
            expanded = s_expand (env, value);
            if (!expanded)
                goto oom;
            value = expanded;
        }
        int rc = s_env_set (env, var->name, value);
        free (expanded);
        if (rc != 0)
            goto oom;
    }
    return 0;
oom:
    snprintf (error, error_size, "out of memory");
    return -1;
}

//  ---------------------------------------------------------------------
//  Mounts

static void
s_mount (oci_buf_t *buf, const char *destination, const char *type, const char *source,
         const char *options)
{
    oci_buf_printf (buf, ",{\"destination\":");
    oci_buf_json (buf, destination);
    oci_buf_printf (buf, ",\"type\":");
    oci_buf_json (buf, type);
    oci_buf_printf (buf, ",\"source\":");
    oci_buf_json (buf, source);
    oci_buf_printf (buf, ",\"options\":[%s]}", options);
}

static const Zube__Volume *
s_volume (const Zube__Pod *pod, const char *name)
{
    for (size_t i = 0; pod->spec && i < pod->spec->n_volumes; i++)
        if (pod->spec->volumes[i]->name && strcmp (pod->spec->volumes[i]->name, name) == 0)
            return pod->spec->volumes[i];
    return NULL;
}

static int
s_volume_mounts (const oci_spec_input_t *input, oci_buf_t *buf, char *error,
                 size_t error_size)
{
    const Zube__Container *container = input->container;
    for (size_t i = 0; i < container->n_volume_mounts; i++) {
        const Zube__VolumeMount *mount = container->volume_mounts[i];
        const char *name = mount->name ? mount->name : "";
        const Zube__Volume *volume = s_volume (input->pod, name);
        if (!volume) {
            snprintf (error, error_size, "volumeMounts[%zu]: no volume named \"%s\" in the pod",
                      i, name);
            return -1;
        }
        if (!mount->mount_path || mount->mount_path[0] != '/') {
            snprintf (error, error_size,
                      "volumeMounts[%zu] (%s): mountPath must be an absolute path", i, name);
            return -1;
        }
        char source[4200];
        if (volume->empty_dir) {
            snprintf (source, sizeof source, "%s/%s", input->volumes_dir, name);
            if (oci_mkdirs (source, 0777) != 0) {
                snprintf (error, error_size, "emptyDir %s: cannot create %s: %s", name, source,
                          strerror (errno));
                return -1;
            }
            chmod (source, 0777);
        } else if (volume->host_path && volume->host_path->path) {
            const char *type = volume->host_path->type ? volume->host_path->type : "";
            snprintf (source, sizeof source, "%s", volume->host_path->path);
            struct stat st;
            if (strcmp (type, "DirectoryOrCreate") == 0 && stat (source, &st) != 0
                && oci_mkdirs (source, 0755) != 0) {
                snprintf (error, error_size, "hostPath %s: cannot create %s: %s", name, source,
                          strerror (errno));
                return -1;
            }
            if (stat (source, &st) != 0) {
                snprintf (error, error_size, "hostPath %s: %s: %s", name, source,
                          strerror (errno));
                return -1;
            }
        } else {
            const char *kind = volume->config_map ? "configMap"
                               : volume->secret   ? "secret"
                               : volume->projected ? "projected"
                               : volume->downward_api ? "downwardAPI"
                               : volume->persistent_volume_claim ? "persistentVolumeClaim"
                                                                  : "unknown";
            snprintf (error, error_size,
                      "volume \"%s\": %s volumes are not supported by the oci runtime yet "
                      "(emptyDir and hostPath are)",
                      name, kind);
            return -1;
        }
        if (mount->sub_path && *mount->sub_path) {
            if (strstr (mount->sub_path, "..") || mount->sub_path[0] == '/') {
                snprintf (error, error_size, "volumeMounts[%zu] (%s): invalid subPath \"%s\"",
                          i, name, mount->sub_path);
                return -1;
            }
            size_t length = strlen (source);
            snprintf (source + length, sizeof source - length, "/%s", mount->sub_path);
            struct stat st;
            if (stat (source, &st) != 0 && oci_mkdirs (source, 0777) != 0) {
                snprintf (error, error_size, "subPath %s: %s", source, strerror (errno));
                return -1;
            }
        }
        s_mount (buf, mount->mount_path, "bind", source,
                 mount->read_only ? "\"rbind\",\"rprivate\",\"ro\"" : "\"rbind\",\"rprivate\"");
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  The whole config

static void
s_strings (oci_buf_t *buf, char *const *items, size_t count)
{
    oci_buf_append (buf, "[", 1);
    for (size_t i = 0; i < count; i++) {
        if (i)
            oci_buf_append (buf, ",", 1);
        oci_buf_json (buf, items[i]);
    }
    oci_buf_append (buf, "]", 1);
}

static int
s_args (const oci_spec_input_t *input, const s_env_t *env, oci_buf_t *buf, char *error,
        size_t error_size)
{
    const Zube__Container *container = input->container;
    const oci_image_config_t *image = input->image;
    //  command replaces the entrypoint (and drops cmd), args replace cmd
    char *const *first = container->n_command ? container->command
                         : image ? image->entrypoint : NULL;
    size_t first_count = container->n_command ? container->n_command
                         : image ? image->entrypoint_count : 0;
    char *const *second = container->n_args ? container->args
                          : container->n_command ? NULL
                          : image ? image->cmd : NULL;
    size_t second_count = container->n_args ? container->n_args
                          : container->n_command ? 0
                          : image ? image->cmd_count : 0;
    if (first_count + second_count == 0) {
        snprintf (error, error_size,
                  "no command specified: the container has no command or args and the image "
                  "no entrypoint or cmd");
        return -1;
    }
    bool expand = true;
    oci_buf_append (buf, "[", 1);
    for (size_t i = 0; i < first_count + second_count; i++) {
        const char *arg = i < first_count ? first[i] : second[i - first_count];
        bool from_spec = i < first_count ? container->n_command > 0 : container->n_args > 0;
        char *expanded = expand && from_spec ? s_expand (env, arg) : NULL;
        if (i)
            oci_buf_append (buf, ",", 1);
        oci_buf_json (buf, expanded ? expanded : arg);
        free (expanded);
    }
    oci_buf_append (buf, "]", 1);
    return 0;
}

static void
s_capabilities (const Zube__SecurityContext *context, oci_buf_t *buf)
{
    bool set[S_CAP_COUNT] = {false};
    for (int i = 0; s_default_caps[i]; i++)
        set[s_cap_index (s_default_caps[i])] = true;
    const Zube__Capabilities *caps = context ? context->capabilities : NULL;
    for (size_t i = 0; caps && i < caps->n_drop; i++) {
        if (strcasecmp (caps->drop[i], "ALL") == 0)
            memset (set, 0, sizeof set);
        else if (s_cap_index (caps->drop[i]) >= 0)
            set[s_cap_index (caps->drop[i])] = false;
    }
    for (size_t i = 0; caps && i < caps->n_add; i++) {
        if (strcasecmp (caps->add[i], "ALL") == 0)
            for (int c = 0; c < S_CAP_COUNT; c++)
                set[c] = true;
        else if (s_cap_index (caps->add[i]) >= 0)
            set[s_cap_index (caps->add[i])] = true;
    }
    if (context && context->has_privileged && context->privileged)
        for (int c = 0; c < S_CAP_COUNT; c++)
            set[c] = true;
    oci_buf_t list = {0};
    oci_buf_append (&list, "[", 1);
    bool first = true;
    for (int c = 0; c < S_CAP_COUNT; c++)
        if (set[c]) {
            oci_buf_printf (&list, "%s\"%s\"", first ? "" : ",", s_all_caps[c]);
            first = false;
        }
    oci_buf_append (&list, "]", 1);
    const char *text = list.data ? list.data : "[]";
    oci_buf_printf (buf, "\"capabilities\":{\"bounding\":%s,\"effective\":%s,\"permitted\":%s}",
                    text, text, text);
    oci_buf_free (&list);
}

static void
s_user (const oci_spec_input_t *input, oci_buf_t *buf)
{
    const Zube__SecurityContext *context = input->container->security_context;
    const Zube__PodSecurityContext *pod_context = input->pod->spec
                                                      ? input->pod->spec->security_context
                                                      : NULL;
    int64_t uid = 0, gid = 0;
    const char *user = input->image ? input->image->user : NULL;
    if (user && *user) {
        char *end;
        long value = strtol (user, &end, 10);
        if (end != user && (*end == 0 || *end == ':')) {
            uid = value;
            if (*end == ':')
                gid = strtol (end + 1, NULL, 10);
        }
    }
    if (pod_context && pod_context->has_run_as_user)
        uid = pod_context->run_as_user;
    if (pod_context && pod_context->has_run_as_group)
        gid = pod_context->run_as_group;
    if (context && context->has_run_as_user)
        uid = context->run_as_user;
    if (context && context->has_run_as_group)
        gid = context->run_as_group;
    oci_buf_printf (buf, "\"user\":{\"uid\":%lld,\"gid\":%lld", (long long) uid,
                    (long long) gid);
    if (pod_context && pod_context->n_supplemental_groups) {
        oci_buf_printf (buf, ",\"additionalGids\":[");
        for (size_t i = 0; i < pod_context->n_supplemental_groups; i++)
            oci_buf_printf (buf, "%s%lld", i ? "," : "",
                            (long long) pod_context->supplemental_groups[i]);
        oci_buf_printf (buf, "]");
    }
    oci_buf_printf (buf, "}");
}

static void
s_resources (const Zube__Container *container, oci_buf_t *buf)
{
    oci_buf_printf (buf, "\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]");
    int64_t memory = oci_spec_memory_limit (container);
    if (memory > 0)
        oci_buf_printf (buf, ",\"memory\":{\"limit\":%lld,\"swap\":%lld}", (long long) memory,
                        (long long) memory);
    const Zube__Quantity *cpu_limit = s_resource (container->resources, true, "cpu");
    const Zube__Quantity *cpu_request = s_resource (container->resources, false, "cpu");
    if (!cpu_request)
        cpu_request = cpu_limit;
    //  The kubelet's MilliCPUToShares and MilliCPUToQuota
    int64_t shares = 2;
    if (cpu_request && cpu_request->has_milli_value)
        shares = cpu_request->milli_value * 1024 / 1000;
    if (shares < 2)
        shares = 2;
    oci_buf_printf (buf, ",\"cpu\":{\"shares\":%lld", (long long) shares);
    if (cpu_limit && cpu_limit->has_milli_value && cpu_limit->milli_value > 0) {
        int64_t quota = cpu_limit->milli_value * 100000 / 1000;
        if (quota < 1000)
            quota = 1000;
        oci_buf_printf (buf, ",\"quota\":%lld,\"period\":100000", (long long) quota);
    }
    oci_buf_printf (buf, "}}");
}

int
oci_spec_write (const oci_spec_input_t *input, const char *bundle, char *error,
                size_t error_size)
{
    const Zube__Pod *pod = input->pod;
    const Zube__Container *container = input->container;
    const Zube__SecurityContext *context = container->security_context;
    s_env_t env = {0};
    oci_buf_t buf = {0};
    int rc = -1;
    if (s_env_build (input, &env, error, error_size) != 0)
        goto done;
    oci_buf_printf (&buf, "{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":false,");
    s_user (input, &buf);
    oci_buf_printf (&buf, ",\"args\":");
    if (s_args (input, &env, &buf, error, error_size) != 0)
        goto done;
    oci_buf_printf (&buf, ",\"env\":");
    s_strings (&buf, env.items, env.count);
    const char *cwd = oci_spec_cwd (container, input->image);
    oci_buf_printf (&buf, ",\"cwd\":");
    oci_buf_json (&buf, cwd);
    oci_buf_printf (&buf, ",");
    s_capabilities (context, &buf);
    bool no_new_privileges = context && context->has_allow_privilege_escalation
                             && !context->allow_privilege_escalation;
    oci_buf_printf (&buf,
                    ",\"noNewPrivileges\":%s},",
                    no_new_privileges ? "true" : "false");
    bool read_only = context && context->has_read_only_root_filesystem
                     && context->read_only_root_filesystem;
    oci_buf_printf (&buf, "\"root\":{\"path\":");
    oci_buf_json (&buf, input->rootfs);
    oci_buf_printf (&buf, ",\"readonly\":%s},\"hostname\":", read_only ? "true" : "false");
    const char *hostname = pod->spec && pod->spec->hostname && *pod->spec->hostname
                               ? pod->spec->hostname
                               : pod->metadata->name;
    oci_buf_json (&buf, hostname);
    //  The first mount has no leading comma
    oci_buf_printf (&buf, ",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\","
                          "\"source\":\"proc\",\"options\":[\"nosuid\",\"noexec\",\"nodev\"]}");
    s_mount (&buf, "/dev", "tmpfs", "tmpfs", "\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"");
    s_mount (&buf, "/dev/pts", "devpts", "devpts",
             "\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"mode=0620\",\"gid=5\"");
    s_mount (&buf, "/dev/shm", "tmpfs", "shm",
             "\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"");
    s_mount (&buf, "/dev/mqueue", "mqueue", "mqueue", "\"nosuid\",\"noexec\",\"nodev\"");
    s_mount (&buf, "/sys", "sysfs", "sysfs", "\"nosuid\",\"noexec\",\"nodev\",\"ro\"");
    s_mount (&buf, "/sys/fs/cgroup", "cgroup", "cgroup",
             "\"nosuid\",\"noexec\",\"nodev\",\"relatime\",\"ro\"");
    if (input->hosts_file)
        s_mount (&buf, "/etc/hosts", "bind", input->hosts_file, "\"rbind\",\"rprivate\",\"ro\"");
    if (s_volume_mounts (input, &buf, error, error_size) != 0)
        goto done;
    oci_buf_printf (&buf, "],\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"ipc\"},"
                          "{\"type\":\"uts\"},{\"type\":\"mount\"}");
    if (input->netns) {
        oci_buf_printf (&buf, ",{\"type\":\"network\",\"path\":");
        oci_buf_json (&buf, input->netns);
        oci_buf_printf (&buf, "}");
    }
    oci_buf_printf (&buf, "],\"cgroupsPath\":");
    oci_buf_json (&buf, input->cgroups_path);
    oci_buf_printf (&buf, ",");
    s_resources (container, &buf);
    oci_buf_printf (
        &buf,
        ",\"maskedPaths\":[\"/proc/acpi\",\"/proc/asound\",\"/proc/kcore\",\"/proc/keys\","
        "\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_stats\","
        "\"/proc/sched_debug\",\"/proc/scsi\",\"/sys/firmware\"],"
        "\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\","
        "\"/proc/sysrq-trigger\"]}}\n");
    if (buf.failed) {
        snprintf (error, error_size, "out of memory");
        goto done;
    }
    char path[4200];
    snprintf (path, sizeof path, "%s/config.json", bundle);
    if (oci_write_file (path, buf.data, buf.used, 0600) != 0) {
        snprintf (error, error_size, "cannot write %s: %s", path, strerror (errno));
        goto done;
    }
    rc = 0;
done:
    s_env_free (&env);
    oci_buf_free (&buf);
    return rc;
}
