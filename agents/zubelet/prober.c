/*  prober - httpGet and tcpSocket probes the zubelet runs itself.

    For a runtime that does not answer a probe (its probe op says
    UNAVAILABLE: `sim` with sim.zube.io/host-probes, a runtime without a
    network of its own), pod.c hands the probe here. Each probe is one
    non-blocking socket: connect, for httpGet send one GET and read the
    status line, then close. Nothing waits: the loop calls
    zl_prober_run after every bus poll (and polls the bus in short
    slices while probes are in flight), which advances every socket that
    is ready and fails those past their timeoutSeconds, so thousands of
    nodes are never stalled by a slow or silent endpoint. The outcome
    goes back to pod.c (zl_pod_probe_done), which applies the probe's
    thresholds as for a runtime's answer.

    Hosts are numeric addresses (the probe's host, else the pod's IP):
    no name is resolved, since a resolver call would block. HTTPS is not
    supported. */
#define _GNU_SOURCE
#include "zubelet.h"
#include "zube/log.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef enum { S_CONNECTING, S_SENDING, S_RECEIVING } s_state_t;

struct zl_hprobe_t {
    int fd;
    s_state_t state;
    int64_t deadline;           //  monotonic ms
    zl_pod_t *pod;              //  a reference (refs)
    char container_id[ZUBE_RUNTIME_ID_MAX];
    int kind;                   //  ZL_PROBE_*
    char target[400];           //  for messages: "dial tcp 1.2.3.4:80" / the URL
    bool http;
    char *request;
    size_t request_size;
    size_t sent;
    char reply[512];
    size_t received;
};

static void
s_finish (zubelet_t *self, size_t index, bool success, const char *message)
{
    zl_hprobe_t *probe = self->hprobes[index];
    self->hprobes[index] = self->hprobes[--self->hprobe_count];
    close (probe->fd);
    zl_pod_probe_done (self, probe->pod, probe->container_id, probe->kind, success, message);
    free (probe->request);
    free (probe);
}

static void
s_fail_errno (zubelet_t *self, size_t index, int error)
{
    zl_hprobe_t *probe = self->hprobes[index];
    char message[600];
    if (probe->http)
        snprintf (message, sizeof message, "Get \"%s\": dial tcp: connect: %s", probe->target,
                  strerror (error));
    else
        snprintf (message, sizeof message, "dial tcp %s: connect: %s", probe->target,
                  strerror (error));
    s_finish (self, index, false, message);
}

//  The port of the probe: a number, or the name of a container port
static int
s_port (const Zube__Container *spec, const Zube__IntOrString *port)
{
    if (!port)
        return -1;
    if (port->str_val && *port->str_val) {
        for (size_t i = 0; spec && i < spec->n_ports; i++)
            if (spec->ports[i]->name && streq (spec->ports[i]->name, port->str_val))
                return spec->ports[i]->container_port;
        char *end = NULL;
        long number = strtol (port->str_val, &end, 10);
        return end && !*end && number > 0 && number < 65536 ? (int)number : -1;
    }
    return port->has_int_val && port->int_val > 0 && port->int_val < 65536 ? port->int_val : -1;
}

static char *
s_http_request (const Zube__HTTPGetAction *get, const char *host, int port, size_t *size_p)
{
    size_t size = 512 + (get->path ? strlen (get->path) : 0);
    bool has_host = false;
    for (size_t i = 0; i < get->n_http_headers; i++) {
        const Zube__HTTPHeader *header = get->http_headers[i];
        size += (header->name ? strlen (header->name) : 0) +
                (header->value ? strlen (header->value) : 0) + 4;
        has_host = has_host || (header->name && strcasecmp (header->name, "Host") == 0);
    }
    char *request = malloc (size);
    if (!request)
        return NULL;
    const char *path = get->path && *get->path ? get->path : "/";
    size_t used = (size_t)snprintf (request, size,
                                    "GET %s%s HTTP/1.1\r\nUser-Agent: kube-probe/1.29\r\n"
                                    "Accept: */*\r\nConnection: close\r\n",
                                    path[0] == '/' ? "" : "/", path);
    if (!has_host)
        used += (size_t)snprintf (request + used, size - used, "Host: %s:%d\r\n", host, port);
    for (size_t i = 0; i < get->n_http_headers; i++) {
        const Zube__HTTPHeader *header = get->http_headers[i];
        if (header->name && *header->name)
            used += (size_t)snprintf (request + used, size - used, "%s: %s\r\n", header->name,
                                      header->value ? header->value : "");
    }
    used += (size_t)snprintf (request + used, size - used, "\r\n");
    *size_p = used;
    return request;
}

