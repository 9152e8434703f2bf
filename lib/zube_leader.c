/*  zube_leader - leader election through a Lease (include/zube/leader.h).

    client-go's tryAcquireOrRenew, step for step: read the Lease; create it
    when absent; otherwise note when its record (holder, renewTime,
    transitions) last changed on our own monotonic clock, leave it alone
    while another holder's lease is valid by that clock, and write our
    record with the resourceVersion we read, keeping acquireTime and
    leaseTransitions when we already held it. A Conflict answer means
    another candidate wrote first. */
#define _GNU_SOURCE
#include "coordination.pb-c.h"
#include "zube/leader.h"
#include "zube/log.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct _zube_leader_t {
    zube_api_t *api;
    char *namespace_;
    char *name;
    char *identity;
    int64_t lease_ms;
    int64_t renew_deadline_ms;
    int64_t retry_ms;
    zube_leader_state_t state;
    int64_t next_try_ms;
    int64_t last_renew_ms;
    //  The record last read, and when it changed (our clock)
    char observed[512];
    int64_t observed_ms;
    uint64_t acquisitions;
    //  The resourceVersion of the Lease as we wrote it last
    char *resource_version;
};

static int64_t
s_mono_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  MicroTime: RFC 3339 with microseconds
static void
s_micro_time (char *buf, size_t size)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    char seconds[32];
    strftime (seconds, sizeof seconds, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf, size, "%.20s.%06uZ", seconds,
              (unsigned)(now.tv_nsec / 1000) % 1000000u);
}

