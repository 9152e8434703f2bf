/*  zube_bus_events - the event side of zube_bus: publish and subscribe.

    Events go through the broker's XSUB/XPUB pair, whose endpoints come from
    the broker's bus/info, asked on first use and again after every
    reconnect or broker restart (the sockets are then re-opened, with every
    subscription). Events published before the PUB socket exists wait in a
    bounded queue. */
#include "zube_bus_private.h"

#include <stdio.h>

//  --------------------------------------------------------------------------
//  Events

//  A broker bound to a wildcard address reports it as such ("tcp://*:7401");
//  connect to the host we reach its request endpoint on instead.
static char *
s_endpoint_resolve (zube_bus_t *self, const char *endpoint)
{
    if (!endpoint || !*endpoint)
        return NULL;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return strdup (endpoint);
    const char *host = endpoint + 6;
    const char *port = strrchr (host, ':');
    if (!port)
        return strdup (endpoint);
    size_t host_len = (size_t)(port - host);
    bool wildcard = (host_len == 1 && host[0] == '*') ||
                    (host_len == 7 && strncmp (host, "0.0.0.0", 7) == 0) ||
                    (host_len == 4 && strncmp (host, "[::]", 4) == 0);
    if (!wildcard)
        return strdup (endpoint);
    const char *our_host = "127.0.0.1";
    size_t our_len = strlen (our_host);
    if (strncmp (self->endpoint, "tcp://", 6) == 0) {
        const char *start = self->endpoint + 6;
        const char *colon = strrchr (start, ':');
        if (colon && colon > start) {
            our_host = start;
            our_len = (size_t)(colon - start);
        }
    }
    char *resolved = NULL;
    if (asprintf (&resolved, "tcp://%.*s%s", (int)our_len, our_host, port) < 0)
        return NULL;
    return resolved;
}

static void
s_event_destroy (zube_bus_event_t **self_p)
{
    zube_bus_event_t *self = *self_p;
    if (!self)
        return;
    free (self->topic);
    free (self->header);
    free (self->payload);
    free (self);
    *self_p = NULL;
}

void
zube_bus__event_destructor (void **item_p)
{
    s_event_destroy ((zube_bus_event_t **)item_p);
}

static int
s_open_pub (zube_bus_t *self)
{
    self->pub = zube_bus__socket_new (self, ZMQ_PUB, self->publish_endpoint);
    if (!self->pub)
        return -1;
    self->pub_wanted = true;
    zube_bus_event_t *event;
    while ((event = zlistx_detach (self->event_queue, NULL))) {
        zube_bus__send_raw (self->pub, event->topic, event->header, event->header_size,
                            event->payload, event->payload_size, true);
        s_event_destroy (&event);
    }
    return 0;
}

static int
s_open_sub (zube_bus_t *self)
{
    self->sub = zube_bus__socket_new (self, ZMQ_SUB, self->subscribe_endpoint);
    if (!self->sub)
        return -1;
    for (void *item = zhashx_first (self->subscriptions); item;
         item = zhashx_next (self->subscriptions))
        zsock_set_subscribe (self->sub,
                             (const char *)zhashx_cursor (self->subscriptions));
    return 0;
}

//  bus/info answered: (re)open the event sockets on the endpoints it names.
static void
s_info_reply (zube_bus_t *self, zube_bus_reply_t *reply)
{
    self->info_correlation = 0;
    Zube__BusInfoReply *info = NULL;
    if (reply->status == ZUBE_OK)
        info = zube__bus_info_reply__unpack (NULL, reply->payload_size,
                                             reply->payload ? reply->payload
                                                            : (const uint8_t *)"");
    char *publish = info ? s_endpoint_resolve (self, info->publish_endpoint) : NULL;
    char *subscribe = info ? s_endpoint_resolve (self, info->subscribe_endpoint) : NULL;
    if (info)
        zube__bus_info_reply__free_unpacked (info, NULL);
    if (!publish || !subscribe) {
        zube_log_warn (
            "msg=\"no event endpoints from bus/info, will ask again\" reason=\"%s\"",
            reply->status == ZUBE_OK ? "incomplete reply" : reply->error);
        free (publish);
        free (subscribe);
        self->info_retry_at = s_now () + ZUBE_BUS_INFO_RETRY_MS;
        zube_bus_reply_destroy (&reply);
        return;
    }
    zube_bus_reply_destroy (&reply);
    free (self->publish_endpoint);
    free (self->subscribe_endpoint);
    self->publish_endpoint = publish;
    self->subscribe_endpoint = subscribe;
    zsock_destroy (&self->pub);
    zsock_destroy (&self->sub);
    if (zhashx_size (self->subscriptions) && s_open_sub (self) != 0)
        self->info_retry_at = s_now () + ZUBE_BUS_INFO_RETRY_MS;
    if ((self->pub_wanted || zlistx_size (self->event_queue)) && s_open_pub (self) != 0)
        self->info_retry_at = s_now () + ZUBE_BUS_INFO_RETRY_MS;
    zube_log_debug ("msg=\"event sockets open\" publish=%s subscribe=%s",
                    self->publish_endpoint, self->subscribe_endpoint);
}

void
zube_bus__want_info (zube_bus_t *self)
{
    if (self->info_correlation)
        return;
    zube_status_t status;
    char why[256];
    self->info_retry_at = 0;
    self->info_correlation =
        zube_bus__call_start (self, "bus", "info", NULL, 0, ZUBE_BUS_INFO_TIMEOUT_MS,
                              NULL, NULL, NULL, s_info_reply, &status, why, sizeof why);
    if (!self->info_correlation)
        self->info_retry_at = s_now () + ZUBE_BUS_INFO_RETRY_MS;
}

