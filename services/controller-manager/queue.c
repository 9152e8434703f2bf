/*  queue - a controller's work queue: Kubernetes' workqueue with its
    delaying and rate-limiting layers. It has no lock: the manager calls
    it under its own (docs/controllers.md, Threads). Keys are queued once
    (a set beside a FIFO); a key popped is processing until done, and an
    add meanwhile only marks it dirty, so no two workers sync one key at
    once and a key added during its sync is synced again after; delayed keys
    wait in a map of due times and enter the FIFO when due (an earlier
    delay for the same key replaces a later one); the back-off of a key is
    base * 2^requeues, capped, until it is forgotten. */
#include "zcm.h"
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

struct _zcm_queue_t {
    int64_t base_ms;
    int64_t max_ms;
    zlistx_t *fifo;    //  char * keys, oldest first
    zhashx_t *queued;  //  key -> (void *)1 while in fifo
    zhashx_t *waiting; //  key -> int64_t * due time
    int64_t next_due_ms;
    zhashx_t *failures;   //  key -> int * requeues
    zhashx_t *processing; //  key -> (void *)1 between pop and done
    zhashx_t *dirty;      //  key -> (void *)1: added while processing
};

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

zcm_queue_t *
zcm_queue_new (int64_t base_ms, int64_t max_ms)
{
    zcm_queue_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->base_ms = base_ms > 0 ? base_ms : ZUBE_CTRL_BACKOFF_BASE_MS;
    self->max_ms = max_ms > 0 ? max_ms : ZUBE_CTRL_BACKOFF_MAX_MS;
    self->fifo = zlistx_new ();
    self->queued = zhashx_new ();
    self->waiting = zhashx_new ();
    self->failures = zhashx_new ();
    self->processing = zhashx_new ();
    self->dirty = zhashx_new ();
    if (!self->fifo || !self->queued || !self->waiting || !self->failures ||
        !self->processing || !self->dirty) {
        zcm_queue_destroy (&self);
        return NULL;
    }
    zlistx_set_destructor (self->fifo, s_free_item);
    zhashx_set_destructor (self->waiting, s_free_item);
    zhashx_set_destructor (self->failures, s_free_item);
    self->next_due_ms = -1;
    return self;
}

void
zcm_queue_destroy (zcm_queue_t **self_p)
{
    zcm_queue_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy (&self->fifo);
    zhashx_destroy (&self->queued);
    zhashx_destroy (&self->waiting);
    zhashx_destroy (&self->failures);
    zhashx_destroy (&self->processing);
    zhashx_destroy (&self->dirty);
    free (self);
    *self_p = NULL;
}

void
zcm_queue_add (zcm_queue_t *self, const char *key)
{
    if (!key || zhashx_lookup (self->queued, key))
        return;
    if (zhashx_lookup (self->processing, key)) {
        zhashx_update (self->dirty, key, (void *)1);
        return;
    }
    char *copy = strdup (key);
    if (!copy)
        return;
    zlistx_add_end (self->fifo, copy);
    zhashx_insert (self->queued, key, (void *)1);
}

void
zcm_queue_add_after (zcm_queue_t *self, const char *key, int64_t delay_ms, int64_t now_ms)
{
    if (!key)
        return;
    if (delay_ms <= 0) {
        zcm_queue_add (self, key);
        return;
    }
    int64_t due = now_ms + delay_ms;
    int64_t *held = zhashx_lookup (self->waiting, key);
    if (held) {
        if (due < *held)
            *held = due;
    } else {
        held = malloc (sizeof *held);
        if (!held)
            return;
        *held = due;
        zhashx_insert (self->waiting, key, held);
    }
    if (self->next_due_ms < 0 || due < self->next_due_ms)
        self->next_due_ms = due;
}

void
zcm_queue_add_rate_limited (zcm_queue_t *self, const char *key, int64_t now_ms)
{
    if (!key)
        return;
    int *requeues = zhashx_lookup (self->failures, key);
    if (!requeues) {
        requeues = calloc (1, sizeof *requeues);
        if (!requeues)
            return;
        zhashx_insert (self->failures, key, requeues);
    }
    int64_t delay = self->base_ms;
    for (int i = 0; i < *requeues && delay < self->max_ms; i++)
        delay *= 2;
    if (delay > self->max_ms)
        delay = self->max_ms;
    (*requeues)++;
    zcm_queue_add_after (self, key, delay, now_ms);
}

void
zcm_queue_forget (zcm_queue_t *self, const char *key)
{
    if (key)
        zhashx_delete (self->failures, key);
}

int
zcm_queue_requeues (zcm_queue_t *self, const char *key)
{
    int *requeues = key ? zhashx_lookup (self->failures, key) : NULL;
    return requeues ? *requeues : 0;
}

int64_t
zcm_queue_flush (zcm_queue_t *self, int64_t now_ms)
{
    if (self->next_due_ms < 0)
        return -1;
    if (now_ms < self->next_due_ms)
        return self->next_due_ms - now_ms;
    //  Collect first: adding while iterating the map is not allowed
    zlistx_t *due = zlistx_new ();
    if (!due)
        return 0;
    int64_t next = -1;
    for (int64_t *at = zhashx_first (self->waiting); at;
         at = zhashx_next (self->waiting)) {
        if (*at <= now_ms)
            zlistx_add_end (due, (void *)zhashx_cursor (self->waiting));
        else if (next < 0 || *at < next)
            next = *at;
    }
    for (const char *key = zlistx_first (due); key; key = zlistx_next (due)) {
        char *copy = strdup (key);
        zhashx_delete (self->waiting, key);
        if (copy)
            zcm_queue_add (self, copy);
        free (copy);
    }
    zlistx_destroy (&due);
    self->next_due_ms = next;
    return next < 0 ? -1 : next - now_ms;
}

char *
zcm_queue_pop (zcm_queue_t *self)
{
    char *key = zlistx_first (self->fifo);
    if (!key)
        return NULL;
    zlistx_detach_cur (self->fifo);
    zhashx_delete (self->queued, key);
    zhashx_insert (self->processing, key, (void *)1);
    return key;
}

void
zcm_queue_done (zcm_queue_t *self, const char *key)
{
    if (!key || !zhashx_lookup (self->processing, key))
        return;
    zhashx_delete (self->processing, key);
    if (zhashx_lookup (self->dirty, key)) {
        zhashx_delete (self->dirty, key);
        zcm_queue_add (self, key);
    }
}

size_t
zcm_queue_processing (zcm_queue_t *self)
{
    return zhashx_size (self->processing);
}

size_t
zcm_queue_length (zcm_queue_t *self)
{
    return zlistx_size (self->fifo);
}

size_t
zcm_queue_waiting (zcm_queue_t *self)
{
    return zhashx_size (self->waiting);
}
