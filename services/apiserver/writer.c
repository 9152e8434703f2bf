/*  writer - group commit: every write gathered since the last commit goes
    to the store in ONE transaction, and each is answered only after the
    store says the transaction is durable.

    Writes to the same key in one batch are fine: each operation's compare
    sees the ones before it, so the second of two updates read at the same
    revision fails its compare and is prepared again for the next batch
    (up to API_RETRIES times) unless the client named the revision, in
    which case the answer is Conflict, as Kubernetes'. Pending slots are
    kept on a free list: a busy server allocates none per request. */
#include "apiserver_private.h"
#include "zube/log.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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
    }
    return pending;
}

void
api_writer_release (zube_apiserver_t *self, api_pending_t *pending)
{
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

void
api_writer_queue (zube_apiserver_t *self, api_pending_t *pending)
{
    if (pending->attempts == 0)
        zube_bus_request_defer (pending->request);
    pending->next = NULL;
    *self->pending_tail = pending;
    self->pending_tail = &pending->next;
    self->pending_count++;
}

static void
s_answer (zube_apiserver_t *self, api_pending_t *pending,
          const zube_store_result_t *result)
{
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
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
                     "storage error: %s", zube_store_error (self->store));
    api_writer_release (self, pending);
}

void
api_writer_flush (zube_apiserver_t *self)
{
    //  Writes that lost a race last time are prepared again first
    while (self->retry) {
        api_pending_t *pending = self->retry;
        self->retry = pending->next;
        if (api_registry_prepare (self, pending))
            api_writer_queue (self, pending);
        else
            api_writer_release (self, pending);
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
    api_pending_t *batch = self->pending;
    self->pending = NULL;
    self->pending_tail = &self->pending;
    self->pending_count = 0;

    zube_status_t status =
        zube_store_txn_commit (self->store, self->ops, count, self->results);
    self->batches++;
    self->batched_writes += count;
    if (count > self->max_batch)
        self->max_batch = count;
    if (status != ZUBE_OK) {
        zube_log_error ("msg=\"group commit failed\" writes=%zu status=%s error=\"%s\"",
                        count, zube_status_reason (status),
                        zube_store_error (self->store));
        for (size_t i = 0; i < count; i++)
            self->results[i] = (zube_store_result_t){
                .status = status == ZUBE_INTERNAL ? ZUBE_INTERNAL : ZUBE_UNAVAILABLE};
    } else
        //  Events first (window, bus), then the answers: whoever got an
        //  answer can find its event
        api_watch_follow (self);
    at = 0;
    while (batch) {
        api_pending_t *pending = batch;
        batch = pending->next;
        s_answer (self, pending, &self->results[at++]);
    }
}

void
api_writer_destroy (zube_apiserver_t *self)
{
    //  The bus connection freed the requests; only our own memory is left
    api_pending_t *lists[] = {self->pending, self->retry, self->free_slots};
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
    self->pending = self->retry = self->free_slots = NULL;
    free (self->ops);
    free (self->results);
    self->ops = NULL;
    self->results = NULL;
}