int
zl_prober_start (zubelet_t *self, zl_pod_t *p, const zl_container_t *c, int kind,
                 const Zube__Probe *spec, int64_t timeout_ms, char *message,
                 size_t message_size)
{
    const Zube__HTTPGetAction *get = spec->http_get;
    const Zube__TCPSocketAction *tcp = spec->tcp_socket;
    if (!get && !tcp) {
        snprintf (message, message_size, "the runtime %s does not run %s probes",
                  zube_runtime_name (self->runtime), spec->exec ? "exec" : "grpc");
        return -1;
    }
    if (get && get->scheme && strcasecmp (get->scheme, "HTTPS") == 0) {
        snprintf (message, message_size, "HTTPS probes are not supported by the zubelet");
        return -1;
    }
    const Zube__Container *container = NULL;
    Zube__PodSpec *pod_spec = p->pod->spec;
    if (pod_spec && c->init && c->index < pod_spec->n_init_containers)
        container = pod_spec->init_containers[c->index];
    else if (pod_spec && !c->init && c->index < pod_spec->n_containers)
        container = pod_spec->containers[c->index];
    int port = s_port (container, get ? get->port : tcp->port);
    const char *host = get ? get->host : tcp->host;
    if (!host || !*host)
        host = p->ip;
    //  A hostNetwork pod has the node's address (as its status says)
    char node_ip[64];
    if (!*host && pod_spec && pod_spec->host_network) {
        zl_node_address (self, p->node, node_ip, sizeof node_ip);
        host = node_ip;
    }
    if (port < 0) {
        snprintf (message, message_size, "probe port is not a port number or a named port of "
                                         "the container");
        return -1;
    }
    struct sockaddr_storage address = {0};
    socklen_t address_size;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&address;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&address;
    if (inet_pton (AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons ((uint16_t)port);
        address_size = sizeof *in4;
    } else if (inet_pton (AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons ((uint16_t)port);
        address_size = sizeof *in6;
    } else {
        snprintf (message, message_size,
                  "probe host \"%s\" is not an IP address (the zubelet resolves no names)",
                  host);
        return -1;
    }
    if (self->hprobe_count == self->hprobe_capacity) {
        size_t capacity = self->hprobe_capacity ? self->hprobe_capacity * 2 : 64;
        zl_hprobe_t **grown = realloc (self->hprobes, capacity * sizeof *grown);
        if (!grown) {
            snprintf (message, message_size, "out of memory");
            return -1;
        }
        self->hprobes = grown;
        self->hprobe_capacity = capacity;
    }
    zl_hprobe_t *probe = calloc (1, sizeof *probe);
    if (!probe) {
        snprintf (message, message_size, "out of memory");
        return -1;
    }
    probe->fd = socket (address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe->fd < 0) {
        snprintf (message, message_size, "cannot open a socket: %s", strerror (errno));
        free (probe);
        return -1;
    }
    probe->http = get != NULL;
    bool v6 = address.ss_family == AF_INET6;
    if (get) {
        probe->request = s_http_request (get, host, port, &probe->request_size);
        snprintf (probe->target, sizeof probe->target, "http://%s%s%s:%d%s%s", v6 ? "[" : "",
                  host, v6 ? "]" : "", port, get->path && get->path[0] == '/' ? "" : "/",
                  get->path ? get->path : "");
    } else
        snprintf (probe->target, sizeof probe->target, "%s%s%s:%d", v6 ? "[" : "", host,
                  v6 ? "]" : "", port);
    probe->deadline = zl_now_mono () + timeout_ms;
    probe->pod = p;
    p->refs++;
    snprintf (probe->container_id, sizeof probe->container_id, "%s", c->id);
    probe->kind = kind;
    probe->state = S_CONNECTING;
    self->hprobes[self->hprobe_count++] = probe;
    if (connect (probe->fd, (struct sockaddr *)&address, address_size) != 0 &&
        errno != EINPROGRESS)
        s_fail_errno (self, self->hprobe_count - 1, errno);
    return 0;
}

//  One step of probe index when its socket is ready; answers whether it
//  finished (the slot then holds another probe).
static bool
s_step (zubelet_t *self, size_t index, short revents)
{
    zl_hprobe_t *probe = self->hprobes[index];
    if (probe->state == S_CONNECTING) {
        int error = 0;
        socklen_t length = sizeof error;
        getsockopt (probe->fd, SOL_SOCKET, SO_ERROR, &error, &length);
        if (error || (revents & (POLLERR | POLLHUP) && !(revents & POLLOUT))) {
            s_fail_errno (self, index, error ? error : ECONNREFUSED);
            return true;
        }
        if (!probe->http) {
            s_finish (self, index, true, "");
            return true;
        }
        probe->state = S_SENDING;
    }
    if (probe->state == S_SENDING) {
        ssize_t n = send (probe->fd, probe->request + probe->sent,
                          probe->request_size - probe->sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            s_fail_errno (self, index, errno);
            return true;
        }
        if (n > 0)
            probe->sent += (size_t)n;
        if (probe->sent == probe->request_size)
            probe->state = S_RECEIVING;
        return false;
    }
    ssize_t n = recv (probe->fd, probe->reply + probe->received,
                      sizeof probe->reply - 1 - probe->received, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (n > 0) {
        probe->received += (size_t)n;
        probe->reply[probe->received] = 0;
    }
    char *line_end = strstr (probe->reply, "\r\n");
    if (!line_end && n > 0 && probe->received < sizeof probe->reply - 1)
        return false;
    //  The status line "HTTP/1.1 200 OK", or what came instead
    int code = 0;
    if (strncmp (probe->reply, "HTTP/", 5) == 0) {
        const char *space = strchr (probe->reply, ' ');
        code = space ? atoi (space + 1) : 0;
    }
    char message[600];
    if (code >= 200 && code < 400)
        s_finish (self, index, true, "");
    else if (code) {
        snprintf (message, sizeof message, "HTTP probe failed with statuscode: %d", code);
        s_finish (self, index, false, message);
    } else {
        snprintf (message, sizeof message, "Get \"%s\": malformed HTTP response", probe->target);
        s_finish (self, index, false, message);
    }
    return true;
}

bool
zl_prober_active (zubelet_t *self)
{
    return self->hprobe_count > 0;
}

void
zl_prober_run (zubelet_t *self)
{
    size_t count = self->hprobe_count;
    if (!count)
        return;
    struct pollfd *fds = calloc (count, sizeof *fds);
    zl_hprobe_t **probes = calloc (count, sizeof *probes);
    if (!fds || !probes) {
        free (fds);
        free (probes);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        probes[i] = self->hprobes[i];
        fds[i].fd = probes[i]->fd;
        fds[i].events = probes[i]->state == S_RECEIVING ? POLLIN : POLLOUT;
    }
    int ready = poll (fds, (nfds_t)count, 0);
    int64_t now = zl_now_mono ();
    //  Finishing a probe moves another into its slot: find each by pointer
    for (size_t i = 0; i < count; i++) {
        size_t index = 0;
        while (index < self->hprobe_count && self->hprobes[index] != probes[i])
            index++;
        if (index == self->hprobe_count)
            continue;
        if (ready > 0 && fds[i].revents && s_step (self, index, fds[i].revents))
            continue;
        if (now >= probes[i]->deadline) {
            char message[600];
            if (probes[i]->http)
                snprintf (message, sizeof message,
                          "Get \"%s\": context deadline exceeded (Client.Timeout exceeded "
                          "while awaiting headers)",
                          probes[i]->target);
            else
                snprintf (message, sizeof message, "dial tcp %s: i/o timeout",
                          probes[i]->target);
            s_finish (self, index, false, message);
        }
    }
    free (fds);
    free (probes);
}

void
zl_prober_destroy (zubelet_t *self)
{
    while (self->hprobe_count) {
        zl_hprobe_t *probe = self->hprobes[--self->hprobe_count];
        close (probe->fd);
        probe->pod->refs--;
        free (probe->request);
        free (probe);
    }
    free (self->hprobes);
    self->hprobes = NULL;
}
