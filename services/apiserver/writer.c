/*  writer - group commit, pipelined: every write gathered while the
    previous batch commits goes to the store in ONE transaction, and each
    is answered only after the store says the transaction is durable.

    A commit thread owns its own store handle (commit_store) and runs
    txn_commit; the bus thread meanwhile receives, validates and packs the
    next batch, reading through its own handle. When a commit is done the
    bus thread reads the new events back (window, bus), then answers the
    batch, then hands over the next one. Batches commit one at a time, in
    order.

    A prepare step reads the committed state, which the batch in flight
    may be about to change. So a write that reads the stored object
    (update, patch, delete, binding) first checks whether its key has a
    write queued or in flight; if so it waits and is prepared once that
    batch is answered. It still carries its expect_revision compare into
    txn_commit, so the store itself rejects it should another instance
    have changed the key. Creates need no read: their create-if-absent
    compare decides. A write that lost a race it did not ask for is
    prepared again for the next batch (up to API_RETRIES times) unless the
    client named the revision, in which case the answer is Conflict, as
    Kubernetes'. Pending slots are kept on a free list: a busy server
    allocates none per request. */
#include "apiserver_private.h"
#include "zube/log.h"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  A wait for the commit in flight grows up to 2^this times the first.
#define S_IDLE_WAITS_MAX 3

api_pending_t *
api_writer_slot (zube_apiserver_t *self)
{
    api_pending_t *pending = self->free_slots;
    if (pending)
        self->free_slots = pending->next;
    else
        pending = calloc (1, sizeof *pending);
    if (pending) {
        pending->next = NULL;
        pending->attempts = 0;
        pending->request = NULL;
        pending->message = NULL;
        pending->name = "";
        pending->wait = false;
        pending->deferred = false;
        pending->busy_key = false;
    }
    return pending;
}

static void
s_key_release (zube_apiserver_t *self, api_pending_t *pending)
{
    if (!pending->busy_key)
        return;
    pending->busy_key = false;
    uintptr_t count = (uintptr_t)zhashx_lookup (self->busy_keys, pending->key);
    if (count <= 1)
        zhashx_delete (self->busy_keys, pending->key);
    else
        zhashx_update (self->busy_keys, pending->key, (void *)(count - 1));
}

void
api_writer_release (zube_apiserver_t *self, api_pending_t *pending)
{
    s_key_release (self, pending);
    if (pending->message)
        protobuf_c_message_free_unpacked (pending->message, NULL);
    pending->message = NULL;
    free (pending->value);
    pending->value = NULL;
    pending->value_size = 0;
    free (pending->reply);
    pending->reply = NULL;
    pending->reply_size = 0;
    pending->request = NULL;
    pending->next = self->free_slots;
    self->free_slots = pending;
}

static void
s_defer (api_pending_t *pending)
{
    if (!pending->deferred)
        zube_bus_request_defer (pending->request);
    pending->deferred = true;
}

void
api_writer_queue (zube_apiserver_t *self, api_pending_t *pending)
{
    s_defer (pending);
    if (!pending->busy_key) {
        uintptr_t count = (uintptr_t)zhashx_lookup (self->busy_keys, pending->key);
        zhashx_update (self->busy_keys, pending->key, (void *)(count + 1));
        pending->busy_key = true;
    }
    pending->next = NULL;
    *self->pending_tail = pending;
    self->pending_tail = &pending->next;
    self->pending_count++;
}

bool
api_writer_key_busy (zube_apiserver_t *self, api_pending_t *pending)
{
    if (!zhashx_lookup (self->busy_keys, pending->key))
        return false;
    pending->wait = true;
    return true;
}

void
api_writer_submit (zube_apiserver_t *self, api_pending_t *pending)
{
    pending->wait = false;
    if (api_registry_prepare (self, pending))
        api_writer_queue (self, pending);
    else if (pending->wait) {
        s_defer (pending);
        pending->next = NULL;
        *self->waiting_tail = pending;
        self->waiting_tail = &pending->next;
    } else
        api_writer_release (self, pending);
}

