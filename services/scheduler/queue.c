/*  queue - Kubernetes' scheduling queue: an active heap ordered by the
    queue sort plugin, a back-off heap ordered by when each back-off ends
    (initial 1 s, doubling per attempt up to 10 s, as kube-scheduler's
    podInitialBackoffSeconds and podMaxBackoffSeconds), and the
    unschedulable pods, which move on when a cluster event one of their
    rejecting plugins cares about happens, or after 5 minutes anyway. The
    unschedulable pods are kept in a list of their own, so an event (one
    per pod bound, in a busy cluster) looks at them alone, not at every
    pod queued. */
#include "zs_sched.h"
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#define S_UNSCHEDULABLE_MAX_MS (5 * 60 * 1000)

typedef struct {
    zs_qpod_t **items;
    size_t count;
    size_t capacity;
    bool by_time;
} s_heap_t;

struct _zs_queue_t {
    zs_profile_t *sort;
    int64_t initial_backoff_ms;
    int64_t max_backoff_ms;
    zhashx_t *pods; //  key -> zs_qpod_t, every state
    s_heap_t active;
    s_heap_t backoff;
    //  In no order (heap_index is the place in it)
    s_heap_t unschedulable;
    int64_t last_sweep_ms;
};

static bool
s_before (zs_queue_t *self, s_heap_t *heap, zs_qpod_t *a, zs_qpod_t *b)
{
    if (heap->by_time)
        return a->backoff_until_ms < b->backoff_until_ms;
    return zs_profile_less (self->sort, a->pod, b->pod);
}

static void
s_swap (s_heap_t *heap, size_t i, size_t j)
{
    zs_qpod_t *item = heap->items[i];
    heap->items[i] = heap->items[j];
    heap->items[j] = item;
    heap->items[i]->heap_index = i;
    heap->items[j]->heap_index = j;
}

static void
s_sift (zs_queue_t *self, s_heap_t *heap, size_t index)
{
    while (index > 0 &&
           s_before (self, heap, heap->items[index], heap->items[(index - 1) / 2])) {
        s_swap (heap, index, (index - 1) / 2);
        index = (index - 1) / 2;
    }
    while (true) {
        size_t smallest = index, left = 2 * index + 1, right = left + 1;
        if (left < heap->count &&
            s_before (self, heap, heap->items[left], heap->items[smallest]))
            smallest = left;
        if (right < heap->count &&
            s_before (self, heap, heap->items[right], heap->items[smallest]))
            smallest = right;
        if (smallest == index)
            return;
        s_swap (heap, index, smallest);
        index = smallest;
    }
}

//  Appends qpod to heap's items (no sifting). -1 on no memory.
static int
s_append (s_heap_t *heap, zs_qpod_t *qpod)
{
    if (heap->count == heap->capacity) {
        size_t capacity = heap->capacity ? heap->capacity * 2 : 256;
        zs_qpod_t **items = realloc (heap->items, capacity * sizeof *items);
        if (!items)
            return -1;
        heap->items = items;
        heap->capacity = capacity;
    }
    qpod->heap_index = heap->count;
    heap->items[heap->count++] = qpod;
    return 0;
}

static int
s_push (zs_queue_t *self, s_heap_t *heap, zs_qpod_t *qpod)
{
    if (s_append (heap, qpod) != 0)
        return -1;
    s_sift (self, heap, qpod->heap_index);
    return 0;
}

//  Takes qpod out of the unschedulable list (the last item takes its place).
static void
s_unlist (s_heap_t *list, zs_qpod_t *qpod)
{
    size_t index = qpod->heap_index;
    if (index >= list->count || list->items[index] != qpod)
        return;
    list->items[index] = list->items[--list->count];
    list->items[index]->heap_index = index;
}

static void
s_heap_remove (zs_queue_t *self, s_heap_t *heap, zs_qpod_t *qpod)
{
    size_t index = qpod->heap_index;
    if (index >= heap->count || heap->items[index] != qpod)
        return;
    heap->count--;
    if (index != heap->count) {
        heap->items[index] = heap->items[heap->count];
        heap->items[index]->heap_index = index;
        s_sift (self, heap, index);
    }
}

