/*  zube-bench runtime - how fast the oci runtime starts pods.

    Loads the oci plugin as the zubelet does (zube_runtime_open) on a
    state directory of its own, with its own bridge and pod range, and
    imports the busybox test image (scripts/make-test-image.sh, or
    --image). Then, pod after pod, it measures the runtime's part of
    "created -> Running": run_sandbox (network namespace, CNI loopback
    and bridge with host-local) + create_container (rootfs from the image
    store, config.json) + start_container (shim, runc create, runc start),
    until the container runs. Interleaved with each pod, in the same run,
    a bare `runc run --detach` of the same bundle (the first pod's
    config.json and rootfs, in that pod's network namespace): what runc
    alone costs. Reports p50 and p99 of both, their ratio, and pods
    started per second. Everything is removed at the end.

    Root only (runc, network namespaces). The apiserver and the zubelet's
    own loop are not in the figure: zube-bench api measures the first. */
#define _GNU_SOURCE
#include "zube/codec.h"
#include "zube/runtime_client.h"
#include "core.pb-c.h"
#include "zube_bench.h"
#include "zube_cli.h"
#include "../plugins/runtime/oci/oci_image.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_IMAGE "zube.test/busybox:1"

typedef struct {
    long pods;
    const char *image;
    const char *runc;
    bool json;
    char dir[256];
    char state[400];
    char bridge[16];
    char cgroup[64];
    zube_plugin_host_t *plugins;
    zube_runtime_t *runtime;
    char (*sandboxes)[ZUBE_RUNTIME_ID_MAX];
    long sandbox_count;
    long bare_count;
    double *pod_ms;
    double *bare_ms;
    //  The pod's phases: run_sandbox, create_container, start_container
    double *phase_ms[3];
} s_bench_t;

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static int
s_compare_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double
s_percentile (double *sorted, long count, double fraction)
{
    if (count <= 0)
        return 0;
    long index = (long) ceil (fraction * (double) count);
    return sorted[index ? index - 1 : 0];
}

//  Runs argv with stdio on /dev/null; its exit code, or -1.
static int
s_run_quiet (char *const argv[])
{
    pid_t pid = fork ();
    if (pid == 0) {
        int null_fd = open ("/dev/null", O_RDWR);
        dup2 (null_fd, 0);
        dup2 (null_fd, 1);
        dup2 (null_fd, 2);
        execv (argv[0], argv);
        _exit (127);
    }
    int status = 0;
    if (pid < 0 || waitpid (pid, &status, 0) != pid)
        return -1;
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    char *text = size >= 0 ? malloc ((size_t) size + 1) : NULL;
    if (text && fread (text, 1, (size_t) size, file) != (size_t) size) {
        free (text);
        text = NULL;
    }
    if (text)
        text[size] = 0;
    fclose (file);
    return text;
}

//  The busybox test image, made by the script next to the sources when
//  --image is not given.
static bool
s_import_image (s_bench_t *self)
{
    char path[600];
    if (self->image)
        snprintf (path, sizeof path, "%s", self->image);
    else {
        const char *srcdir = getenv ("ZUBE_SRCDIR");
        char script[600];
        snprintf (script, sizeof script, "%s/scripts/make-test-image.sh", srcdir ? srcdir : ".");
        if (access (script, R_OK) != 0) {
            zube_cli_error ("no --image given and %s not found (set ZUBE_SRCDIR to the source "
                            "tree)",
                            script);
            return false;
        }
        snprintf (path, sizeof path, "%s/image", self->dir);
        char *argv[] = {"/bin/sh", script, path, NULL};
        if (s_run_quiet (argv) != 0) {
            zube_cli_error ("%s failed", script);
            return false;
        }
    }
    char images[600], error[1024] = "";
    snprintf (images, sizeof images, "%s/images", self->state);
    oci_image_store_t *store = oci_image_store_open (images, error, sizeof error);
    int rc = store ? oci_image_import (store, path, NULL, 0, error, sizeof error) : -1;
    oci_image_store_close (&store);
    if (rc != 0)
        zube_cli_error ("image %s: %s", path, error);
    return rc == 0;
}