static void
s_answer (zube_apiserver_t *self, api_pending_t *pending,
          const zube_store_result_t *result)
{
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
    s_key_release (self, pending);
    if (result->status == ZUBE_OK) {
        if (pending->op == ZUBE_STORE_DELETE)
            api_reply_object (self, request, kind, pending->reply, pending->reply_size,
                              result->revision);
        else
            api_reply_object (self, request, kind, pending->value, pending->value_size,
                              result->revision);
        api_writer_release (self, pending);
        return;
    }
    if (result->status == ZUBE_CONFLICT || result->status == ZUBE_NOT_FOUND) {
        if (pending->verb == API_VERB_CREATE && pending->conflict_final)
            api_reply_error (self, request, ZUBE_ALREADY_EXISTS, kind, pending->name,
                             NULL, "%s \"%s\" already exists", kind->qualified,
                             pending->name);
        else if (result->revision == 0 && pending->verb != API_VERB_CREATE)
            api_reply_not_found (self, request, kind, pending->name);
        else if (pending->conflict_final || pending->attempts + 1 >= API_RETRIES)
            api_reply_conflict (self, request, kind, pending->name);
        else {
            //  Lost a race it did not ask for: read and prepare again
            pending->attempts++;
            self->retries++;
            pending->next = self->retry;
            self->retry = pending;
            return;
        }
        api_writer_release (self, pending);
        return;
    }
    api_reply_error (self, request, result->status, kind, pending->name, NULL,
                     "storage error: %s", self->commit_error);
    api_writer_release (self, pending);
}

//  The batch in flight is committed: events first (window, bus), then the
//  answers, so whoever got an answer can find its event.
static void
s_finish (zube_apiserver_t *self)
{
    size_t count = self->inflight_count;
    zube_status_t status = self->commit_status;
    self->batches++;
    self->batched_writes += count;
    self->commit_us += (uint64_t)self->commit_took_us;
    if (count > self->max_batch)
        self->max_batch = count;
    if (status != ZUBE_OK) {
        zube_log_error ("msg=\"group commit failed\" writes=%zu status=%s error=\"%s\"",
                        count, zube_status_reason (status), self->commit_error);
        for (size_t i = 0; i < count; i++)
            self->results[i] = (zube_store_result_t){
                .status = status == ZUBE_INTERNAL ? ZUBE_INTERNAL : ZUBE_UNAVAILABLE};
    }
    api_pending_t *batch = self->inflight;
    self->inflight = NULL;
    self->inflight_count = 0;
    if (status == ZUBE_OK)
        api_watch_follow (self);
    size_t at = 0;
    while (batch) {
        api_pending_t *pending = batch;
        batch = pending->next;
        s_answer (self, pending, &self->results[at++]);
    }
}

static void
s_commit (zube_apiserver_t *self, zube_store_t *store)
{
    int64_t started = zclock_usecs ();
    self->commit_status =
        zube_store_txn_commit (store, self->ops, self->inflight_count, self->results);
    self->commit_took_us = zclock_usecs () - started;
    if (self->commit_status != ZUBE_OK)
        snprintf (self->commit_error, sizeof self->commit_error, "%s",
                  zube_store_error (store));
    else
        self->commit_error[0] = 0;
}