//  Takes qpod out of whatever holds it (not the map).
static void
s_detach (zs_queue_t *self, zs_qpod_t *qpod)
{
    if (qpod->state == ZS_ACTIVE)
        s_heap_remove (self, &self->active, qpod);
    else if (qpod->state == ZS_BACKOFF)
        s_heap_remove (self, &self->backoff, qpod);
    else if (qpod->state == ZS_UNSCHEDULABLE)
        s_unlist (&self->unschedulable, qpod);
}

static void
s_qpod_destroy (void **item_p)
{
    zs_qpod_t *qpod = *item_p;
    if (!qpod)
        return;
    zs_pod_destroy (&qpod->pod);
    free (qpod);
    *item_p = NULL;
}

zs_queue_t *
zs_queue_new (zs_profile_t *sort, int64_t initial_backoff_ms, int64_t max_backoff_ms)
{
    zs_queue_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->sort = sort;
    self->initial_backoff_ms = initial_backoff_ms > 0 ? initial_backoff_ms : 1000;
    self->max_backoff_ms = max_backoff_ms > 0 ? max_backoff_ms : 10000;
    self->backoff.by_time = true;
    self->pods = zhashx_new ();
    if (!self->pods) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->pods, s_qpod_destroy);
    return self;
}

void
zs_queue_destroy (zs_queue_t **self_p)
{
    zs_queue_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->pods);
    free (self->active.items);
    free (self->backoff.items);
    free (self->unschedulable.items);
    free (self);
    *self_p = NULL;
}

static void
s_activate (zs_queue_t *self, zs_qpod_t *qpod)
{
    s_detach (self, qpod);
    qpod->state = ZS_ACTIVE;
    s_push (self, &self->active, qpod);
}

void
zs_queue_add (zs_queue_t *self, zs_pod_t **pod_p, zs_profile_t *profile, int64_t now_ms)
{
    zs_pod_t *pod = *pod_p;
    *pod_p = NULL;
    zs_qpod_t *qpod = zhashx_lookup (self->pods, pod->key);
    if (qpod) {
        if (qpod->state == ZS_IN_FLIGHT) {
            //  Its cycle holds the old copy; the news waits for the outcome
            zs_pod_destroy (&pod);
            return;
        }
        s_detach (self, qpod);
        zs_pod_destroy (&qpod->pod);
        qpod->pod = pod;
        qpod->profile = profile;
        //  An update may make it fit: try again (after its back-off)
        if (qpod->backoff_until_ms > now_ms) {
            qpod->state = ZS_BACKOFF;
            s_push (self, &self->backoff, qpod);
        } else {
            qpod->state = ZS_ACTIVE;
            s_push (self, &self->active, qpod);
        }
        return;
    }
    qpod = calloc (1, sizeof *qpod);
    if (!qpod) {
        zs_pod_destroy (&pod);
        return;
    }
    qpod->pod = pod;
    qpod->profile = profile;
    qpod->state = ZS_ACTIVE;
    qpod->queued_ms = now_ms;
    zhashx_insert (self->pods, pod->key, qpod);
    s_push (self, &self->active, qpod);
}

void
zs_queue_remove (zs_queue_t *self, const char *key)
{
    zs_qpod_t *qpod = zhashx_lookup (self->pods, key);
    if (!qpod)
        return;
    if (qpod->state == ZS_IN_FLIGHT) {
        qpod->gone = true;
        return;
    }
    s_detach (self, qpod);
    zhashx_delete (self->pods, key);
}

zs_qpod_t *
zs_queue_lookup (zs_queue_t *self, const char *key)
{
    return zhashx_lookup (self->pods, key);
}

zs_qpod_t *
zs_queue_pop (zs_queue_t *self)
{
    if (!self->active.count)
        return NULL;
    zs_qpod_t *qpod = self->active.items[0];
    s_heap_remove (self, &self->active, qpod);
    qpod->state = ZS_IN_FLIGHT;
    qpod->attempts++;
    return qpod;
}

void
zs_queue_done (zs_queue_t *self, zs_qpod_t *qpod)
{
    zhashx_delete (self->pods, qpod->pod->key);
}

void
zs_queue_backoff (zs_queue_t *self, zs_qpod_t *qpod, int64_t now_ms)
{
    if (qpod->gone) {
        zs_queue_done (self, qpod);
        return;
    }
    int64_t backoff = self->initial_backoff_ms;
    for (int i = 1; i < qpod->attempts && backoff < self->max_backoff_ms; i++)
        backoff *= 2;
    if (backoff > self->max_backoff_ms)
        backoff = self->max_backoff_ms;
    qpod->backoff_until_ms = now_ms + backoff;
    qpod->state = ZS_BACKOFF;
    s_push (self, &self->backoff, qpod);
}

