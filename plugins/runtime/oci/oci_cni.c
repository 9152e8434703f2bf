/*  oci_cni - pod networking through the standard CNI plugins.

    What libcni does for a conflist, for the plugins zube uses:
    each plugin of the list is run with CNI_COMMAND (ADD or DEL),
    CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH in its environment
    and its own network config on stdin (the list's name and cniVersion,
    the previous plugin's result as prevResult, runtimeConfig for the
    capabilities it declares), and answers a result (or an error) as JSON
    on stdout. bridge makes a veth pair from the pod's eth0 to the host
    bridge, with an address from host-local (whose allocations are files
    under dataDir); portmap publishes hostPorts and runs only for pods
    that have some. The loopback plugin's work (lo up) is done when the
    namespace is made (oci_netns_create): one program less per pod. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "oci.h"

#define S_CNI_VERSION "1.0.0"
#define S_NETWORK "zube"
#define S_TIMEOUT_MS 30000

static void
s_bridge_config (const oci_cni_t *cni, oci_buf_t *buf)
{
    oci_buf_printf (buf, "{\"type\":\"bridge\",\"bridge\":");
    oci_buf_json (buf, cni->bridge);
    oci_buf_printf (buf, ",\"isGateway\":true,\"ipMasq\":false,\"hairpinMode\":true,"
                         "\"ipam\":{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":");
    oci_buf_json (buf, cni->subnet);
    oci_buf_printf (buf, "}]],\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dataDir\":");
    oci_buf_json (buf, cni->data_dir);
    oci_buf_printf (buf, "}}");
}

int
oci_cni_write_conflist (const oci_cni_t *cni, char *error, size_t error_size)
{
    oci_buf_t buf = {0};
    oci_buf_printf (&buf, "{\"cniVersion\":\"" S_CNI_VERSION "\",\"name\":\"" S_NETWORK
                          "\",\"plugins\":[");
    s_bridge_config (cni, &buf);
    oci_buf_printf (&buf, ",{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true}}]}\n");
    int rc = buf.failed ? -1 : oci_write_file (cni->conflist, buf.data, buf.used, 0644);
    if (rc != 0)
        snprintf (error, error_size, "cannot write %s: %s", cni->conflist,
                  buf.failed ? "out of memory" : strerror (errno));
    oci_buf_free (&buf);
    return rc;
}

//  The "msg" (and "details") of a CNI error answer, else the raw text.
static void
s_error_text (const char *plugin, const char *command, const oci_buf_t *out,
              const oci_buf_t *err, char *error, size_t error_size)
{
    const char *text = out->data && *out->data ? out->data : err->data ? err->data : "";
    const char *msg = strstr (text, "\"msg\":\"");
    if (msg) {
        msg += 7;
        const char *end = msg;
        while (*end && !(*end == '"' && end[-1] != '\\'))
            end++;
        snprintf (error, error_size, "CNI %s %s: %.*s", plugin, command, (int) (end - msg), msg);
    } else
        snprintf (error, error_size, "CNI %s %s: %.400s", plugin, command,
                  *text ? text : "failed with no output");
    size_t length = strlen (error);
    while (length && (error[length - 1] == '\n' || error[length - 1] == ' '))
        error[--length] = 0;
}

//  Runs one plugin; its result into result (may be NULL).
static int
s_invoke (const oci_cni_t *cni, const char *plugin, const char *command,
          const char *container_id, const char *netns, const char *ifname, const char *config,
          oci_buf_t *result, char *error, size_t error_size)
{
    char path[4200], env_command[64], env_id[200], env_netns[4200], env_ifname[64],
        env_path[4200];
    snprintf (path, sizeof path, "%s/%s", cni->cni_path, plugin);
    snprintf (env_command, sizeof env_command, "CNI_COMMAND=%s", command);
    snprintf (env_id, sizeof env_id, "CNI_CONTAINERID=%s", container_id);
    snprintf (env_netns, sizeof env_netns, "CNI_NETNS=%s", netns);
    snprintf (env_ifname, sizeof env_ifname, "CNI_IFNAME=%s", ifname);
    snprintf (env_path, sizeof env_path, "CNI_PATH=%s", cni->cni_path);
    const char *env[] = {env_command,
                         env_id,
                         env_netns,
                         env_ifname,
                         env_path,
                         "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                         NULL};
    const char *argv[] = {path, NULL};
    oci_buf_t out = {0}, err = {0};
    bool timed_out = false;
    int status = oci_run (argv, env, config, strlen (config), &out, &err, S_TIMEOUT_MS,
                          &timed_out);
    int rc = 0;
    if (status < 0) {
        snprintf (error, error_size, "CNI %s %s: cannot run %s: %s", plugin, command, path,
                  strerror (errno));
        rc = -1;
    } else if (timed_out) {
        snprintf (error, error_size, "CNI %s %s: no answer within %d s", plugin, command,
                  S_TIMEOUT_MS / 1000);
        rc = -1;
    } else if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        s_error_text (plugin, command, &out, &err, error, error_size);
        rc = -1;
    } else if (result && out.data)
        oci_buf_append (result, out.data, out.used);
    oci_buf_free (&out);
    oci_buf_free (&err);
    return rc;
}

//  The pod's hostPorts as portmap's runtimeConfig.portMappings ("" when none).
static void
s_port_mappings (const Zube__Pod *pod, oci_buf_t *buf)
{
    const Zube__PodSpec *spec = pod ? pod->spec : NULL;
    bool first = true;
    for (size_t c = 0; spec && c < spec->n_containers; c++) {
        const Zube__Container *container = spec->containers[c];
        for (size_t p = 0; p < container->n_ports; p++) {
            const Zube__ContainerPort *port = container->ports[p];
            if (!port->has_host_port || port->host_port <= 0)
                continue;
            const char *protocol = port->protocol && *port->protocol ? port->protocol : "TCP";
            oci_buf_printf (buf, "%s{\"hostPort\":%d,\"containerPort\":%d,\"protocol\":\"%s\"",
                            first ? "" : ",", port->host_port, port->container_port,
                            strcasecmp (protocol, "UDP") == 0 ? "udp"
                            : strcasecmp (protocol, "SCTP") == 0 ? "sctp"
                                                                  : "tcp");
            if (port->host_ip && *port->host_ip) {
                oci_buf_printf (buf, ",\"hostIP\":");
                oci_buf_json (buf, port->host_ip);
            }
            oci_buf_printf (buf, "}");
            first = false;
        }
    }
}

//  A plugin's config: name, version, the plugin's own fields, prevResult.
static void
s_plugin_config (oci_buf_t *buf, const char *type_fields, const char *prev_result)
{
    oci_buf_printf (buf, "{\"cniVersion\":\"" S_CNI_VERSION "\",\"name\":\"" S_NETWORK "\",%s",
                    type_fields);
    if (prev_result && *prev_result)
        oci_buf_printf (buf, ",\"prevResult\":%s", prev_result);
    oci_buf_printf (buf, "}");
}

//  The portmap plugin's config for mappings (the items of a JSON list),
//  after prev_result (NULL: none).
static void
s_portmap_config (oci_buf_t *buf, const char *mappings, const char *prev_result)
{
    oci_buf_t fields = {0};
    oci_buf_printf (&fields,
                    "\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true},"
                    "\"runtimeConfig\":{\"portMappings\":[%s]}",
                    mappings);
    s_plugin_config (buf, fields.data ? fields.data : "", prev_result);
    oci_buf_free (&fields);
}

//  The first IPv4 "address" of a result's ips, without its prefix length.
static int
s_result_ip (const char *result, char *ip, size_t ip_size)
{
    const char *ips = result ? strstr (result, "\"ips\"") : NULL;
    const char *address = ips ? strstr (ips, "\"address\"") : NULL;
    if (!address)
        return -1;
    address = strchr (address + 9, '"');
    if (!address)
        return -1;
    address++;
    size_t length = strcspn (address, "/\"");
    if (length == 0 || length >= ip_size)
        return -1;
    memcpy (ip, address, length);
    ip[length] = 0;
    return 0;
}

int
oci_cni_add (const oci_cni_t *cni, const char *container_id, const char *netns,
             const Zube__Pod *pod, char *ip, size_t ip_size, char *error, size_t error_size)
{
    oci_buf_t config = {0}, bridge = {0}, bridge_result = {0}, mappings = {0};
    int rc = -1;
    s_bridge_config (cni, &bridge);
    //  The bridge's fields without the outer braces
    if (bridge.failed)
        goto done;
    bridge.data[bridge.used - 1] = 0;
    s_plugin_config (&config, bridge.data + 1, NULL);
    if (config.failed
        || s_invoke (cni, "bridge", "ADD", container_id, netns, "eth0", config.data,
                     &bridge_result, error, error_size)
               != 0)
        goto done;
    if (s_result_ip (bridge_result.data, ip, ip_size) != 0) {
        snprintf (error, error_size, "CNI bridge ADD: no IP address in its result: %.300s",
                  bridge_result.data ? bridge_result.data : "");
        goto done;
    }
    s_port_mappings (pod, &mappings);
    if (mappings.used) {
        oci_buf_free (&config);
        s_portmap_config (&config, mappings.data, bridge_result.data);
        if (config.failed
            || s_invoke (cni, "portmap", "ADD", container_id, netns, "eth0", config.data, NULL,
                         error, error_size)
                   != 0)
            goto done;
    }
    rc = 0;
done:
    if (rc != 0 && !*error)
        snprintf (error, error_size, "CNI ADD: out of memory");
    oci_buf_free (&config);
    oci_buf_free (&bridge);
    oci_buf_free (&bridge_result);
    oci_buf_free (&mappings);
    return rc;
}

int
oci_cni_del (const oci_cni_t *cni, const char *container_id, const char *netns,
             const Zube__Pod *pod, char *error, size_t error_size)
{
    int rc = 0;
    char why[1024] = "";
    oci_buf_t config = {0}, mappings = {0}, bridge = {0};
    s_port_mappings (pod, &mappings);
    if (mappings.used) {
        s_portmap_config (&config, mappings.data, NULL);
        if (s_invoke (cni, "portmap", "DEL", container_id, netns, "eth0",
                      config.data ? config.data : "{}", NULL, why, sizeof why)
            != 0) {
            snprintf (error, error_size, "%s", why);
            rc = -1;
        }
        oci_buf_free (&config);
    }
    s_bridge_config (cni, &bridge);
    if (!bridge.failed) {
        bridge.data[bridge.used - 1] = 0;
        s_plugin_config (&config, bridge.data + 1, NULL);
    }
    if (s_invoke (cni, "bridge", "DEL", container_id, netns, "eth0",
                  config.data ? config.data : "{}", NULL, why, sizeof why)
        != 0) {
        snprintf (error, error_size, "%s", why);
        rc = -1;
    }
    oci_buf_free (&config);
    oci_buf_free (&mappings);
    oci_buf_free (&bridge);
    return rc;
}