static void *
s_committer (void *arg)
{
    zube_apiserver_t *self = (zube_apiserver_t *)arg;
    pthread_mutex_lock (&self->lock);
    while (true) {
        while (!self->submitted && !self->stopping)
            pthread_cond_wait (&self->wake, &self->lock);
        if (!self->submitted)
            break;
        pthread_mutex_unlock (&self->lock);
        s_commit (self, self->commit_store);
        pthread_mutex_lock (&self->lock);
        self->submitted = false;
        self->completed = true;
        pthread_cond_signal (&self->done);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

void
api_writer_init (zube_apiserver_t *self)
{
    if (!self->busy_keys) {
        self->busy_keys = zhashx_new ();
        self->waiting_tail = &self->waiting;
        pthread_mutex_init (&self->lock, NULL);
        pthread_condattr_t attr;
        pthread_condattr_init (&attr);
        pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
        pthread_cond_init (&self->done, &attr);
        pthread_condattr_destroy (&attr);
        pthread_cond_init (&self->wake, NULL);
    }
}

int
api_writer_start (zube_apiserver_t *self, const char *store_url)
{
    api_writer_init (self);
    if (!self->busy_keys)
        return -1;
    char *error = NULL;
    self->commit_store = zube_store_open (self->plugins, store_url, NULL, &error);
    if (!self->commit_store) {
        zube_log_warn ("msg=\"no commit thread: cannot open the store a second time, "
                       "commits run on the bus thread\" error=\"%s\"",
                       error ? error : "");
        free (error);
        return -1;
    }
    self->stopping = false;
    if (pthread_create (&self->committer, NULL, s_committer, self) != 0) {
        zube_store_close (&self->commit_store);
        return -1;
    }
    self->committer_started = true;
    return 0;
}

//  The bus cannot wake this thread when a commit is done, so with a
//  batch in flight it looks at the bus and waits for the commit in turns.
//  Each wait with nothing received since is twice as long as the one
//  before (up to 8 times wait_us): a commit that waits on an fsync then
//  costs a few wake-ups, not one every wait_us. A request that came
//  during the last wait is read once the batch is answered, so it still
//  goes into the next batch.
bool
api_writer_busy (zube_apiserver_t *self, int wait_us)
{
    if (!self->inflight)
        return false;
    if (wait_us == 0)
        self->idle_waits = 0;
    else if (wait_us > 0) {
        wait_us <<= self->idle_waits;
        if (self->idle_waits < S_IDLE_WAITS_MAX)
            self->idle_waits++;
    }
    pthread_mutex_lock (&self->lock);
    bool waited = !self->completed && wait_us > 0;
    if (!self->completed && wait_us != 0) {
        if (wait_us < 0)
            while (!self->completed)
                pthread_cond_wait (&self->done, &self->lock);
        else {
            struct timespec until;
            clock_gettime (CLOCK_MONOTONIC, &until);
            until.tv_nsec += (long)wait_us * 1000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            while (!self->completed &&
                   pthread_cond_timedwait (&self->done, &self->lock, &until) != ETIMEDOUT)
                ;
        }
    }
    bool completed = self->completed;
    self->completed = false;
    pthread_mutex_unlock (&self->lock);
    if (!completed)
        return true;
    self->idle_waits = 0;
    s_finish (self);
    //  What came during the wait goes into the next batch, not the one
    //  after it
    if (waited)
        while (self->pending_count < API_BATCH_MAX && zube_bus_poll (self->bus, 0) > 0)
            ;
    return false;
}

void
api_writer_stop (zube_apiserver_t *self)
{
    api_writer_busy (self, -1);
    if (self->committer_started) {
        pthread_mutex_lock (&self->lock);
        self->stopping = true;
        pthread_cond_signal (&self->wake);
        pthread_mutex_unlock (&self->lock);
        pthread_join (self->committer, NULL);
        self->committer_started = false;
    }
    zube_store_close (&self->commit_store);
}

void
api_writer_flush (zube_apiserver_t *self)
{
    if (self->inflight)
        return;
    //  Writes that lost a race, then those that waited for their key,
    //  are prepared again first, against what the last batch wrote
    api_pending_t *again = self->retry;
    self->retry = NULL;
    while (again) {
        api_pending_t *pending = again;
        again = pending->next;
        api_writer_submit (self, pending);
    }
    again = self->waiting;
    self->waiting = NULL;
    self->waiting_tail = &self->waiting;
    while (again) {
        api_pending_t *pending = again;
        again = pending->next;
        api_writer_submit (self, pending);
    }
    if (!self->pending)
        return;
    size_t count = self->pending_count;
    if (count > self->ops_size) {
        zube_store_op_t *ops = realloc (self->ops, count * sizeof *ops);
        if (ops)
            self->ops = ops;
        zube_store_result_t *results = realloc (self->results, count * sizeof *results);
        if (results)
            self->results = results;
        if (!ops || !results) {
            zube_log_error ("msg=\"out of memory in the writer\" batch=%zu", count);
            return;
        }
        self->ops_size = count;
    }
    size_t at = 0;
    for (api_pending_t *pending = self->pending; pending; pending = pending->next) {
        self->ops[at] = (zube_store_op_t){
            .type = pending->op,
            .key = pending->key,
            .value = pending->value,
            .value_size = pending->op == ZUBE_STORE_PUT ? pending->value_size : 0,
            .expect_revision = pending->expect,
            .group = 0,
        };
        at++;
    }
    self->inflight = self->pending;
    self->inflight_count = count;
    self->pending = NULL;
    self->pending_tail = &self->pending;
    self->pending_count = 0;
    if (!self->committer_started) {
        s_commit (self, self->store);
        s_finish (self);
        return;
    }
    pthread_mutex_lock (&self->lock);
    self->submitted = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
}

void
api_writer_destroy (zube_apiserver_t *self)
{
    //  The bus connection freed the requests; only our own memory is left
    api_pending_t *lists[] = {self->pending, self->retry, self->free_slots,
                              self->waiting, self->inflight};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        api_pending_t *pending = lists[i];
        while (pending) {
            api_pending_t *next = pending->next;
            if (pending->message)
                protobuf_c_message_free_unpacked (pending->message, NULL);
            free (pending->value);
            free (pending->reply);
            free (pending);
            pending = next;
        }
    }
    self->pending = self->retry = self->free_slots = self->waiting = self->inflight = NULL;
    free (self->ops);
    free (self->results);
    self->ops = NULL;
    self->results = NULL;
    if (self->busy_keys) {
        zhashx_destroy (&self->busy_keys);
        pthread_mutex_destroy (&self->lock);
        pthread_cond_destroy (&self->wake);
        pthread_cond_destroy (&self->done);
    }
}
