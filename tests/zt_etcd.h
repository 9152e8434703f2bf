/*  zt_etcd - a real etcd for integration tests (the etcd store plugin's
    conformance fixture and its own tests).

    One member on two free loopback ports (client, peer) in a temporary
    directory; restartable on the same ports and data (to kill it mid-
    stream and bring it back); reached without a client library through
    plain HTTP/1.0 to its v3 JSON gateway. */
#ifndef ZT_ETCD_H_INCLUDED
#define ZT_ETCD_H_INCLUDED

#include "zube_testproc.h"

typedef struct {
    pid_t pid;
    //  0 before zt_etcd_start: free ports are taken (and kept on restart).
    int port;
    int peer_port;
    //  "" before zt_etcd_start: a new temporary directory (kept on restart).
    char dir[256];
    char url[64];
} zt_etcd_t;

//  POSTs body to path of the etcd on 127.0.0.1:port and answers the whole
//  response, headers included (malloc'd), or NULL when it cannot be reached.
static inline char *
zt_etcd_http (int port, const char *path, const char *body)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons (port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    struct timeval timeout = {.tv_sec = 5};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect (fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close (fd);
        return NULL;
    }
    char *request = NULL;
    int len = asprintf (
        &request,
        "POST %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: %zu\r\n\r\n%s",
        path, strlen (body), body);
    bool sent = len > 0 && send (fd, request, (size_t)len, MSG_NOSIGNAL) == len;
    free (request);
    size_t cap = 4096, used = 0;
    char *reply = malloc (cap);
    ssize_t got;
    while (sent && (got = recv (fd, reply + used, cap - used - 1, 0)) > 0) {
        used += (size_t)got;
        if (cap - used < 2)
            reply = realloc (reply, cap *= 2);
    }
    reply[used] = 0;
    close (fd);
    if (!sent || used == 0) {
        free (reply);
        return NULL;
    }
    return reply;
}

//  Starts (or restarts) etcd and waits until it answers reads. False when
//  etcd is not installed or does not come up.
static inline bool
zt_etcd_ready (void *arg)
{
    zt_etcd_t *etcd = (zt_etcd_t *) arg;
    char *reply = zt_etcd_http (etcd->port, "/v3/kv/range", "{\"key\":\"AA==\"}");
    bool ready = reply && strstr (reply, " 200 ") && strstr (reply, "\"revision\"");
    free (reply);
    return ready;
}

static inline bool
zt_etcd_start (zt_etcd_t *etcd)
{
    const char *program = zt_which ("etcd");
    if (!program)
        return false;
    char path[1024];
    snprintf (path, sizeof path, "%s", program);
    if (!etcd->dir[0]) {
        char *dir = zt_tempdir ("etcd");
        if (!dir)
            return false;
        snprintf (etcd->dir, sizeof etcd->dir, "%s", dir);
        free (dir);
    }
    if (!etcd->port) {
        int base = zt_free_port (2);
        if (base <= 0)
            return false;
        etcd->port = base;
        etcd->peer_port = base + 1;
    }
    snprintf (etcd->url, sizeof etcd->url, "etcd://127.0.0.1:%d", etcd->port);
    char data[300], log[300], client_url[64], peer_url[64], cluster[80];
    snprintf (data, sizeof data, "%s/data", etcd->dir);
    snprintf (log, sizeof log, "%s/etcd.log", etcd->dir);
    snprintf (client_url, sizeof client_url, "http://127.0.0.1:%d", etcd->port);
    snprintf (peer_url, sizeof peer_url, "http://127.0.0.1:%d", etcd->peer_port);
    snprintf (cluster, sizeof cluster, "t=%s", peer_url);
    char *argv[] = {path,       "--name",
                    "t",        "--data-dir",
                    data,       "--listen-client-urls",
                    client_url, "--advertise-client-urls",
                    client_url, "--listen-peer-urls",
                    peer_url,   "--initial-advertise-peer-urls",
                    peer_url,   "--initial-cluster",
                    cluster,    NULL};
    etcd->pid = zt_spawn (argv, log);
    if (etcd->pid <= 0)
        return false;
    return zt_wait_ready (&etcd->pid, 15000, zt_etcd_ready, etcd);
}

//  Stops etcd with sig (SIGTERM: clean; SIGKILL: a crash), keeping its
//  directory and ports for zt_etcd_start.
static inline void
zt_etcd_stop (zt_etcd_t *etcd, int sig)
{
    if (etcd->pid > 0)
        zt_stop (etcd->pid, sig, 10000);
    etcd->pid = 0;
}

//  Stops etcd and removes its directory.
static inline void
zt_etcd_destroy (zt_etcd_t *etcd)
{
    zt_etcd_stop (etcd, SIGTERM);
    if (etcd->dir[0])
        zt_rmtree (etcd->dir);
    *etcd = (zt_etcd_t){0};
}

#endif