void
zs_queue_unschedulable (zs_queue_t *self, zs_qpod_t *qpod, uint32_t events,
                        int64_t now_ms)
{
    if (qpod->gone) {
        zs_queue_done (self, qpod);
        return;
    }
    //  Its back-off still applies when an event moves it (out of memory
    //  for the list, it stays in the back-off queue and is retried)
    zs_queue_backoff (self, qpod, now_ms);
    s_heap_remove (self, &self->backoff, qpod);
    if (s_append (&self->unschedulable, qpod) != 0) {
        s_push (self, &self->backoff, qpod);
        return;
    }
    qpod->state = ZS_UNSCHEDULABLE;
    qpod->events = events ? events : ~0u;
    qpod->unschedulable_since_ms = now_ms;
}

static void
s_wake (zs_queue_t *self, zs_qpod_t *qpod, int64_t now_ms)
{
    s_detach (self, qpod);
    if (qpod->backoff_until_ms > now_ms) {
        qpod->state = ZS_BACKOFF;
        s_push (self, &self->backoff, qpod);
    } else {
        qpod->state = ZS_ACTIVE;
        s_push (self, &self->active, qpod);
    }
}

void
zs_queue_reprofile (zs_queue_t *self, zs_profiles_t *profiles, zs_profile_t *sort)
{
    self->sort = sort;
    zlistx_t *gone = zlistx_new ();
    for (zs_qpod_t *qpod = zhashx_first (self->pods); qpod;
         qpod = zhashx_next (self->pods)) {
        qpod->profile = zs_profiles_find (profiles, qpod->pod->view.scheduler_name);
        if (qpod->profile)
            continue;
        if (qpod->state == ZS_IN_FLIGHT) {
            qpod->gone = true;
            qpod->profile = sort;
        } else if (gone)
            zlistx_add_end (gone, qpod->pod->key);
    }
    for (const char *key = gone ? zlistx_first (gone) : NULL; key;
         key = zlistx_next (gone))
        zs_queue_remove (self, key);
    zlistx_destroy (&gone);
    //  The order may have changed with the queue sort plugin: push again
    size_t count = self->active.count;
    zs_qpod_t **items = count ? malloc (count * sizeof *items) : NULL;
    if (items) {
        memcpy (items, self->active.items, count * sizeof *items);
        self->active.count = 0;
        for (size_t i = 0; i < count; i++)
            s_push (self, &self->active, items[i]);
        free (items);
    }
}

//  Wakes the unschedulable pods waiting for one of events, or (events 0)
//  unschedulable since max_ms or more before now_ms.
static void
s_wake_unschedulable (zs_queue_t *self, uint32_t events, int64_t max_ms, int64_t now_ms)
{
    //  From the end: waking one moves the last item into its place
    for (size_t i = self->unschedulable.count; i-- > 0;) {
        zs_qpod_t *qpod = self->unschedulable.items[i];
        if (events ? (qpod->events & events) != 0
                   : now_ms - qpod->unschedulable_since_ms >= max_ms)
            s_wake (self, qpod, now_ms);
    }
}

void
zs_queue_event (zs_queue_t *self, uint32_t event, int64_t now_ms)
{
    if (event)
        s_wake_unschedulable (self, event, 0, now_ms);
}

int64_t
zs_queue_flush (zs_queue_t *self, int64_t now_ms)
{
    while (self->backoff.count && self->backoff.items[0]->backoff_until_ms <= now_ms)
        s_activate (self, self->backoff.items[0]);
    //  The 5-minute sweep walks every unschedulable pod: at most every 10 s
    if (self->unschedulable.count && now_ms - self->last_sweep_ms >= 10000) {
        self->last_sweep_ms = now_ms;
        s_wake_unschedulable (self, 0, S_UNSCHEDULABLE_MAX_MS, now_ms);
    }
    return self->backoff.count ? self->backoff.items[0]->backoff_until_ms - now_ms : -1;
}

size_t
zs_queue_active (zs_queue_t *self)
{
    return self->active.count;
}

size_t
zs_queue_backoff_count (zs_queue_t *self)
{
    return self->backoff.count;
}

size_t
zs_queue_unschedulable_count (zs_queue_t *self)
{
    return self->unschedulable.count;
}