int
zube_bus_publish (zube_bus_t *self, const char *topic, const void *payload,
                  size_t payload_size)
{
    assert (self);
    if (!topic || !*topic || strlen (topic) > 1024)
        return -1;
    if (payload_size > self->max_msg_size) {
        zube_log_warn ("msg=\"event too large\" topic=%s size=%zu limit=%zu", topic,
                       payload_size, self->max_msg_size);
        return -1;
    }
    uint64_t *sequence = zhashx_lookup (self->topic_sequences, topic);
    if (!sequence) {
        sequence = calloc (1, sizeof *sequence);
        if (!sequence)
            return -1;
        zhashx_insert (self->topic_sequences, topic, sequence);
    }
    Zube__BusHeader header;
    zube_bus__header_init (&header, ZUBE__BUS_KIND__BUS_EVENT);
    header.topic = (char *)topic;
    header.has_event_sequence = 1;
    header.event_sequence = ++*sequence;

    if (!self->pub && self->publish_endpoint)
        s_open_pub (self);
    if (self->pub)
        return zube_bus__send_frames (self->pub, topic, &header, payload, payload_size,
                                      true);

    //  No endpoint yet: keep the event until bus/info answers.
    zube_bus_event_t *event = calloc (1, sizeof *event);
    if (!event)
        return -1;
    event->topic = strdup (topic);
    event->header = zube_bus__header_pack (&header, &event->header_size);
    event->payload = s_memdup (payload, payload_size);
    event->payload_size = event->payload ? payload_size : 0;
    if (!event->topic || !event->header || (payload_size && !event->payload)) {
        s_event_destroy (&event);
        return -1;
    }
    zlistx_add_end (self->event_queue, event);
    if (zlistx_size (self->event_queue) > ZUBE_BUS_MAX_QUEUED_EVENTS) {
        zube_bus_event_t *oldest = zlistx_detach (self->event_queue, NULL);
        s_event_destroy (&oldest);
        if (self->events_dropped++ == 0)
            zube_log_warn ("msg=\"event queue full, dropping oldest events\" limit=%d",
                           ZUBE_BUS_MAX_QUEUED_EVENTS);
    }
    self->pub_wanted = true;
    zube_bus__want_info (self);
    return 0;
}

int
zube_bus_subscribe (zube_bus_t *self, const char *topic_prefix,
                    zube_bus_event_fn *callback, void *arg)
{
    assert (self);
    if (!topic_prefix || !callback || strlen (topic_prefix) > 1024 ||
        zhashx_lookup (self->subscriptions, topic_prefix))
        return -1;
    zube_bus_subscription_t *subscription = calloc (1, sizeof *subscription);
    if (!subscription)
        return -1;
    subscription->callback = callback;
    subscription->arg = arg;
    zhashx_insert (self->subscriptions, topic_prefix, subscription);
    if (self->sub)
        zsock_set_subscribe (self->sub, topic_prefix);
    else if (self->subscribe_endpoint)
        s_open_sub (self);
    else
        zube_bus__want_info (self);
    return 0;
}

int
zube_bus_unsubscribe (zube_bus_t *self, const char *topic_prefix)
{
    assert (self);
    if (!topic_prefix || !zhashx_lookup (self->subscriptions, topic_prefix))
        return -1;
    zhashx_delete (self->subscriptions, topic_prefix);
    if (self->sub)
        zsock_set_unsubscribe (self->sub, topic_prefix);
    return 0;
}

//  Calls every subscription whose prefix matches, once each. The matching
//  prefixes are collected first: a callback may unsubscribe any of them.
void
zube_bus__handle_event (zube_bus_t *self, zmq_msg_t *frames, int count)
{
    if (count != 3)
        return;
    zube_bus_wire_t header;
    if (!zube_bus__header_scan (&header, &frames[1]) ||
        header.varint[ZUBE_BUS_F_KIND] != ZUBE__BUS_KIND__BUS_EVENT)
        return;
    char *topic =
        strndup ((const char *)zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]));
    zlistx_t *matches = zlistx_new ();
    if (!topic || !matches) {
        free (topic);
        zlistx_destroy (&matches);
        return;
    }
    zlistx_set_destructor (matches, (zlistx_destructor_fn *)zstr_free);
    zlistx_set_duplicator (matches, (zlistx_duplicator_fn *)strdup);
    for (void *item = zhashx_first (self->subscriptions); item;
         item = zhashx_next (self->subscriptions)) {
        const char *prefix = (const char *)zhashx_cursor (self->subscriptions);
        if (strncmp (topic, prefix, strlen (prefix)) == 0)
            zlistx_add_end (matches, (void *)prefix);
    }
    const uint8_t *payload = (const uint8_t *)zmq_msg_data (&frames[2]);
    size_t payload_size = zmq_msg_size (&frames[2]);
    for (const char *prefix = zlistx_first (matches); prefix;
         prefix = zlistx_next (matches)) {
        zube_bus_subscription_t *subscription =
            zhashx_lookup (self->subscriptions, prefix);
        if (subscription) {
            self->dispatched++;
            subscription->callback (self, topic, payload, payload_size,
                                    subscription->arg);
        }
    }
    zlistx_destroy (&matches);
    free (topic);
}