static bool
s_open (s_bench_t *self)
{
    char state[500], bridge[64], cidr[64], cgroup[100], runc[600];
    snprintf (state, sizeof state, "state_dir=%s", self->state);
    snprintf (bridge, sizeof bridge, "bridge=%s", self->bridge);
    snprintf (cidr, sizeof cidr, "pod_cidr=10.215.%d.0/22", (int) (getpid () % 60) * 4);
    snprintf (cgroup, sizeof cgroup, "cgroup_parent=%s", self->cgroup);
    snprintf (runc, sizeof runc, "runc=%s", self->runc);
    const char *options[] = {state, bridge, cidr, cgroup, runc, NULL};
    char *error = NULL;
    self->plugins = zube_plugin_host_new ();
    self->runtime = self->plugins ? zube_runtime_open (self->plugins, "oci", options, &error)
                                  : NULL;
    if (!self->runtime)
        zube_cli_error ("the oci runtime: %s", error ? error : "out of memory");
    free (error);
    return self->runtime != NULL;
}

//  One pod: sandbox, container, started. Its latency in ms, or < 0.
static double
s_pod (s_bench_t *self, long i, const uint8_t *packed, size_t size)
{
    char name[32], uid[48];
    snprintf (name, sizeof name, "bench-%ld", i);
    snprintf (uid, sizeof uid, "bench-uid-%ld", i);
    zube_runtime_sandbox_config_t config = {.struct_size = sizeof config,
                                            .node_name = "bench",
                                            .pod_namespace = "default",
                                            .pod_name = name,
                                            .pod_uid = uid,
                                            .pod = packed,
                                            .pod_size = size};
    double start = s_now_ms ();
    char *sandbox = self->sandboxes[self->sandbox_count];
    if (zube_runtime_run_sandbox (self->runtime, &config, sandbox, ZUBE_RUNTIME_ID_MAX)
        != ZUBE_OK) {
        zube_cli_error ("pod %ld: %s", i, zube_runtime_error (self->runtime));
        return -1;
    }
    self->sandbox_count++;
    double sandbox_done = s_now_ms ();
    self->phase_ms[0][i] = sandbox_done - start;
    zube_runtime_container_config_t container = {
        .struct_size = sizeof container, .name = "app", .index = 0};
    char id[ZUBE_RUNTIME_ID_MAX];
    if (zube_runtime_create_container (self->runtime, sandbox, &container, id, sizeof id)
        != ZUBE_OK) {
        zube_cli_error ("pod %ld: %s", i, zube_runtime_error (self->runtime));
        return -1;
    }
    double created = s_now_ms ();
    self->phase_ms[1][i] = created - sandbox_done;
    if (zube_runtime_start_container (self->runtime, id) != ZUBE_OK) {
        zube_cli_error ("pod %ld: %s", i, zube_runtime_error (self->runtime));
        return -1;
    }
    self->phase_ms[2][i] = s_now_ms () - created;
    zube_runtime_container_status_t status = {.struct_size = sizeof status};
    if (zube_runtime_container_status (self->runtime, id, &status) != ZUBE_OK
        || status.state != ZUBE_RUNTIME_CONTAINER_RUNNING) {
        zube_cli_error ("pod %ld: not running", i);
        return -1;
    }
    return s_now_ms () - start;
}