zube_leader_t *
zube_leader_new (zube_api_t *api, const zube_leader_config_t *config, char *error,
                 size_t error_size)
{
    if (!api || !config || !config->name || !*config->name || !config->identity ||
        !*config->identity) {
        snprintf (error, error_size,
                  "leader election needs a lease name and an identity");
        return NULL;
    }
    int64_t lease = config->lease_duration_ms > 0 ? config->lease_duration_ms
                                                  : ZUBE_LEADER_DEFAULT_LEASE_DURATION_MS;
    int64_t renew = config->renew_deadline_ms > 0 ? config->renew_deadline_ms
                                                  : ZUBE_LEADER_DEFAULT_RENEW_DEADLINE_MS;
    int64_t retry = config->retry_period_ms > 0 ? config->retry_period_ms
                                                : ZUBE_LEADER_DEFAULT_RETRY_PERIOD_MS;
    //  client-go's checks: leaseDuration > renewDeadline > jitter * retry
    if (lease <= renew) {
        snprintf (error, error_size,
                  "leader election: the lease duration (%" PRId64
                  " ms) must be greater than the renew deadline (%" PRId64 " ms)",
                  lease, renew);
        return NULL;
    }
    if (renew <= retry) {
        snprintf (error, error_size,
                  "leader election: the renew deadline (%" PRId64
                  " ms) must be greater than the retry period (%" PRId64 " ms)",
                  renew, retry);
        return NULL;
    }
    zube_leader_t *self = calloc (1, sizeof *self);
    if (!self ||
        !(self->namespace_ = strdup (config->namespace_ && *config->namespace_
                                         ? config->namespace_
                                         : ZUBE_LEADER_DEFAULT_NAMESPACE)) ||
        !(self->name = strdup (config->name)) ||
        !(self->identity = strdup (config->identity))) {
        zube_leader_destroy (&self);
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->api = api;
    self->lease_ms = lease;
    self->renew_deadline_ms = renew;
    self->retry_ms = retry;
    self->state = ZUBE_LEADER_FOLLOWING;
    return self;
}

void
zube_leader_destroy (zube_leader_t **self_p)
{
    zube_leader_t *self = *self_p;
    if (!self)
        return;
    free (self->namespace_);
    free (self->name);
    free (self->identity);
    free (self->resource_version);
    free (self);
    *self_p = NULL;
}

static int32_t
s_seconds (int64_t ms)
{
    return (int32_t)((ms + 999) / 1000);
}

//  Creates the Lease with us as holder; true when it worked.
static bool
s_create (zube_leader_t *self)
{
    char now[40];
    s_micro_time (now, sizeof now);
    Zube__Lease lease = ZUBE__LEASE__INIT;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    Zube__LeaseSpec spec = ZUBE__LEASE_SPEC__INIT;
    lease.api_version = "coordination.k8s.io/v1";
    lease.kind = "Lease";
    meta.name = self->name;
    meta.namespace_ = self->namespace_;
    lease.metadata = &meta;
    spec.holder_identity = self->identity;
    spec.has_lease_duration_seconds = 1;
    spec.lease_duration_seconds = s_seconds (self->lease_ms);
    spec.acquire_time = now;
    spec.renew_time = now;
    spec.has_lease_transitions = 1;
    spec.lease_transitions = 0;
    lease.spec = &spec;
    ProtobufCMessage *created = NULL;
    zube_api_error_t error;
    zube_status_t status = zube_api_create (self->api, "leases", self->namespace_,
                                            &lease.base, false, &created, &error);
    if (status != ZUBE_OK) {
        if (status != ZUBE_ALREADY_EXISTS)
            zube_log_warn ("msg=\"cannot create the lease\" lease=%s/%s error=\"%s\"",
                           self->namespace_, self->name, error.message);
        return false;
    }
    Zube__Lease *stored = (Zube__Lease *)created;
    free (self->resource_version);
    self->resource_version = stored->metadata && stored->metadata->resource_version
                                 ? strdup (stored->metadata->resource_version)
                                 : NULL;
    protobuf_c_message_free_unpacked (created, NULL);
    return true;
}

//  One client-go tryAcquireOrRenew: true when we hold the lease after it.
//  *other_holder: another candidate holds a valid lease.
static bool
s_try_acquire_or_renew (zube_leader_t *self, int64_t now_ms, bool *other_holder)
{
    *other_holder = false;
    ProtobufCMessage *object = NULL;
    zube_api_error_t error;
    zube_status_t status =
        zube_api_get (self->api, "leases", self->namespace_, self->name, &object, &error);
    if (status == ZUBE_NOT_FOUND)
        return s_create (self);
    if (status != ZUBE_OK) {
        zube_log_warn ("msg=\"cannot read the lease\" lease=%s/%s error=\"%s\"",
                       self->namespace_, self->name, error.message);
        return false;
    }
    Zube__Lease *lease = (Zube__Lease *)object;
    if (!lease->spec) {
        lease->spec = malloc (sizeof *lease->spec);
        if (!lease->spec) {
            protobuf_c_message_free_unpacked (object, NULL);
            return false;
        }
        zube__lease_spec__init (lease->spec);
    }
    Zube__LeaseSpec *spec = lease->spec;
    const char *holder = spec->holder_identity ? spec->holder_identity : "";
    char record[512];
    snprintf (record, sizeof record, "%s|%s|%d|%d", holder,
              spec->renew_time ? spec->renew_time : "", spec->lease_transitions,
              spec->lease_duration_seconds);
    if (strcmp (record, self->observed) != 0) {
        snprintf (self->observed, sizeof self->observed, "%s", record);
        self->observed_ms = now_ms;
    }
    bool mine = strcmp (holder, self->identity) == 0;
    int64_t duration_ms = (int64_t)spec->lease_duration_seconds * 1000;
    if (*holder && !mine && self->observed_ms + duration_ms > now_ms) {
        *other_holder = true;
        protobuf_c_message_free_unpacked (object, NULL);
        return false;
    }
    char now[40];
    s_micro_time (now, sizeof now);
    //  The strings we set belong to the message now
    char *new_holder = strdup (self->identity);
    char *renew = strdup (now);
    char *acquire = mine && spec->acquire_time ? NULL : strdup (now);
    if (!new_holder || !renew || (!acquire && !(mine && spec->acquire_time))) {
        free (new_holder), free (renew), free (acquire);
        protobuf_c_message_free_unpacked (object, NULL);
        return false;
    }
    free (spec->holder_identity);
    spec->holder_identity = new_holder;
    free (spec->renew_time);
    spec->renew_time = renew;
    if (acquire) {
        free (spec->acquire_time);
        spec->acquire_time = acquire;
    }
    if (!mine) {
        spec->has_lease_transitions = 1;
        spec->lease_transitions++;
    }
    spec->has_lease_duration_seconds = 1;
    spec->lease_duration_seconds = s_seconds (self->lease_ms);
    ProtobufCMessage *updated = NULL;
    status = zube_api_update (self->api, "leases", self->namespace_, object, NULL, false,
                              &updated, &error);
    protobuf_c_message_free_unpacked (object, NULL);
    if (status != ZUBE_OK) {
        if (status != ZUBE_CONFLICT)
            zube_log_warn ("msg=\"cannot write the lease\" lease=%s/%s error=\"%s\"",
                           self->namespace_, self->name, error.message);
        return false;
    }
    Zube__Lease *stored = (Zube__Lease *)updated;
    if (stored->spec)
        snprintf (self->observed, sizeof self->observed, "%s|%s|%d|%d", self->identity,
                  stored->spec->renew_time ? stored->spec->renew_time : "",
                  stored->spec->lease_transitions, stored->spec->lease_duration_seconds);
    self->observed_ms = now_ms;
    free (self->resource_version);
    self->resource_version = stored->metadata && stored->metadata->resource_version
                                 ? strdup (stored->metadata->resource_version)
                                 : NULL;
    protobuf_c_message_free_unpacked (updated, NULL);
    return true;
}

zube_leader_state_t
zube_leader_tick (zube_leader_t *self, int64_t *next_ms_p)
{
    int64_t now = s_mono_ms ();
    if (self->state == ZUBE_LEADER_LEADING &&
        now - self->last_renew_ms >= self->renew_deadline_ms) {
        zube_log_error ("msg=\"leader election lost\" lease=%s/%s identity=%s",
                        self->namespace_, self->name, self->identity);
        self->state = ZUBE_LEADER_LOST;
    }
    if (self->state == ZUBE_LEADER_LOST || now < self->next_try_ms) {
        if (next_ms_p)
            *next_ms_p = self->state == ZUBE_LEADER_LOST ? -1 : self->next_try_ms - now;
        return self->state;
    }
    bool other = false;
    bool held = s_try_acquire_or_renew (self, now, &other);
    //  The call took time: the deadline counts from when it started
    if (held) {
        if (self->state != ZUBE_LEADER_LEADING) {
            self->acquisitions++;
            zube_log_info ("msg=\"became leader\" lease=%s/%s identity=%s",
                           self->namespace_, self->name, self->identity);
        }
        self->state = ZUBE_LEADER_LEADING;
        self->last_renew_ms = now;
    } else if (self->state == ZUBE_LEADER_LEADING && other) {
        zube_log_error ("msg=\"leader election lost: another holds the lease\" "
                        "lease=%s/%s identity=%s",
                        self->namespace_, self->name, self->identity);
        self->state = ZUBE_LEADER_LOST;
    }
    //  Followers retry with a little jitter, so candidates do not step in
    //  lockstep; the leader renews every retry period.
    int64_t wait = self->retry_ms;
    if (self->state != ZUBE_LEADER_LEADING)
        wait += (int64_t)(rand () % (int)(self->retry_ms / 10 + 1));
    self->next_try_ms = s_mono_ms () + wait;
    if (next_ms_p)
        *next_ms_p = wait;
    return self->state;
}

bool
zube_leader_is_leader (zube_leader_t *self)
{
    return self->state == ZUBE_LEADER_LEADING &&
           s_mono_ms () - self->last_renew_ms < self->renew_deadline_ms;
}

uint64_t
zube_leader_acquisitions (zube_leader_t *self)
{
    return self->acquisitions;
}

void
zube_leader_release (zube_leader_t *self)
{
    if (!self || self->state != ZUBE_LEADER_LEADING)
        return;
    self->state = ZUBE_LEADER_FOLLOWING;
    ProtobufCMessage *object = NULL;
    zube_api_error_t error;
    if (zube_api_get (self->api, "leases", self->namespace_, self->name, &object,
                      &error) != ZUBE_OK)
        return;
    Zube__Lease *lease = (Zube__Lease *)object;
    if (lease->spec && lease->spec->holder_identity &&
        strcmp (lease->spec->holder_identity, self->identity) == 0) {
        char now[40];
        s_micro_time (now, sizeof now);
        free (lease->spec->holder_identity);
        lease->spec->holder_identity = strdup ("");
        free (lease->spec->renew_time);
        lease->spec->renew_time = strdup (now);
        lease->spec->has_lease_duration_seconds = 1;
        lease->spec->lease_duration_seconds = 1;
        if (zube_api_update (self->api, "leases", self->namespace_, object, NULL, false,
                             NULL, &error) == ZUBE_OK)
            zube_log_info ("msg=\"lease released\" lease=%s/%s identity=%s",
                           self->namespace_, self->name, self->identity);
    }
    protobuf_c_message_free_unpacked (object, NULL);
}

int
zube_leader_duration_ms (const char *text)
{
    char *end = NULL;
    double value = text ? strtod (text, &end) : -1;
    if (!text || end == text || value < 0)
        return -1;
    double ms = strcmp (end, "ms") == 0           ? value
                : strcmp (end, "s") == 0 || !*end ? value * 1000
                : strcmp (end, "m") == 0          ? value * 60000
                                                  : -1;
    return ms < 0 || ms > 24.0 * 3600 * 1000 ? -1 : (int)ms;
}

bool
zube_leader_flag_valid_duration (const char *value)
{
    return zube_leader_duration_ms (value) > 0;
}

void
zube_leader_flags_init (zube_leader_flags_t *self)
{
    const zube_flag_t rows[] = {
        {.name = "--leader-elect",
         .value = &self->elect,
         .valid = zube_flag_valid_bool,
         .expected = ZUBE_FLAG_BOOL_EXPECTED},
        {.name = "--leader-elect-lease-duration",
         .value = &self->lease_duration,
         .valid = zube_leader_flag_valid_duration,
         .expected = ZUBE_LEADER_DURATION_EXPECTED},
        {.name = "--leader-elect-renew-deadline",
         .value = &self->renew_deadline,
         .valid = zube_leader_flag_valid_duration,
         .expected = ZUBE_LEADER_DURATION_EXPECTED},
        {.name = "--leader-elect-retry-period",
         .value = &self->retry_period,
         .valid = zube_leader_flag_valid_duration,
         .expected = ZUBE_LEADER_DURATION_EXPECTED},
        {.name = "--leader-elect-resource-namespace", .value = &self->namespace_},
        {.name = "--leader-elect-resource-name", .value = &self->name},
        {.name = "--identity", .value = &self->identity},
        {.name = NULL},
    };
    _Static_assert(sizeof rows == sizeof self->rows, "rows fit zube_leader_flags_t");
    memcpy (self->rows, rows, sizeof rows);
}