//  The bare runc bundle: the first pod's config.json with a cgroup path
//  of its own. Its directory into bundle.
static bool
s_bare_bundle (s_bench_t *self, char *bundle, size_t bundle_size)
{
    char containers[600];
    snprintf (containers, sizeof containers, "%s/containers", self->state);
    DIR *dir = opendir (containers);
    struct dirent *entry;
    char config[900] = "";
    while (dir && (entry = readdir (dir)))
        if (entry->d_name[0] != '.')
            snprintf (config, sizeof config, "%s/%s/config.json", containers, entry->d_name);
    if (dir)
        closedir (dir);
    char *text = config[0] ? s_read (config) : NULL;
    char *cgroups = text ? strstr (text, "\"cgroupsPath\":\"") : NULL;
    if (!cgroups) {
        free (text);
        zube_cli_error ("no container bundle to copy for the bare runc runs");
        return false;
    }
    snprintf (bundle, bundle_size, "%s/bare", self->dir);
    mkdir (bundle, 0700);
    char path[700];
    snprintf (path, sizeof path, "%s/config.json", bundle);
    FILE *file = fopen (path, "w");
    if (!file) {
        free (text);
        return false;
    }
    //  "cgroupsPath":"/<parent>/<id>" becomes "/<parent>/bare-$ID": runc
    //  takes the cgroup from the id when cgroupsPath is absent, so drop it
    *cgroups = 0;
    char *rest = strchr (cgroups + 15, '"');
    fprintf (file, "%s\"cgroupsPath\":\"/%s/bare\"%s", text, self->cgroup, rest ? rest + 1 : "");
    fclose (file);
    free (text);
    return true;
}

static double
s_bare_run (s_bench_t *self, const char *bundle, long i)
{
    char root[600], id[64];
    snprintf (root, sizeof root, "%s/bare-runc", self->dir);
    snprintf (id, sizeof id, "bare-%ld", i);
    //  Each run its own cgroup: the bundle's path ends in /bare, runc
    //  appends nothing, so the runs would share it; rewrite per run
    char config[700];
    snprintf (config, sizeof config, "%s/config.json", bundle);
    char *text = s_read (config);
    char *at = text ? strstr (text, "/bare\"") : NULL;
    if (!at) {
        free (text);
        return -1;
    }
    char run_bundle[700];
    snprintf (run_bundle, sizeof run_bundle, "%s-%ld", bundle, i);
    mkdir (run_bundle, 0700);
    char run_config[800];
    snprintf (run_config, sizeof run_config, "%s/config.json", run_bundle);
    FILE *file = fopen (run_config, "w");
    if (!file) {
        free (text);
        return -1;
    }
    *at = 0;
    fprintf (file, "%s/bare-%ld\"%s", text, i, at + 6);
    fclose (file);
    free (text);
    char *argv[] = {(char *) self->runc, "--root", root, "run", "--detach", "--bundle",
                    run_bundle, id, NULL};
    double start = s_now_ms ();
    int rc = s_run_quiet (argv);
    double ms = s_now_ms () - start;
    if (rc != 0) {
        zube_cli_error ("runc run --detach of the copied bundle failed (exit %d)", rc);
        return -1;
    }
    self->bare_count = i + 1;
    return ms;
}

static int
s_unlink_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    remove (path);
    return 0;
}

static void
s_cleanup (s_bench_t *self)
{
    char root[600];
    snprintf (root, sizeof root, "%s/bare-runc", self->dir);
    for (long i = 0; i < self->bare_count; i++) {
        char id[64];
        snprintf (id, sizeof id, "bare-%ld", i);
        char *argv[] = {(char *) self->runc, "--root", root, "delete", "--force", id, NULL};
        s_run_quiet (argv);
    }
    for (long i = 0; self->runtime && i < self->sandbox_count; i++) {
        zube_runtime_stop_sandbox (self->runtime, self->sandboxes[i], 0);
        if (zube_runtime_remove_sandbox (self->runtime, self->sandboxes[i]) != ZUBE_OK)
            zube_cli_error ("cannot remove sandbox %s: %s", self->sandboxes[i],
                            zube_runtime_error (self->runtime));
    }
    zube_runtime_close (&self->runtime);
    zube_plugin_host_destroy (&self->plugins);
    DIR *hierarchies = opendir ("/sys/fs/cgroup");
    struct dirent *entry;
    while (hierarchies && (entry = readdir (hierarchies))) {
        char path[700];
        snprintf (path, sizeof path, "/sys/fs/cgroup/%s/%s", entry->d_name, self->cgroup);
        rmdir (path);
    }
    if (hierarchies)
        closedir (hierarchies);
    char *argv[] = {"/usr/sbin/ip", "link", "del", self->bridge, NULL};
    s_run_quiet (argv);
    char *mounts = s_read ("/proc/self/mountinfo");
    if (self->dir[0] && (!mounts || !strstr (mounts, self->dir)))
        nftw (self->dir, s_unlink_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (self->dir[0])
        zube_cli_error ("something is still mounted under %s: left in place", self->dir);
    free (mounts);
}

static void
s_usage (const zube_cli_flag_t *flags)
{
    printf ("Pod start latency of the oci runtime against bare runc run (zube-bench(1)).\n\n"
            "Usage:\n  zube-bench runtime [flags]\n\n");
    zube_cli_print_flags (stdout, "Flags", (const zube_cli_flag_t *const[]) {flags, NULL});
}

int
zube_bench_runtime (int argc, char **argv)
{
    s_bench_t bench = {.pods = 100, .runc = "/usr/sbin/runc"};
    const zube_cli_flag_t flags[] = {
        {.name = "pods", .type = ZUBE_CLI_INT, .value = &bench.pods, .value_name = "N",
         .help = "pods to start, one after the other, and as many bare runc runs [100]"},
        {.name = "image", .type = ZUBE_CLI_STRING, .value = &bench.image, .value_name = "PATH",
         .help = "the zube.test/busybox:1 image (OCI layout or archive) [built by "
                 "scripts/make-test-image.sh under $ZUBE_SRCDIR]"},
        {.name = "runc", .type = ZUBE_CLI_STRING, .value = &bench.runc, .value_name = "PATH",
         .help = "the runc binary [/usr/sbin/runc]"},
        {.name = "json", .type = ZUBE_CLI_BOOL, .value = &bench.json,
         .help = "print the results as JSON"},
        {0}};
    char *args[64];
    int count = zube_cli_parse ("zube-bench runtime", (const zube_cli_flag_t *const[]) {flags, NULL},
                                argc, argv, args, false);
    if (count == ZUBE_CLI_HELP) {
        s_usage (flags);
        return 0;
    }
    if (count < 0)
        return 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\"", args[0]);
        return 1;
    }
    if (bench.pods < 1 || bench.pods > 1000) {
        zube_cli_error ("--pods: expected 1 to 1000, got %ld", bench.pods);
        return 1;
    }
    if (geteuid () != 0) {
        zube_cli_error ("zube-bench runtime needs root (runc, network namespaces, CNI)");
        return 1;
    }
    snprintf (bench.dir, sizeof bench.dir, "/tmp/zube-bench-runtime-XXXXXX");
    if (!mkdtemp (bench.dir)) {
        zube_cli_error ("no temporary directory: %s", strerror (errno));
        return 1;
    }
    snprintf (bench.state, sizeof bench.state, "%s/state", bench.dir);
    snprintf (bench.bridge, sizeof bench.bridge, "zb%d", (int) (getpid () % 100000));
    snprintf (bench.cgroup, sizeof bench.cgroup, "zube-bench-%d", (int) getpid ());
    bench.sandboxes = calloc ((size_t) bench.pods, ZUBE_RUNTIME_ID_MAX);
    bench.pod_ms = calloc ((size_t) bench.pods, sizeof (double));
    bench.bare_ms = calloc ((size_t) bench.pods, sizeof (double));
    for (int p = 0; p < 3; p++)
        bench.phase_ms[p] = calloc ((size_t) bench.pods, sizeof (double));
    const char *yaml = "metadata: {name: bench, namespace: default, uid: bench}\n"
                       "spec:\n  containers:\n  - name: app\n    image: " S_IMAGE "\n"
                       "    command: [sleep, '3600']\n";
    ProtobufCMessage *pod = NULL;
    zube_codec_error_t codec_error;
    int rc = 1;
    uint8_t *packed = NULL;
    size_t size = 0;
    if (!bench.sandboxes || !bench.pod_ms || !bench.bare_ms || !bench.phase_ms[0]
        || !bench.phase_ms[1] || !bench.phase_ms[2]
        || zube_codec_decode (yaml, strlen (yaml), &zube__pod__descriptor, &pod, &codec_error)
               != 0)
        goto done;
    size = protobuf_c_message_get_packed_size (pod);
    packed = malloc (size);
    if (!packed)
        goto done;
    protobuf_c_message_pack (pod, packed);
    if (mkdir (bench.state, 0700) != 0 || !s_import_image (&bench) || !s_open (&bench))
        goto done;
    char bundle[600] = "";
    double started = s_now_ms ();
    double pods_ms = 0;
    for (long i = 0; i < bench.pods; i++) {
        double ms = s_pod (&bench, i, packed, size);
        if (ms < 0)
            goto done;
        bench.pod_ms[i] = ms;
        pods_ms += ms;
        if (i == 0 && !s_bare_bundle (&bench, bundle, sizeof bundle))
            goto done;
        ms = s_bare_run (&bench, bundle, i);
        if (ms < 0)
            goto done;
        bench.bare_ms[i] = ms;
    }
    double wall_ms = s_now_ms () - started;
    qsort (bench.pod_ms, (size_t) bench.pods, sizeof (double), s_compare_double);
    qsort (bench.bare_ms, (size_t) bench.pods, sizeof (double), s_compare_double);
    double pod_p50 = s_percentile (bench.pod_ms, bench.pods, 0.5);
    double pod_p99 = s_percentile (bench.pod_ms, bench.pods, 0.99);
    double bare_p50 = s_percentile (bench.bare_ms, bench.pods, 0.5);
    double bare_p99 = s_percentile (bench.bare_ms, bench.pods, 0.99);
    double phase_p50[3];
    for (int p = 0; p < 3; p++) {
        qsort (bench.phase_ms[p], (size_t) bench.pods, sizeof (double), s_compare_double);
        phase_p50[p] = s_percentile (bench.phase_ms[p], bench.pods, 0.5);
    }
    double pods_per_s = pods_ms > 0 ? (double) bench.pods * 1000.0 / pods_ms : 0;
    if (bench.json)
        printf ("{\"mode\":\"runtime\",\"pods\":%ld,\"pod_p50_ms\":%.1f,\"pod_p99_ms\":%.1f,"
                "\"runc_p50_ms\":%.1f,\"runc_p99_ms\":%.1f,\"ratio_p50\":%.2f,"
                "\"pods_per_s\":%.1f,\"wall_s\":%.1f,\"sandbox_p50_ms\":%.1f,"
                "\"create_p50_ms\":%.1f,\"start_p50_ms\":%.1f}\n",
                bench.pods, pod_p50, pod_p99, bare_p50, bare_p99,
                bare_p50 > 0 ? pod_p50 / bare_p50 : 0, pods_per_s, wall_ms / 1000, phase_p50[0],
                phase_p50[1], phase_p50[2]);
    else {
        printf ("zube-bench runtime: %ld pods (busybox sleep, CNI bridge), each followed by a "
                "bare runc run --detach of the same bundle\n",
                bench.pods);
        printf ("  oci pod start (sandbox + network + create + start): p50 %.1f ms  p99 %.1f ms\n",
                pod_p50, pod_p99);
        printf ("    p50 of its phases: sandbox+CNI %.1f ms, create (rootfs, config) %.1f ms, "
                "start (shim, runc run) %.1f ms\n",
                phase_p50[0], phase_p50[1], phase_p50[2]);
        printf ("  bare runc run --detach:                             p50 %.1f ms  p99 %.1f ms\n",
                bare_p50, bare_p99);
        printf ("  ratio p50: %.2fx   pods started per second (one at a time): %.1f\n",
                bare_p50 > 0 ? pod_p50 / bare_p50 : 0, pods_per_s);
    }
    rc = 0;
done:
    if (rc != 0 && pod == NULL && bench.sandboxes)
        zube_cli_error ("cannot build the bench pod");
    s_cleanup (&bench);
    if (pod)
        protobuf_c_message_free_unpacked (pod, NULL);
    free (packed);
    free (bench.sandboxes);
    free (bench.pod_ms);
    free (bench.bare_ms);
    for (int p = 0; p < 3; p++)
        free (bench.phase_ms[p]);
    return rc;
}
