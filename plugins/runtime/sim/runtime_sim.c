/*  runtime_sim - the simulated container runtime (sim.so).

    No processes: a sandbox and each container are small records, and a
    container's life (start delay, run time, exit code, probe answers) is
    read from its pod's sim.zube.io/ annotations (docs/runtime-sim.md).
    Time comes from the host table only (monotonic_ns for timers, time_ms
    for the timestamps reported), so a test drives it with a fake clock.

    Built for one process hosting thousands of simulated nodes:

    - records live in chunked pools (stable addresses, no per-record
      malloc); an id is the record's unique number and its slot, so a
      lookup is an array index and a compare, with no hash table;
    - strings many records share (node, namespace, container names,
      images) are interned with a reference count; each interned node
      name heads the list of its sandboxes, so listing by node visits
      that node's pods only;
    - pending timers (a delayed start, the end of a run) sit in one binary
      heap keyed by due time: O(log n) to add, move or fire one, and
      nothing is visited while nothing is due;
    - every operation first fires the timers already due, so a status
      always reflects the current time, and changes are queued in time
      order for the next tick.

    With state_dir, the records are written to DIR/sim-state from tick at
    most every state_interval, and at close; open reads them back, and
    timers resume from the wall clock. A write appends the records that
    changed since the last one (a journal: a record again, or its
    removal), with one fsync; once the appended bytes outgrow the last
    full write, the whole file is written anew (tmp file, fsync, rename).
    So a write costs what changed, not every pod the process hosts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "zube/runtime.h"
#include "core.pb-c.h"
#include "sim_behaviour.h"

#define S_NONE UINT32_MAX
#define S_CHUNK_BITS 10
#define S_CHUNK_SIZE (1u << S_CHUNK_BITS)
#define S_STATE_FILE "sim-state"
#define S_STATE_MAGIC "zube-sim-state"
#define S_STATE_VERSION 1
#define S_DEFAULT_INTERVAL_MS 100
//  The journal is compacted once it exceeds the last full write by this
#define S_JOURNAL_SLACK (256 * 1024)
//  Widths of the fixed status fields (runtime.h), NUL included.
#define S_NODE_MAX 256
#define S_UID_MAX 64
#define S_NAME_MAX 256

//  ---------------------------------------------------------------------
//  Interned strings

typedef struct {
    uint32_t refs;
    uint32_t hash;
    //  Node names only: the first sandbox on the node (S_NONE: none).
    uint32_t sandboxes;
    char text[];
} s_name_t;

typedef struct {
    s_name_t **slots;
    uint32_t capacity; //  a power of two, or 0
    uint32_t count;
} s_names_t;

//  ---------------------------------------------------------------------
//  Records

typedef enum {
    S_REASON_NONE = 0,
    S_REASON_COMPLETED,
    S_REASON_ERROR,
    S_REASON_OOMKILLED,
    S_REASON_COUNT
} s_reason_t;

static const char *s_reason_names[S_REASON_COUNT] = {
    [S_REASON_NONE] = "",
    [S_REASON_COMPLETED] = "Completed",
    [S_REASON_ERROR] = "Error",
    [S_REASON_OOMKILLED] = "OOMKilled",
};

//  Both kinds of record begin with unique (0: a free slot) and link (the
//  next record of the owner's list, or of the free list).
typedef struct {
    uint64_t unique;
    uint32_t link;      //  next sandbox on the same node
    uint32_t node_prev; //  previous sandbox on the same node
    s_name_t *node;
    s_name_t *pod_namespace;
    //  names[count], images[count] (interned; init containers first),
    //  then "pod_name\0pod_uid\0" and n_annotations pairs "key\0value\0"
    //  with the sim.zube.io/ prefix removed.
    char *blob;
    int64_t created_ms;
    uint32_t containers; //  first container of the sandbox
    uint16_t n_init;
    uint16_t n_regular;
    uint16_t n_annotations;
    uint8_t state;
    uint8_t host_network;
    uint8_t marked; //  in the journal's list of changes
} s_sandbox_t;

typedef struct {
    uint64_t unique;
    uint32_t link; //  next container of the same sandbox
    uint32_t sandbox;
    //  Wall-clock milliseconds (0: not yet).
    int64_t created_ms;
    int64_t started_ms;
    int64_t finished_ms;
    //  Monotonic milliseconds of the pending timer, when heap != S_NONE.
    int64_t due;
    uint32_t heap;
    uint32_t attempt;
    int32_t exit_code;
    uint16_t index; //  into the sandbox's names/images
    uint8_t init;
    uint8_t state;
    uint8_t reason;
    uint8_t starting; //  CREATED with its start delay running
    uint8_t marked;   //  in the journal's list of changes
} s_container_t;

//  Slots in chunks of S_CHUNK_SIZE records that never move.
typedef struct {
    char **chunks;
    uint32_t chunk_count;
    uint32_t high;      //  slots ever used: [0, high)
    uint32_t free_head; //  S_NONE: none
    uint32_t live;
    size_t record_size;
} s_pool_t;

typedef struct {
    uint64_t unique;
    uint32_t slot;
    uint8_t state;
} s_event_t;

//  A record that changed since the last write of the state file
typedef enum {
    S_MARK_SANDBOX,
    S_MARK_CONTAINER,
    S_MARK_SANDBOX_GONE,
    S_MARK_CONTAINER_GONE
} s_mark_kind_t;

typedef struct {
    uint64_t unique;
    uint32_t slot;
    uint8_t kind;
} s_mark_t;

struct zube_runtime_backend_t {
    const zube_host_t *host;
    char error[1024];
    char *state_dir;
    char *missing_images; //  ",a,b," for a cheap search, or NULL
    int64_t state_interval_ms;
    int64_t wall_offset_ms; //  wall = monotonic + offset
    uint64_t next_unique;

    s_names_t names;
    s_pool_t sandboxes;
    s_pool_t containers;

    uint32_t *heap; //  container slots
    uint32_t heap_count;
    uint32_t heap_capacity;

    s_event_t *events;
    uint32_t event_count;
    uint32_t event_capacity;

    bool dirty;
    bool save_failed_logged;
    int64_t saved_at; //  monotonic ms of the last write

    //  The journal: changes since the last write, in order; the next
    //  write is a full one when full_save (no full write yet by this
    //  process, or a change was lost to memory) or when journal_bytes
    //  outgrew snapshot_bytes, the size of the last full write.
    s_mark_t *marks;
    uint32_t mark_count;
    uint32_t mark_capacity;
    bool full_save;
    bool loading;
    size_t snapshot_bytes;
    size_t journal_bytes;

    //  Counted since the last tick; handed to the host's counters there.
    uint64_t heap_steps;
    uint64_t timers_fired;
};

typedef zube_runtime_backend_t s_sim_t;

//  ---------------------------------------------------------------------
//  Helpers

static zube_status_t
s_fail (s_sim_t *self, zube_status_t status, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static zube_status_t
s_fail (s_sim_t *self, zube_status_t status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof self->error, format, args);
    va_end (args);
    return status;
}

static int64_t
s_now (s_sim_t *self)
{
    return self->host->monotonic_ns (self->host) / 1000000;
}

static int64_t
s_wall (s_sim_t *self, int64_t monotonic_ms)
{
    return monotonic_ms + self->wall_offset_ms;
}

static uint32_t
s_hash (const char *text)
{
    uint32_t hash = 2166136261u;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        hash = (hash ^ *c) * 16777619u;
    return hash;
}

//  The interned name TEXT, or NULL.
static s_name_t *
s_names_find (s_names_t *names, const char *text)
{
    if (!names->capacity)
        return NULL;
    uint32_t hash = s_hash (text);
    uint32_t mask = names->capacity - 1;
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        s_name_t *name = names->slots[i];
        if (!name)
            return NULL;
        if (name->hash == hash && strcmp (name->text, text) == 0)
            return name;
    }
}

static bool
s_names_grow (s_names_t *names)
{
    uint32_t capacity = names->capacity ? names->capacity * 2 : 64;
    s_name_t **slots = calloc (capacity, sizeof *slots);
    if (!slots)
        return false;
    for (uint32_t i = 0; i < names->capacity; i++) {
        s_name_t *name = names->slots[i];
        if (!name)
            continue;
        uint32_t j = name->hash & (capacity - 1);
        while (slots[j])
            j = (j + 1) & (capacity - 1);
        slots[j] = name;
    }
    free (names->slots);
    names->slots = slots;
    names->capacity = capacity;
    return true;
}

//  TEXT interned, with one more reference; NULL if out of memory.
static s_name_t *
s_names_get (s_names_t *names, const char *text)
{
    s_name_t *name = s_names_find (names, text);
    if (name) {
        name->refs++;
        return name;
    }
    if ((names->count + 1) * 2 > names->capacity && !s_names_grow (names))
        return NULL;
    size_t length = strlen (text);
    name = malloc (sizeof *name + length + 1);
    if (!name)
        return NULL;
    name->refs = 1;
    name->hash = s_hash (text);
    name->sandboxes = S_NONE;
    memcpy (name->text, text, length + 1);
    uint32_t mask = names->capacity - 1;
    uint32_t i = name->hash & mask;
    while (names->slots[i])
        i = (i + 1) & mask;
    names->slots[i] = name;
    names->count++;
    return name;
}

//  Drops a reference; the last one removes the name (linear probing with
//  backward shift, so no tombstones pile up).
static void
s_names_put (s_names_t *names, s_name_t *name)
{
    if (!name || --name->refs > 0)
        return;
    uint32_t mask = names->capacity - 1;
    uint32_t i = name->hash & mask;
    while (names->slots[i] != name)
        i = (i + 1) & mask;
    names->slots[i] = NULL;
    for (uint32_t j = (i + 1) & mask; names->slots[j]; j = (j + 1) & mask) {
        uint32_t home = names->slots[j]->hash & mask;
        //  Move j into the hole at i unless its home lies in (i, j].
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            names->slots[i] = names->slots[j];
            names->slots[j] = NULL;
            i = j;
        }
    }
    names->count--;
    free (name);
}

static void
s_names_destroy (s_names_t *names)
{
    for (uint32_t i = 0; i < names->capacity; i++)
        free (names->slots[i]);
    free (names->slots);
    *names = (s_names_t) {0};
}

static void *
s_pool_at (s_pool_t *pool, uint32_t slot)
{
    return pool->chunks[slot >> S_CHUNK_BITS]
           + (size_t) (slot & (S_CHUNK_SIZE - 1)) * pool->record_size;
}

static s_sandbox_t *
s_sandbox_at (s_sim_t *self, uint32_t slot)
{
    return s_pool_at (&self->sandboxes, slot);
}

static s_container_t *
s_container_at (s_sim_t *self, uint32_t slot)
{
    return s_pool_at (&self->containers, slot);
}

//  Makes sure slot exists (its chunk allocated); false if out of memory.
static bool
s_pool_reserve (s_pool_t *pool, uint32_t slot)
{
    uint32_t chunk = slot >> S_CHUNK_BITS;
    if (chunk >= pool->chunk_count) {
        uint32_t count = chunk + 1;
        char **chunks = realloc (pool->chunks, count * sizeof *chunks);
        if (!chunks)
            return false;
        for (uint32_t i = pool->chunk_count; i < count; i++)
            chunks[i] = NULL;
        pool->chunks = chunks;
        pool->chunk_count = count;
    }
    if (!pool->chunks[chunk]) {
        pool->chunks[chunk] = calloc (S_CHUNK_SIZE, pool->record_size);
        if (!pool->chunks[chunk])
            return false;
    }
    if (slot >= pool->high)
        pool->high = slot + 1;
    return true;
}

//  A free slot (zeroed), or S_NONE if out of memory.
static uint32_t
s_pool_alloc (s_pool_t *pool)
{
    uint32_t slot;
    if (pool->free_head != S_NONE) {
        slot = pool->free_head;
        uint32_t *link = (uint32_t *) ((char *) s_pool_at (pool, slot) + sizeof (uint64_t));
        pool->free_head = *link;
    }
    else {
        if (pool->high == S_NONE - 1 || !s_pool_reserve (pool, pool->high))
            return S_NONE;
        slot = pool->high - 1;
    }
    memset (s_pool_at (pool, slot), 0, pool->record_size);
    pool->live++;
    return slot;
}

static void
s_pool_free (s_pool_t *pool, uint32_t slot)
{
    char *record = s_pool_at (pool, slot);
    memset (record, 0, pool->record_size);
    memcpy (record + sizeof (uint64_t), &pool->free_head, sizeof (uint32_t));
    pool->free_head = slot;
    pool->live--;
}

static void
s_pool_destroy (s_pool_t *pool)
{
    for (uint32_t i = 0; i < pool->chunk_count; i++)
        free (pool->chunks[i]);
    free (pool->chunks);
    pool->chunks = NULL;
    pool->chunk_count = pool->high = pool->live = 0;
    pool->free_head = S_NONE;
}

//  An id: the unique number and the slot, 24 hex digits.
static void
s_format_id (uint64_t unique, uint32_t slot, char *id, size_t id_size)
{
    snprintf (id, id_size, "%016" PRIx64 "%08" PRIx32, unique, slot);
}

static bool
s_parse_id (const char *id, uint64_t *unique_p, uint32_t *slot_p)
{
    if (!id || strlen (id) != 24)
        return false;
    uint64_t unique = 0;
    uint32_t slot = 0;
    for (int i = 0; i < 24; i++) {
        char c = id[i];
        unsigned digit;
        if (c >= '0' && c <= '9')
            digit = (unsigned) (c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (unsigned) (c - 'a' + 10);
        else
            return false;
        if (i < 16)
            unique = unique << 4 | digit;
        else
            slot = slot << 4 | digit;
    }
    *unique_p = unique;
    *slot_p = slot;
    return unique != 0;
}

static uint32_t
s_find (s_pool_t *pool, const char *id)
{
    uint64_t unique;
    uint32_t slot;
    if (!s_parse_id (id, &unique, &slot) || slot >= pool->high)
        return S_NONE;
    if (*(uint64_t *) s_pool_at (pool, slot) != unique)
        return S_NONE;
    return slot;
}

//  ---------------------------------------------------------------------
//  Sandbox blob accessors

static uint32_t
s_spec_count (const s_sandbox_t *sandbox)
{
    return (uint32_t) sandbox->n_init + sandbox->n_regular;
}

static s_name_t **
s_spec_names (const s_sandbox_t *sandbox)
{
    return (s_name_t **) sandbox->blob;
}

static s_name_t **
s_spec_images (const s_sandbox_t *sandbox)
{
    return (s_name_t **) sandbox->blob + s_spec_count (sandbox);
}

static const char *
s_pod_name (const s_sandbox_t *sandbox)
{
    return sandbox->blob + 2 * s_spec_count (sandbox) * sizeof (s_name_t *);
}

static const char *
s_pod_uid (const s_sandbox_t *sandbox)
{
    const char *name = s_pod_name (sandbox);
    return name + strlen (name) + 1;
}

static const char *
s_annotations (const s_sandbox_t *sandbox)
{
    const char *uid = s_pod_uid (sandbox);
    return uid + strlen (uid) + 1;
}

//  The value of sim.zube.io/BASE.CONTAINER, else (for a regular
//  container only) sim.zube.io/BASE; NULL when neither is set. Init
//  containers take only annotations with their name, so a pod-wide
//  run-duration or exit-code does not keep the pod from initialising.
static const char *
s_behaviour (const s_sandbox_t *sandbox, const char *base, const char *container, bool init)
{
    size_t base_length = strlen (base);
    const char *general = NULL;
    const char *p = s_annotations (sandbox);
    for (uint16_t i = 0; i < sandbox->n_annotations; i++) {
        const char *key = p;
        const char *value = key + strlen (key) + 1;
        p = value + strlen (value) + 1;
        if (strncmp (key, base, base_length) != 0)
            continue;
        if (key[base_length] == 0)
            general = value;
        else if (key[base_length] == '.' && container
                 && strcmp (key + base_length + 1, container) == 0)
            return value;
    }
    return init ? NULL : general;
}

//  ---------------------------------------------------------------------
//  The timer heap, keyed by (due, unique)

static bool
s_before (s_sim_t *self, uint32_t a, uint32_t b)
{
    s_container_t *x = s_container_at (self, a), *y = s_container_at (self, b);
    return x->due < y->due || (x->due == y->due && x->unique < y->unique);
}

static void
s_heap_set (s_sim_t *self, uint32_t index, uint32_t slot)
{
    self->heap[index] = slot;
    s_container_at (self, slot)->heap = index;
}

static void
s_heap_up (s_sim_t *self, uint32_t index)
{
    uint32_t slot = self->heap[index];
    while (index > 0) {
        uint32_t parent = (index - 1) / 2;
        self->heap_steps++;
        if (!s_before (self, slot, self->heap[parent]))
            break;
        s_heap_set (self, index, self->heap[parent]);
        index = parent;
    }
    s_heap_set (self, index, slot);
}

static void
s_heap_down (s_sim_t *self, uint32_t index)
{
    uint32_t slot = self->heap[index];
    while (true) {
        uint32_t child = 2 * index + 1;
        if (child >= self->heap_count)
            break;
        if (child + 1 < self->heap_count && s_before (self, self->heap[child + 1], self->heap[child]))
            child++;
        self->heap_steps++;
        if (!s_before (self, self->heap[child], slot))
            break;
        s_heap_set (self, index, self->heap[child]);
        index = child;
    }
    s_heap_set (self, index, slot);
}

static void
s_timer_cancel (s_sim_t *self, uint32_t slot)
{
    s_container_t *container = s_container_at (self, slot);
    uint32_t index = container->heap;
    if (index == S_NONE)
        return;
    container->heap = S_NONE;
    uint32_t last = self->heap[--self->heap_count];
    if (index == self->heap_count)
        return;
    s_heap_set (self, index, last);
    s_heap_up (self, index);
    s_heap_down (self, s_container_at (self, last)->heap);
}

//  Sets (or moves) the container's timer to DUE; false if out of memory.
static bool
s_timer_set (s_sim_t *self, uint32_t slot, int64_t due)
{
    s_container_t *container = s_container_at (self, slot);
    if (container->heap != S_NONE) {
        container->due = due;
        s_heap_up (self, container->heap);
        s_heap_down (self, container->heap);
        return true;
    }
    if (self->heap_count == self->heap_capacity) {
        uint32_t capacity = self->heap_capacity ? self->heap_capacity * 2 : 256;
        uint32_t *heap = realloc (self->heap, capacity * sizeof *heap);
        if (!heap)
            return false;
        self->heap = heap;
        self->heap_capacity = capacity;
    }
    container->due = due;
    uint32_t index = self->heap_count++;
    s_heap_set (self, index, slot);
    s_heap_up (self, index);
    return true;
}

//  ---------------------------------------------------------------------
//  State changes

//  Notes that a record changed (or went) for the next write of the state
//  file. Out of memory the next write is a full one instead.
static void
s_mark (s_sim_t *self, s_mark_kind_t kind, uint32_t slot, uint64_t unique)
{
    self->dirty = true;
    if (!self->state_dir || self->loading || self->full_save)
        return;
    if (self->mark_count == self->mark_capacity) {
        uint32_t capacity = self->mark_capacity ? self->mark_capacity * 2 : 256;
        s_mark_t *marks = realloc (self->marks, capacity * sizeof *marks);
        if (!marks) {
            self->full_save = true;
            return;
        }
        self->marks = marks;
        self->mark_capacity = capacity;
    }
    self->marks[self->mark_count++] = (s_mark_t) {.unique = unique, .slot = slot, .kind = kind};
}

//  A record is marked once until the next write (every marked record
//  is in the list; none is while a full write is due).
static void
s_mark_once (s_sim_t *self, uint8_t *marked, s_mark_kind_t kind, uint32_t slot,
             uint64_t unique)
{
    self->dirty = true;
    if (*marked || self->full_save || self->loading)
        return;
    s_mark (self, kind, slot, unique);
    *marked = !self->full_save;
}

static void
s_mark_sandbox (s_sim_t *self, uint32_t slot)
{
    s_sandbox_t *sandbox = s_sandbox_at (self, slot);
    s_mark_once (self, &sandbox->marked, S_MARK_SANDBOX, slot, sandbox->unique);
}

static void
s_mark_container (s_sim_t *self, uint32_t slot)
{
    s_container_t *container = s_container_at (self, slot);
    s_mark_once (self, &container->marked, S_MARK_CONTAINER, slot, container->unique);
}

//  Forgets the marks once written: the records they name are clean.
static void
s_marks_clear (s_sim_t *self)
{
    for (uint32_t i = 0; i < self->mark_count; i++) {
        s_mark_t *mark = &self->marks[i];
        if (mark->kind == S_MARK_SANDBOX && mark->slot < self->sandboxes.high
            && s_sandbox_at (self, mark->slot)->unique == mark->unique)
            s_sandbox_at (self, mark->slot)->marked = 0;
        else if (mark->kind == S_MARK_CONTAINER && mark->slot < self->containers.high
                 && s_container_at (self, mark->slot)->unique == mark->unique)
            s_container_at (self, mark->slot)->marked = 0;
    }
    self->mark_count = 0;
}

static void
s_event (s_sim_t *self, uint32_t slot, uint8_t state)
{
    s_mark_container (self, slot);
    if (self->event_count == self->event_capacity) {
        uint32_t capacity = self->event_capacity ? self->event_capacity * 2 : 64;
        s_event_t *events = realloc (self->events, capacity * sizeof *events);
        if (!events) {
            //  The host still sees the state in status and lists.
            if (self->host->log_enabled (self->host, ZUBE_LOG_WARN))
                self->host->log (self->host, ZUBE_LOG_WARN,
                                 "msg=\"out of memory: an event is lost\"");
            return;
        }
        self->events = events;
        self->event_capacity = capacity;
    }
    self->events[self->event_count++] =
        (s_event_t) {.unique = s_container_at (self, slot)->unique, .slot = slot, .state = state};
}

//  The container's behaviour on exit: code and reason.
static void
s_exit_behaviour (s_sim_t *self, s_container_t *container, int *code_p, uint8_t *reason_p)
{
    s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
    const char *name = s_spec_names (sandbox)[container->index]->text;
    if (sim_bool (s_behaviour (sandbox, "oom", name, container->init)) == 1) {
        *code_p = 137;
        *reason_p = S_REASON_OOMKILLED;
        return;
    }
    int code = sim_exit_code (s_behaviour (sandbox, "exit-code", name, container->init));
    *code_p = code < 0 ? 0 : code;
    *reason_p = *code_p == 0 ? S_REASON_COMPLETED : S_REASON_ERROR;
}

static void
s_exit (s_sim_t *self, uint32_t slot, int64_t at, int code, uint8_t reason)
{
    s_container_t *container = s_container_at (self, slot);
    s_timer_cancel (self, slot);
    container->state = ZUBE_RUNTIME_CONTAINER_EXITED;
    container->starting = 0;
    container->finished_ms = s_wall (self, at);
    container->exit_code = code;
    container->reason = reason;
    s_event (self, slot, ZUBE_RUNTIME_CONTAINER_EXITED);
}

//  Run time: run-duration, forever by default (0 for init containers);
//  an oom container without one is killed at once.
static int64_t
s_run_ms (s_sim_t *self, s_container_t *container)
{
    s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
    const char *name = s_spec_names (sandbox)[container->index]->text;
    const char *text = s_behaviour (sandbox, "run-duration", name, container->init);
    if (text && strcmp (text, "forever") != 0)
        return sim_duration_ms (text);
    if (text)
        return -1;
    if (container->init || sim_bool (s_behaviour (sandbox, "oom", name, false)) == 1)
        return 0;
    return -1;
}

//  Created -> Running at AT; schedules the end of the run.
static bool
s_run (s_sim_t *self, uint32_t slot, int64_t at)
{
    s_container_t *container = s_container_at (self, slot);
    container->state = ZUBE_RUNTIME_CONTAINER_RUNNING;
    container->starting = 0;
    container->started_ms = s_wall (self, at);
    s_event (self, slot, ZUBE_RUNTIME_CONTAINER_RUNNING);
    int64_t run_ms = s_run_ms (self, container);
    if (run_ms < 0) {
        s_timer_cancel (self, slot);
        return true;
    }
    return s_timer_set (self, slot, at + run_ms);
}

//  Fires every timer due by NOW, earliest first.
static void
s_advance (s_sim_t *self, int64_t now)
{
    while (self->heap_count > 0) {
        uint32_t slot = self->heap[0];
        s_container_t *container = s_container_at (self, slot);
        int64_t due = container->due;
        if (due > now)
            break;
        self->timers_fired++;
        if (container->state == ZUBE_RUNTIME_CONTAINER_CREATED && container->starting) {
            if (!s_run (self, slot, due))
                s_timer_cancel (self, slot);
        }
        else if (container->state == ZUBE_RUNTIME_CONTAINER_RUNNING) {
            int code;
            uint8_t reason;
            s_exit_behaviour (self, container, &code, &reason);
            s_exit (self, slot, due, code, reason);
        }
        else
            s_timer_cancel (self, slot);
    }
}

static void
s_begin (s_sim_t *self)
{
    self->error[0] = 0;
    s_advance (self, s_now (self));
}

//  ---------------------------------------------------------------------
//  Status

static void
s_copy (char *to, size_t size, const char *from)
{
    size_t length = strlen (from);
    if (length >= size)
        length = size - 1;
    memcpy (to, from, length);
    to[length] = 0;
}

static void
s_ip (uint32_t slot, char *ip, size_t size)
{
    uint32_t n = slot + 1;
    snprintf (ip, size, "10.%u.%u.%u", (n >> 16) & 255, (n >> 8) & 255, n & 255);
}

static void
s_sandbox_fill (s_sim_t *self, uint32_t slot, zube_runtime_sandbox_status_t *status)
{
    s_sandbox_t *sandbox = s_sandbox_at (self, slot);
    memset (status, 0, sizeof *status);
    status->struct_size = sizeof *status;
    s_format_id (sandbox->unique, slot, status->id, sizeof status->id);
    s_copy (status->node_name, sizeof status->node_name, sandbox->node->text);
    s_copy (status->pod_namespace, sizeof status->pod_namespace, sandbox->pod_namespace->text);
    s_copy (status->pod_name, sizeof status->pod_name, s_pod_name (sandbox));
    s_copy (status->pod_uid, sizeof status->pod_uid, s_pod_uid (sandbox));
    status->state = sandbox->state;
    if (!sandbox->host_network && sandbox->state == ZUBE_RUNTIME_SANDBOX_READY)
        s_ip (slot, status->ip, sizeof status->ip);
    status->created_ms = sandbox->created_ms;
}

//  STATE other than the container's own: the status it had then (a
//  RUNNING event for a container that has exited since).
static void
s_container_fill (s_sim_t *self, uint32_t slot, uint8_t state,
                  zube_runtime_container_status_t *status)
{
    s_container_t *container = s_container_at (self, slot);
    s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
    memset (status, 0, sizeof *status);
    status->struct_size = sizeof *status;
    s_format_id (container->unique, slot, status->id, sizeof status->id);
    s_format_id (sandbox->unique, container->sandbox, status->sandbox_id,
                 sizeof status->sandbox_id);
    s_copy (status->name, sizeof status->name, s_spec_names (sandbox)[container->index]->text);
    status->init = container->init;
    status->attempt = container->attempt;
    status->state = state;
    status->created_ms = container->created_ms;
    if (state != ZUBE_RUNTIME_CONTAINER_CREATED)
        status->started_ms = container->started_ms;
    if (state == ZUBE_RUNTIME_CONTAINER_EXITED) {
        status->finished_ms = container->finished_ms;
        status->exit_code = container->exit_code;
        s_copy (status->reason, sizeof status->reason,
                container->reason < S_REASON_COUNT ? s_reason_names[container->reason] : "");
    }
    sim_image_normalize (s_spec_images (sandbox)[container->index]->text, status->image,
                         sizeof status->image);
    sim_image_id (status->image, status->image_id, sizeof status->image_id);
}

//  ---------------------------------------------------------------------
//  The state file

//  Writes TEXT as one token: bytes that would end it, and '%', as %XX;
//  the empty string as "%".
static void
s_put_token (FILE *file, const char *text)
{
    if (!*text) {
        fputs (" %", file);
        return;
    }
    fputc (' ', file);
    const unsigned char *c = (const unsigned char *) text;
    while (*c) {
        const unsigned char *run = c;
        while (*c > ' ' && *c != '%' && *c != 0x7f)
            c++;
        if (c > run)
            fwrite (run, 1, (size_t) (c - run), file);
        if (*c)
            fprintf (file, "%%%02X", *c++);
    }
}

static void
s_put_sandbox (s_sim_t *self, FILE *file, uint32_t slot)
{
    s_sandbox_t *sandbox = s_sandbox_at (self, slot);
    fprintf (file, "S %" PRIu32 " %" PRIu64 " %" PRId64 " %u %u", slot, sandbox->unique,
             sandbox->created_ms, sandbox->state, sandbox->host_network);
    s_put_token (file, sandbox->node->text);
    s_put_token (file, sandbox->pod_namespace->text);
    s_put_token (file, s_pod_name (sandbox));
    s_put_token (file, s_pod_uid (sandbox));
    fprintf (file, " %u %u", sandbox->n_init, sandbox->n_regular);
    for (uint32_t i = 0; i < s_spec_count (sandbox); i++) {
        s_put_token (file, s_spec_names (sandbox)[i]->text);
        s_put_token (file, s_spec_images (sandbox)[i]->text);
    }
    fprintf (file, " %u", sandbox->n_annotations);
    const char *p = s_annotations (sandbox);
    for (uint32_t i = 0; i < 2u * sandbox->n_annotations; i++) {
        s_put_token (file, p);
        p += strlen (p) + 1;
    }
    fputc ('\n', file);
}

static void
s_put_container (s_sim_t *self, FILE *file, uint32_t slot)
{
    s_container_t *container = s_container_at (self, slot);
    fprintf (file,
             "C %" PRIu32 " %" PRIu64 " %" PRIu32 " %u %u %" PRIu32 " %u %u %" PRId64
             " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId32 " %u\n",
             slot, container->unique, container->sandbox, container->index,
             container->init, container->attempt, container->state, container->starting,
             container->created_ms, container->started_ms, container->finished_ms,
             container->heap != S_NONE ? s_wall (self, container->due) : (int64_t) -1,
             container->exit_code, container->reason);
}

//  Flushes, syncs and closes FILE; its size in *size_p.
static zube_status_t
s_file_finish (s_sim_t *self, FILE *file, const char *path, size_t *size_p)
{
    zube_status_t status = ZUBE_OK;
    long size = ftell (file);
    if (fflush (file) != 0 || ferror (file))
        status = s_fail (self, ZUBE_UNAVAILABLE, "sim: write %s: %s", path, strerror (errno));
    else if (fsync (fileno (file)) != 0)
        status = s_fail (self, ZUBE_UNAVAILABLE, "sim: fsync %s: %s", path, strerror (errno));
    if (fclose (file) != 0 && status == ZUBE_OK)
        status = s_fail (self, ZUBE_UNAVAILABLE, "sim: close %s: %s", path, strerror (errno));
    *size_p = size > 0 ? (size_t) size : 0;
    return status;
}

//  The whole state, anew
static zube_status_t
s_save (s_sim_t *self)
{
    char path[4096], tmp[4200];
    snprintf (path, sizeof path, "%s/" S_STATE_FILE, self->state_dir);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "we");
    if (!file)
        return s_fail (self, ZUBE_UNAVAILABLE, "sim: %s: %s", tmp, strerror (errno));
    setvbuf (file, NULL, _IOFBF, 1 << 16);
    int64_t now = s_now (self);
    fprintf (file, S_STATE_MAGIC " %d %" PRId64 " %" PRIu64 "\n", S_STATE_VERSION,
             s_wall (self, now), self->next_unique);
    for (uint32_t slot = 0; slot < self->sandboxes.high; slot++) {
        s_sandbox_t *sandbox = s_sandbox_at (self, slot);
        if (!sandbox->unique)
            continue;
        s_put_sandbox (self, file, slot);
        for (uint32_t c = sandbox->containers; c != S_NONE; c = s_container_at (self, c)->link)
            s_put_container (self, file, c);
    }
    size_t size = 0;
    zube_status_t status = s_file_finish (self, file, tmp, &size);
    if (status == ZUBE_OK && rename (tmp, path) != 0)
        status = s_fail (self, ZUBE_UNAVAILABLE, "sim: rename %s: %s", path, strerror (errno));
    if (status != ZUBE_OK) {
        unlink (tmp);
        return status;
    }
    //  The rename itself is durable once the directory is synced.
    int dir = open (self->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        fsync (dir);
        close (dir);
    }
    s_marks_clear (self);
    self->full_save = false;
    self->snapshot_bytes = size;
    self->journal_bytes = 0;
    self->dirty = false;
    self->saved_at = now;
    return ZUBE_OK;
}

//  What changed since the last write, appended: each changed record
//  again (a later line for a slot replaces the earlier one), "-S slot
//  unique" or "-C slot unique" for a removed one. A record that was
//  created and removed between two writes has only its removal.
static zube_status_t
s_append (s_sim_t *self)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/" S_STATE_FILE, self->state_dir);
    FILE *file = fopen (path, "ae");
    if (!file)
        return s_fail (self, ZUBE_UNAVAILABLE, "sim: %s: %s", path, strerror (errno));
    setvbuf (file, NULL, _IOFBF, 1 << 16);
    struct stat before;
    size_t start = fstat (fileno (file), &before) == 0 ? (size_t) before.st_size : 0;
    for (uint32_t i = 0; i < self->mark_count; i++) {
        const s_mark_t *mark = &self->marks[i];
        switch (mark->kind) {
        case S_MARK_SANDBOX:
            if (s_sandbox_at (self, mark->slot)->unique == mark->unique)
                s_put_sandbox (self, file, mark->slot);
            break;
        case S_MARK_CONTAINER:
            if (s_container_at (self, mark->slot)->unique == mark->unique)
                s_put_container (self, file, mark->slot);
            break;
        default:
            fprintf (file, "-%c %" PRIu32 " %" PRIu64 "\n",
                     mark->kind == S_MARK_SANDBOX_GONE ? 'S' : 'C', mark->slot, mark->unique);
        }
    }
    size_t end = 0;
    zube_status_t status = s_file_finish (self, file, path, &end);
    if (status != ZUBE_OK) {
        //  A torn tail is skipped at load; the next write is a full one
        self->full_save = true;
        return status;
    }
    s_marks_clear (self);
    self->journal_bytes += end > start ? end - start : 0;
    self->dirty = false;
    self->saved_at = s_now (self);
    return ZUBE_OK;
}

//  Saves when dirty, logging a failure once per run of failures.
static void
s_save_logged (s_sim_t *self)
{
    if (!self->state_dir || !self->dirty)
        return;
    char error[sizeof self->error];
    memcpy (error, self->error, sizeof error);
    bool full = self->full_save || self->journal_bytes > self->snapshot_bytes + S_JOURNAL_SLACK;
    if ((full ? s_save (self) : s_append (self)) == ZUBE_OK)
        self->save_failed_logged = false;
    else {
        if (!self->save_failed_logged && self->host->log_enabled (self->host, ZUBE_LOG_ERROR))
            self->host->log (self->host, ZUBE_LOG_ERROR,
                             "msg=\"cannot save the sim state\" error=\"%s\"", self->error);
        self->save_failed_logged = true;
        self->saved_at = s_now (self);
    }
    memcpy (self->error, error, sizeof error);
}

//  Splits LINE in place into at most max tokens (decoding %XX); the
//  count, or -1 when a token is malformed.
static int
s_tokens (char *line, char **tokens, int max)
{
    int count = 0;
    char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\n')
            p++;
        if (!*p)
            break;
        if (count == max)
            return -1;
        char *start = p, *out = p;
        while (*p && *p != ' ' && *p != '\n') {
            if (*p == '%') {
                if (p[1] == ' ' || p[1] == '\n' || p[1] == 0) {
                    p++;
                    continue; //  "%": the empty string
                }
                unsigned value;
                if (sscanf (p + 1, "%2x", &value) != 1)
                    return -1;
                *out++ = (char) value;
                p += 3;
            }
            else
                *out++ = *p++;
        }
        if (*p)
            p++;
        *out = 0;
        tokens[count++] = start;
    }
    return count;
}

static bool
s_number (const char *text, int64_t *value_p)
{
    char *end = NULL;
    errno = 0;
    long long value = strtoll (text, &end, 10);
    if (errno || end == text || *end)
        return false;
    *value_p = value;
    return true;
}

static void s_sandbox_release (s_sim_t *self, uint32_t slot);

//  Builds a sandbox record in SLOT from its parts; every string copied.
static zube_status_t s_sandbox_build (s_sim_t *self, uint32_t slot, const char *node,
                                      const char *pod_namespace, const char *pod_name,
                                      const char *pod_uid, uint16_t n_init,
                                      uint16_t n_regular, const char *const *names,
                                      const char *const *images, uint16_t n_annotations,
                                      const char *const *annotations);

static void s_container_link (s_sim_t *self, uint32_t slot);

static void s_container_remove (s_sim_t *self, uint32_t slot);

//  A journal line "-S slot unique" or "-C slot unique": the record went
//  (nothing when the slot no longer holds it).
static zube_status_t
s_load_removal (s_sim_t *self, char **tokens, uint64_t *max_unique)
{
    int64_t slot, unique;
    if (!s_number (tokens[1], &slot) || !s_number (tokens[2], &unique) || slot < 0
        || slot >= S_NONE - 1 || unique <= 0)
        return ZUBE_INTERNAL;
    if ((uint64_t) unique > *max_unique)
        *max_unique = (uint64_t) unique;
    if (tokens[0][1] == 'C') {
        if ((uint32_t) slot < self->containers.high
            && s_container_at (self, (uint32_t) slot)->unique == (uint64_t) unique)
            s_container_remove (self, (uint32_t) slot);
        return ZUBE_OK;
    }
    if ((uint32_t) slot >= self->sandboxes.high
        || s_sandbox_at (self, (uint32_t) slot)->unique != (uint64_t) unique)
        return ZUBE_OK;
    s_sandbox_t *sandbox = s_sandbox_at (self, (uint32_t) slot);
    while (sandbox->containers != S_NONE)
        s_container_remove (self, sandbox->containers);
    s_sandbox_release (self, (uint32_t) slot);
    s_pool_free (&self->sandboxes, (uint32_t) slot);
    return ZUBE_OK;
}

static zube_status_t
s_load_line (s_sim_t *self, char **tokens, int count, uint64_t *max_unique)
{
    int64_t v[16];
    if (tokens[0][0] == '-' && (tokens[0][1] == 'S' || tokens[0][1] == 'C') && !tokens[0][2]
        && count == 3)
        return s_load_removal (self, tokens, max_unique);
    if (tokens[0][0] == 'S' && count >= 12) {
        for (int i = 1; i <= 5; i++)
            if (!s_number (tokens[i], &v[i]))
                return ZUBE_INTERNAL;
        //  The journal's later line of a sandbox: only its state changes
        if (v[1] >= 0 && v[1] < self->sandboxes.high && v[2] > 0
            && s_sandbox_at (self, (uint32_t) v[1])->unique == (uint64_t) v[2]) {
            if (v[4] != ZUBE_RUNTIME_SANDBOX_READY && v[4] != ZUBE_RUNTIME_SANDBOX_NOT_READY)
                return ZUBE_INTERNAL;
            s_sandbox_at (self, (uint32_t) v[1])->state = (uint8_t) v[4];
            return ZUBE_OK;
        }
        int64_t n_init, n_regular, n_annotations;
        if (!s_number (tokens[10], &n_init) || !s_number (tokens[11], &n_regular)
            || n_init < 0 || n_regular < 0 || n_init > 65535 || n_regular > 65535)
            return ZUBE_INTERNAL;
        int64_t spec = n_init + n_regular;
        if (count < 12 + 2 * spec + 1 || !s_number (tokens[12 + 2 * spec], &n_annotations)
            || n_annotations < 0 || count != 13 + 2 * spec + 2 * n_annotations
            || n_annotations > 65535)
            return ZUBE_INTERNAL;
        uint32_t slot = (uint32_t) v[1];
        if (v[1] < 0 || v[1] >= S_NONE - 1 || v[2] <= 0
            || (v[4] != ZUBE_RUNTIME_SANDBOX_READY && v[4] != ZUBE_RUNTIME_SANDBOX_NOT_READY)
            || !s_pool_reserve (&self->sandboxes, slot)
            || s_sandbox_at (self, slot)->unique)
            return ZUBE_INTERNAL;
        const char **names = malloc ((size_t) (spec + 1) * 2 * sizeof *names);
        if (!names)
            return ZUBE_INTERNAL;
        for (int64_t i = 0; i < spec; i++) {
            names[i] = tokens[12 + 2 * i];
            names[spec + i] = tokens[13 + 2 * i];
        }
        zube_status_t status = s_sandbox_build (
            self, slot, tokens[6], tokens[7], tokens[8], tokens[9], (uint16_t) n_init,
            (uint16_t) n_regular, names, names + spec, (uint16_t) n_annotations,
            (const char *const *) tokens + 13 + 2 * spec);
        free (names);
        if (status != ZUBE_OK)
            return status;
        s_sandbox_t *sandbox = s_sandbox_at (self, slot);
        sandbox->unique = (uint64_t) v[2];
        sandbox->created_ms = v[3];
        sandbox->state = (uint8_t) v[4];
        sandbox->host_network = v[5] != 0;
        self->sandboxes.live++;
        if (sandbox->unique > *max_unique)
            *max_unique = sandbox->unique;
        return ZUBE_OK;
    }
    if (tokens[0][0] == 'C' && count == 15) {
        for (int i = 1; i < 15; i++)
            if (!s_number (tokens[i], &v[i]))
                return ZUBE_INTERNAL;
        uint32_t slot = (uint32_t) v[1], sandbox_slot = (uint32_t) v[3];
        //  The journal's later line of a container replaces the record
        if (v[1] >= 0 && v[1] < self->containers.high && v[2] > 0
            && s_container_at (self, slot)->unique == (uint64_t) v[2]) {
            s_container_t *container = s_container_at (self, slot);
            if (v[3] != container->sandbox || v[4] != container->index
                || v[7] < ZUBE_RUNTIME_CONTAINER_CREATED || v[7] > ZUBE_RUNTIME_CONTAINER_EXITED)
                return ZUBE_INTERNAL;
            container->attempt = (uint32_t) v[6];
            container->state = (uint8_t) v[7];
            container->starting = v[8] != 0;
            container->created_ms = v[9];
            container->started_ms = v[10];
            container->finished_ms = v[11];
            container->exit_code = (int32_t) v[13];
            container->reason = v[14] >= 0 && v[14] < S_REASON_COUNT ? (uint8_t) v[14] : 0;
            s_timer_cancel (self, slot);
            if (v[12] >= 0 && !s_timer_set (self, slot, v[12] - self->wall_offset_ms))
                return ZUBE_INTERNAL;
            return ZUBE_OK;
        }
        if (v[1] < 0 || v[1] >= S_NONE - 1 || v[2] <= 0 || v[3] < 0 || v[3] >= self->sandboxes.high
            || !s_sandbox_at (self, sandbox_slot)->unique
            || v[4] < 0 || v[4] >= s_spec_count (s_sandbox_at (self, sandbox_slot))
            || v[7] < ZUBE_RUNTIME_CONTAINER_CREATED || v[7] > ZUBE_RUNTIME_CONTAINER_EXITED
            || !s_pool_reserve (&self->containers, slot)
            || s_container_at (self, slot)->unique)
            return ZUBE_INTERNAL;
        s_container_t *container = s_container_at (self, slot);
        *container = (s_container_t) {
            .unique = (uint64_t) v[2],
            .link = S_NONE,
            .sandbox = sandbox_slot,
            .index = (uint16_t) v[4],
            .init = v[5] != 0,
            .attempt = (uint32_t) v[6],
            .state = (uint8_t) v[7],
            .starting = v[8] != 0,
            .created_ms = v[9],
            .started_ms = v[10],
            .finished_ms = v[11],
            .heap = S_NONE,
            .exit_code = (int32_t) v[13],
            .reason = v[14] >= 0 && v[14] < S_REASON_COUNT ? (uint8_t) v[14] : 0,
        };
        self->containers.live++;
        s_container_link (self, slot);
        //  A timer resumes on the wall clock: one that passed while the
        //  host was down fires at the first operation or tick.
        if (v[12] >= 0 && !s_timer_set (self, slot, v[12] - self->wall_offset_ms))
            return ZUBE_INTERNAL;
        if (container->unique > *max_unique)
            *max_unique = container->unique;
        return ZUBE_OK;
    }
    return ZUBE_INTERNAL;
}

//  Rebuilds each pool's free list from its empty slots (a loaded file
//  places records in their old slots, leaving holes).
static void
s_pool_relink (s_pool_t *pool)
{
    pool->free_head = S_NONE;
    for (uint32_t slot = pool->high; slot-- > 0;) {
        char *record = s_pool_at (pool, slot);
        if (*(uint64_t *) record)
            continue;
        memcpy (record + sizeof (uint64_t), &pool->free_head, sizeof (uint32_t));
        pool->free_head = slot;
    }
}

static zube_status_t
s_load (s_sim_t *self)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/" S_STATE_FILE, self->state_dir);
    FILE *file = fopen (path, "re");
    if (!file) {
        if (errno == ENOENT)
            return ZUBE_OK;
        return s_fail (self, ZUBE_UNAVAILABLE, "sim: %s: %s", path, strerror (errno));
    }
    char *line = NULL;
    size_t line_size = 0;
    size_t max_tokens = 64;
    char **tokens = malloc (max_tokens * sizeof *tokens);
    uint64_t max_unique = 0;
    int64_t number = 0;
    zube_status_t status = tokens ? ZUBE_OK : ZUBE_INTERNAL;
    ssize_t length;
    self->loading = true;
    while (status == ZUBE_OK && (length = getline (&line, &line_size, file)) > 0) {
        number++;
        //  A journal write the host did not finish (it died in it): the
        //  last line, without its newline, is not taken
        if (number > 1 && line[length - 1] != '\n')
            break;
        //  A line has at most one token per two bytes.
        size_t need = strlen (line) / 2 + 2;
        if (need > max_tokens) {
            char **grown = realloc (tokens, need * sizeof *grown);
            if (!grown) {
                status = ZUBE_INTERNAL;
                break;
            }
            tokens = grown;
            max_tokens = need;
        }
        int count = s_tokens (line, tokens, (int) max_tokens);
        if (number == 1) {
            int64_t version, unique;
            if (count != 4 || strcmp (tokens[0], S_STATE_MAGIC) != 0
                || !s_number (tokens[1], &version) || version != S_STATE_VERSION
                || !s_number (tokens[3], &unique))
                status = s_fail (self, ZUBE_INTERNAL,
                                 "sim: %s: not a sim state file of version %d", path,
                                 S_STATE_VERSION);
            else if (unique > 0 && (uint64_t) unique - 1 > max_unique)
                max_unique = (uint64_t) unique - 1;
            continue;
        }
        if (count < 1 || s_load_line (self, tokens, count, &max_unique) != ZUBE_OK)
            status = s_fail (self, ZUBE_INTERNAL, "sim: %s:%" PRId64 ": malformed record", path,
                             number);
    }
    if (status == ZUBE_OK && number == 0)
        status = s_fail (self, ZUBE_INTERNAL, "sim: %s: empty", path);
    self->loading = false;
    free (tokens);
    free (line);
    fclose (file);
    s_pool_relink (&self->sandboxes);
    s_pool_relink (&self->containers);
    if (max_unique >= self->next_unique)
        self->next_unique = max_unique + 1;
    return status;
}

//  ---------------------------------------------------------------------
//  Open and close

static zube_status_t
s_option (s_sim_t *self, const char *option)
{
    const char *equals = strchr (option, '=');
    if (!equals)
        return s_fail (self, ZUBE_BAD_REQUEST, "sim: option \"%s\": expected key=value", option);
    size_t key_length = (size_t) (equals - option);
    const char *value = equals + 1;
    if (key_length == 9 && memcmp (option, "state_dir", 9) == 0) {
        free (self->state_dir);
        self->state_dir = *value ? strdup (value) : NULL;
        if (*value && !self->state_dir)
            return s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
        return ZUBE_OK;
    }
    if (key_length == 14 && memcmp (option, "missing_images", 14) == 0) {
        free (self->missing_images);
        if (asprintf (&self->missing_images, ",%s,", value) < 0) {
            self->missing_images = NULL;
            return s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
        }
        return ZUBE_OK;
    }
    if (key_length == 14 && memcmp (option, "state_interval", 14) == 0) {
        int64_t ms = sim_duration_ms (value);
        if (ms < 0)
            return s_fail (self, ZUBE_BAD_REQUEST,
                           "sim: option state_interval=%s: expected a duration", value);
        self->state_interval_ms = ms;
        return ZUBE_OK;
    }
    return s_fail (self, ZUBE_BAD_REQUEST,
                   "sim: unknown option \"%.*s\" (expected state_dir, missing_images or "
                   "state_interval)",
                   (int) key_length, option);
}

//  mkdir -p PATH (0700: the state names every pod of the node).
static zube_status_t
s_make_dir (s_sim_t *self, const char *path)
{
    char copy[4096];
    if (strlen (path) >= sizeof copy)
        return s_fail (self, ZUBE_BAD_REQUEST, "sim: state_dir too long");
    strcpy (copy, path);
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != 0)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir (copy, 0700) != 0 && errno != EEXIST)
            return s_fail (self, ZUBE_UNAVAILABLE, "sim: state_dir %s: %s", copy,
                           strerror (errno));
        *p = saved;
        if (!saved)
            break;
    }
    return ZUBE_OK;
}

static void
s_destroy (s_sim_t *self)
{
    for (uint32_t slot = 0; slot < self->sandboxes.high; slot++)
        if (s_sandbox_at (self, slot)->unique)
            s_sandbox_release (self, slot);
    s_pool_destroy (&self->sandboxes);
    s_pool_destroy (&self->containers);
    s_names_destroy (&self->names);
    free (self->heap);
    free (self->events);
    free (self->marks);
    free (self->state_dir);
    free (self->missing_images);
    free (self);
}

static zube_status_t
s_open (const zube_host_t *host, const char *const *options,
        zube_runtime_backend_t **backend_p, char *error, size_t error_size)
{
    *backend_p = NULL;
    if (!ZUBE_HOST_HAS (host, monotonic_ns) || !ZUBE_HOST_HAS (host, time_ms)) {
        snprintf (error, error_size, "sim: the host table has no clock");
        return ZUBE_INTERNAL;
    }
    s_sim_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "sim: out of memory");
        return ZUBE_INTERNAL;
    }
    self->host = host;
    self->state_interval_ms = S_DEFAULT_INTERVAL_MS;
    self->sandboxes = (s_pool_t) {.free_head = S_NONE, .record_size = sizeof (s_sandbox_t)};
    self->containers = (s_pool_t) {.free_head = S_NONE, .record_size = sizeof (s_container_t)};
    int64_t now = s_now (self);
    int64_t wall = host->time_ms (host);
    self->wall_offset_ms = wall - now;
    //  Ids stay unique across runs without a state file too: numbers
    //  start from the wall clock in microseconds.
    self->next_unique = wall > 0 ? (uint64_t) wall * 1000 : 1;
    self->saved_at = now;
    //  A journal appends to a file this process wrote whole
    self->full_save = true;
    zube_status_t status = ZUBE_OK;
    for (size_t i = 0; options && options[i] && status == ZUBE_OK; i++)
        status = s_option (self, options[i]);
    if (status == ZUBE_OK && self->state_dir)
        status = s_make_dir (self, self->state_dir);
    if (status == ZUBE_OK && self->state_dir)
        status = s_load (self);
    if (status != ZUBE_OK) {
        snprintf (error, error_size, "%s", self->error);
        s_destroy (self);
        return status;
    }
    *backend_p = self;
    return ZUBE_OK;
}

static void
s_close (zube_runtime_backend_t **backend_p)
{
    if (!backend_p || !*backend_p)
        return;
    s_sim_t *self = *backend_p;
    s_advance (self, s_now (self));
    s_save_logged (self);
    s_destroy (self);
    *backend_p = NULL;
}

static const char *
s_errmsg (zube_runtime_backend_t *self)
{
    return self->error;
}

//  ---------------------------------------------------------------------
//  Sandboxes

static void
s_node_link (s_sim_t *self, uint32_t slot)
{
    s_sandbox_t *sandbox = s_sandbox_at (self, slot);
    sandbox->node_prev = S_NONE;
    sandbox->link = sandbox->node->sandboxes;
    if (sandbox->link != S_NONE)
        s_sandbox_at (self, sandbox->link)->node_prev = slot;
    sandbox->node->sandboxes = slot;
}

static void
s_node_unlink (s_sim_t *self, uint32_t slot)
{
    s_sandbox_t *sandbox = s_sandbox_at (self, slot);
    if (sandbox->node_prev != S_NONE)
        s_sandbox_at (self, sandbox->node_prev)->link = sandbox->link;
    else
        sandbox->node->sandboxes = sandbox->link;
    if (sandbox->link != S_NONE)
        s_sandbox_at (self, sandbox->link)->node_prev = sandbox->node_prev;
}

static zube_status_t
s_sandbox_build (s_sim_t *self, uint32_t slot, const char *node, const char *pod_namespace,
                 const char *pod_name, const char *pod_uid, uint16_t n_init, uint16_t n_regular,
                 const char *const *names, const char *const *images, uint16_t n_annotations,
                 const char *const *annotations)
{
    s_sandbox_t *sandbox = s_sandbox_at (self, slot);
    uint32_t count = (uint32_t) n_init + n_regular;
    size_t size = 2 * count * sizeof (s_name_t *) + strlen (pod_name) + strlen (pod_uid) + 2;
    for (uint32_t i = 0; i < 2u * n_annotations; i++)
        size += strlen (annotations[i]) + 1;
    *sandbox = (s_sandbox_t) {.link = S_NONE, .node_prev = S_NONE, .containers = S_NONE};
    sandbox->blob = calloc (1, size);
    sandbox->node = s_names_get (&self->names, node);
    sandbox->pod_namespace = s_names_get (&self->names, pod_namespace);
    sandbox->n_init = n_init;
    sandbox->n_regular = n_regular;
    sandbox->n_annotations = n_annotations;
    bool ok = sandbox->blob && sandbox->node && sandbox->pod_namespace;
    for (uint32_t i = 0; ok && i < count; i++) {
        s_spec_names (sandbox)[i] = s_names_get (&self->names, names[i]);
        s_spec_images (sandbox)[i] = s_names_get (&self->names, images[i]);
        ok = s_spec_names (sandbox)[i] && s_spec_images (sandbox)[i];
    }
    if (!ok) {
        //  Release what was taken; the record stays a free slot.
        if (sandbox->blob)
            for (uint32_t i = 0; i < count; i++) {
                s_names_put (&self->names, s_spec_names (sandbox)[i]);
                s_names_put (&self->names, s_spec_images (sandbox)[i]);
            }
        s_names_put (&self->names, sandbox->node);
        s_names_put (&self->names, sandbox->pod_namespace);
        free (sandbox->blob);
        *sandbox = (s_sandbox_t) {0};
        return s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
    }
    char *p = sandbox->blob + 2 * count * sizeof (s_name_t *);
    p = stpcpy (p, pod_name) + 1;
    p = stpcpy (p, pod_uid) + 1;
    for (uint32_t i = 0; i < 2u * n_annotations; i++)
        p = stpcpy (p, annotations[i]) + 1;
    s_node_link (self, slot);
    return ZUBE_OK;
}

//  Frees the sandbox's strings; the containers must be gone.
static void
s_sandbox_release (s_sim_t *self, uint32_t slot)
{
    s_sandbox_t *sandbox = s_sandbox_at (self, slot);
    s_node_unlink (self, slot);
    for (uint32_t i = 0; i < s_spec_count (sandbox); i++) {
        s_names_put (&self->names, s_spec_names (sandbox)[i]);
        s_names_put (&self->names, s_spec_images (sandbox)[i]);
    }
    s_names_put (&self->names, sandbox->node);
    s_names_put (&self->names, sandbox->pod_namespace);
    free (sandbox->blob);
    sandbox->blob = NULL;
}

//  Checks one sim.zube.io/ annotation (KEY without the prefix) of a pod
//  whose containers are NAMES.
static zube_status_t
s_check_annotation (s_sim_t *self, const char *key, const char *value,
                    const char *const *names, uint32_t count)
{
    size_t base_length = strcspn (key, ".");
    sim_key_t which = sim_key_lookup (key, base_length);
    if (which == SIM_KEY_UNKNOWN)
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "sim: annotation " SIM_ANNOTATION_PREFIX "%s: unknown (see "
                       "docs/runtime-sim.md)",
                       key);
    if (key[base_length] == '.') {
        const char *container = key + base_length + 1;
        uint32_t i;
        for (i = 0; i < count; i++)
            if (strcmp (names[i], container) == 0)
                break;
        if (i == count)
            return s_fail (self, ZUBE_BAD_REQUEST,
                           "sim: annotation " SIM_ANNOTATION_PREFIX "%s: the pod has no "
                           "container \"%s\"",
                           key, container);
    }
    bool ok = true;
    char why[256] = "";
    switch (which) {
        case SIM_KEY_START_DELAY:
        case SIM_KEY_READINESS_DELAY:
            ok = sim_duration_ms (value) >= 0;
            snprintf (why, sizeof why, "expected a duration such as 1.5s, 2m or 100ms");
            break;
        case SIM_KEY_RUN_DURATION:
            ok = strcmp (value, "forever") == 0 || sim_duration_ms (value) >= 0;
            snprintf (why, sizeof why, "expected a duration such as 1.5s, 2m or 100ms, or "
                                       "forever");
            break;
        case SIM_KEY_EXIT_CODE:
        case SIM_KEY_STOP_EXIT_CODE:
            ok = sim_exit_code (value) >= 0;
            snprintf (why, sizeof why, "expected an exit code 0..255");
            break;
        case SIM_KEY_IMAGE_MISSING:
        case SIM_KEY_OOM:
        case SIM_KEY_HOST_PROBES:
            ok = sim_bool (value) >= 0;
            snprintf (why, sizeof why, "expected \"true\" or \"false\"");
            break;
        case SIM_KEY_FAIL_PROBE: {
            sim_fail_rule_t rules[4];
            ok = sim_fail_probe_parse (value, rules, why, sizeof why);
            break;
        }
        case SIM_KEY_EXEC:
            ok = sim_exec_rules_check (value, why, sizeof why);
            break;
        case SIM_KEY_LOGS:
        case SIM_KEY_UNKNOWN:
            break;
    }
    if (!ok)
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "sim: annotation " SIM_ANNOTATION_PREFIX "%s=\"%s\": %s", key, value,
                       why);
    return ZUBE_OK;
}

static zube_status_t
s_run_sandbox (zube_runtime_backend_t *self, const zube_runtime_sandbox_config_t *config,
               char *id, size_t id_size)
{
    s_begin (self);
    if (!config || config->struct_size < offsetof (zube_runtime_sandbox_config_t, log_dir))
        return s_fail (self, ZUBE_BAD_REQUEST, "sim: run_sandbox: no config");
    const struct {
        const char *field;
        const char *value;
        size_t max;
    } fields[] = {
        {"node_name", config->node_name, S_NODE_MAX},
        {"pod_namespace", config->pod_namespace, S_NAME_MAX},
        {"pod_name", config->pod_name, S_NAME_MAX},
        {"pod_uid", config->pod_uid, S_UID_MAX},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (!fields[i].value || !*fields[i].value || strlen (fields[i].value) >= fields[i].max)
            return s_fail (self, ZUBE_BAD_REQUEST,
                           "sim: run_sandbox: %s: expected 1 to %zu characters", fields[i].field,
                           fields[i].max - 1);
    if (!id || id_size < 25)
        return s_fail (self, ZUBE_BAD_REQUEST, "sim: run_sandbox: id buffer too small");

    Zube__Pod *pod = NULL;
    if (config->pod && config->pod_size) {
        pod = zube__pod__unpack (NULL, config->pod_size, config->pod);
        if (!pod)
            return s_fail (self, ZUBE_BAD_REQUEST,
                           "sim: run_sandbox %s/%s: the pod does not decode as zube.Pod",
                           config->pod_namespace, config->pod_name);
    }
    Zube__PodSpec *spec = pod ? pod->spec : NULL;
    size_t n_init = spec ? spec->n_init_containers : 0;
    size_t n_regular = spec ? spec->n_containers : 0;
    Zube__ObjectMeta *meta = pod ? pod->metadata : NULL;
    size_t n_all = meta ? meta->n_annotations : 0;
    zube_status_t status = ZUBE_OK;
    const char **names =
        calloc (2 * (n_init + n_regular) + 2 * (n_all + n_init) + 1, sizeof *names);
    char **implied = calloc (n_init + 1, sizeof *implied);
    const char **images = names + n_init + n_regular;
    const char **annotations = images + n_init + n_regular;
    size_t n_annotations = 0;
    if (!names || !implied)
        status = s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
    else if (n_init + n_regular > 65535 || n_all + n_init > 65535)
        status = s_fail (self, ZUBE_BAD_REQUEST, "sim: run_sandbox: too many containers");
    for (size_t i = 0; status == ZUBE_OK && i < n_init + n_regular; i++) {
        Zube__Container *container =
            i < n_init ? spec->init_containers[i] : spec->containers[i - n_init];
        names[i] = container->name ? container->name : "";
        images[i] = container->image ? container->image : "";
    }
    size_t prefix = strlen (SIM_ANNOTATION_PREFIX);
    for (size_t i = 0; status == ZUBE_OK && i < n_all; i++) {
        Zube__ObjectMeta__AnnotationsEntry *entry = meta->annotations[i];
        if (!entry->key || strncmp (entry->key, SIM_ANNOTATION_PREFIX, prefix) != 0)
            continue;
        const char *value = entry->value ? entry->value : "";
        status = s_check_annotation (self, entry->key + prefix, value, names,
                                     (uint32_t) (n_init + n_regular));
        annotations[2 * n_annotations] = entry->key + prefix;
        annotations[2 * n_annotations + 1] = value;
        n_annotations++;
    }
    //  A sidecar (init container with restartPolicy Always) runs until
    //  stopped, as a regular container, unless its run-duration says
    for (size_t i = 0; status == ZUBE_OK && i < n_init; i++) {
        const char *policy = spec->init_containers[i]->restart_policy;
        if (!policy || strcmp (policy, "Always") != 0)
            continue;
        size_t length = strlen ("run-duration.") + strlen (names[i]) + 1;
        implied[i] = malloc (length);
        if (!implied[i]) {
            status = s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
            break;
        }
        snprintf (implied[i], length, "run-duration.%s", names[i]);
        bool given = false;
        for (size_t a = 0; a < n_annotations && !given; a++)
            given = strcmp (annotations[2 * a], implied[i]) == 0;
        if (given)
            continue;
        annotations[2 * n_annotations] = implied[i];
        annotations[2 * n_annotations + 1] = "forever";
        n_annotations++;
    }
    uint32_t slot = S_NONE;
    if (status == ZUBE_OK) {
        slot = s_pool_alloc (&self->sandboxes);
        if (slot == S_NONE)
            status = s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
    }
    if (status == ZUBE_OK) {
        status = s_sandbox_build (self, slot, config->node_name, config->pod_namespace,
                                  config->pod_name, config->pod_uid, (uint16_t) n_init,
                                  (uint16_t) n_regular, names, images, (uint16_t) n_annotations,
                                  annotations);
        if (status != ZUBE_OK)
            s_pool_free (&self->sandboxes, slot);
    }
    if (status == ZUBE_OK) {
        s_sandbox_t *sandbox = s_sandbox_at (self, slot);
        sandbox->unique = self->next_unique++;
        sandbox->state = ZUBE_RUNTIME_SANDBOX_READY;
        sandbox->host_network = spec && spec->has_host_network && spec->host_network;
        sandbox->created_ms = s_wall (self, s_now (self));
        s_format_id (sandbox->unique, slot, id, id_size);
        s_mark_sandbox (self, slot);
    }
    free (names);
    for (size_t i = 0; implied && i < n_init; i++)
        free (implied[i]);
    free (implied);
    if (pod)
        zube__pod__free_unpacked (pod, NULL);
    return status;
}

static uint32_t
s_sandbox_find (s_sim_t *self, const char *id)
{
    return s_find (&self->sandboxes, id);
}

static uint32_t
s_container_find (s_sim_t *self, const char *id)
{
    return s_find (&self->containers, id);
}

static void s_container_stop (s_sim_t *self, uint32_t slot, int64_t grace_ms);

static zube_status_t
s_stop_sandbox (zube_runtime_backend_t *self, const char *id, int64_t grace_ms)
{
    s_begin (self);
    uint32_t slot = s_sandbox_find (self, id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: sandbox %s not found", id ? id : "(null)");
    s_sandbox_t *sandbox = s_sandbox_at (self, slot);
    for (uint32_t c = sandbox->containers; c != S_NONE; c = s_container_at (self, c)->link)
        s_container_stop (self, c, grace_ms);
    if (sandbox->state != ZUBE_RUNTIME_SANDBOX_NOT_READY) {
        sandbox->state = ZUBE_RUNTIME_SANDBOX_NOT_READY;
        s_mark_sandbox (self, slot);
    }
    return ZUBE_OK;
}

static void
s_container_remove (s_sim_t *self, uint32_t slot)
{
    s_container_t *container = s_container_at (self, slot);
    s_timer_cancel (self, slot);
    s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
    uint32_t *link = &sandbox->containers;
    while (*link != slot)
        link = &s_container_at (self, *link)->link;
    *link = container->link;
    s_mark (self, S_MARK_CONTAINER_GONE, slot, container->unique);
    s_pool_free (&self->containers, slot);
}

static zube_status_t
s_remove_sandbox (zube_runtime_backend_t *self, const char *id)
{
    s_begin (self);
    uint32_t slot = s_sandbox_find (self, id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: sandbox %s not found", id ? id : "(null)");
    //  As CRI's RemovePodSandbox: what still runs is stopped first.
    s_sandbox_t *sandbox = s_sandbox_at (self, slot);
    while (sandbox->containers != S_NONE)
        s_container_remove (self, sandbox->containers);
    s_mark (self, S_MARK_SANDBOX_GONE, slot, sandbox->unique);
    s_sandbox_release (self, slot);
    s_pool_free (&self->sandboxes, slot);
    return ZUBE_OK;
}

static zube_status_t
s_sandbox_status (zube_runtime_backend_t *self, const char *id,
                  zube_runtime_sandbox_status_t *status)
{
    s_begin (self);
    uint32_t slot = s_sandbox_find (self, id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: sandbox %s not found", id ? id : "(null)");
    s_sandbox_fill (self, slot, status);
    return ZUBE_OK;
}

static zube_status_t
s_list_sandboxes (zube_runtime_backend_t *self, const char *node_name,
                  zube_runtime_sandbox_fn *fn, void *arg)
{
    s_begin (self);
    zube_runtime_sandbox_status_t status;
    if (node_name) {
        s_name_t *node = s_names_find (&self->names, node_name);
        uint32_t slot = node ? node->sandboxes : S_NONE;
        while (slot != S_NONE) {
            uint32_t next = s_sandbox_at (self, slot)->link;
            s_sandbox_fill (self, slot, &status);
            if (fn (arg, &status) != 0)
                break;
            slot = next;
        }
        return ZUBE_OK;
    }
    for (uint32_t slot = 0; slot < self->sandboxes.high; slot++) {
        if (!s_sandbox_at (self, slot)->unique)
            continue;
        s_sandbox_fill (self, slot, &status);
        if (fn (arg, &status) != 0)
            break;
    }
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  Containers

//  Appends the container to its sandbox's list (creation order).
static void
s_container_link (s_sim_t *self, uint32_t slot)
{
    s_container_t *container = s_container_at (self, slot);
    s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
    uint32_t *link = &sandbox->containers;
    while (*link != S_NONE)
        link = &s_container_at (self, *link)->link;
    *link = slot;
    container->link = S_NONE;
}

//  What makes the image missing (for the error), or NULL when it is not.
static const char *
s_image_missing (s_sim_t *self, const s_sandbox_t *sandbox, uint32_t index, bool init)
{
    const char *name = s_spec_names (sandbox)[index]->text;
    if (sim_bool (s_behaviour (sandbox, "image-missing", name, init)) == 1)
        return SIM_ANNOTATION_PREFIX "image-missing";
    if (!self->missing_images)
        return NULL;
    const char *image = s_spec_images (sandbox)[index]->text;
    char normalized[512];
    sim_image_normalize (image, normalized, sizeof normalized);
    const char *candidates[] = {image, normalized};
    for (size_t i = 0; i < 2; i++) {
        size_t length = strlen (candidates[i]);
        for (const char *p = strstr (self->missing_images, candidates[i]); p && length;
             p = strstr (p + 1, candidates[i]))
            if (p[-1] == ',' && p[length] == ',')
                return "sim option missing_images";
    }
    return NULL;
}

static zube_status_t
s_create_container (zube_runtime_backend_t *self, const char *sandbox_id,
                    const zube_runtime_container_config_t *config, char *id, size_t id_size)
{
    s_begin (self);
    uint32_t sandbox_slot = s_sandbox_find (self, sandbox_id);
    if (sandbox_slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: sandbox %s not found",
                       sandbox_id ? sandbox_id : "(null)");
    if (!config || config->struct_size < offsetof (zube_runtime_container_config_t, attempt)
        || !config->name)
        return s_fail (self, ZUBE_BAD_REQUEST, "sim: create_container: no config");
    if (!id || id_size < 25)
        return s_fail (self, ZUBE_BAD_REQUEST, "sim: create_container: id buffer too small");
    s_sandbox_t *sandbox = s_sandbox_at (self, sandbox_slot);
    const char *pod = s_pod_name (sandbox);
    if (sandbox->state != ZUBE_RUNTIME_SANDBOX_READY)
        return s_fail (self, ZUBE_CONFLICT, "sim: create_container %s: sandbox of pod %s is "
                                            "not ready",
                       config->name, pod);
    uint32_t limit = config->init ? sandbox->n_init : sandbox->n_regular;
    if (config->index >= limit)
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "sim: create_container %s: pod %s has no %s %" PRIu32, config->name, pod,
                       config->init ? "initContainers" : "containers", config->index);
    uint32_t index = config->init ? config->index : sandbox->n_init + config->index;
    if (strcmp (s_spec_names (sandbox)[index]->text, config->name) != 0)
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "sim: create_container %s: %s[%" PRIu32 "] of pod %s is named \"%s\"",
                       config->name, config->init ? "initContainers" : "containers",
                       config->index, pod, s_spec_names (sandbox)[index]->text);
    for (uint32_t c = sandbox->containers; c != S_NONE; c = s_container_at (self, c)->link) {
        s_container_t *other = s_container_at (self, c);
        if (other->index == index && other->attempt == config->attempt)
            return s_fail (self, ZUBE_CONFLICT,
                           "sim: create_container %s: attempt %" PRIu32 " already exists in "
                           "pod %s",
                           config->name, config->attempt, pod);
    }
    const char *missing = s_image_missing (self, sandbox, index, config->init);
    if (missing)
        return s_fail (self, ZUBE_BAD_REQUEST, "Failed to pull image \"%s\": not found (%s)",
                       s_spec_images (sandbox)[index]->text, missing);
    uint32_t slot = s_pool_alloc (&self->containers);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
    s_container_t *container = s_container_at (self, slot);
    container->unique = self->next_unique++;
    container->sandbox = sandbox_slot;
    container->index = (uint16_t) index;
    container->init = config->init;
    container->attempt = config->attempt;
    container->state = ZUBE_RUNTIME_CONTAINER_CREATED;
    container->heap = S_NONE;
    container->created_ms = s_wall (self, s_now (self));
    s_container_link (self, slot);
    s_format_id (container->unique, slot, id, id_size);
    s_mark_container (self, slot);
    return ZUBE_OK;
}

static zube_status_t
s_start_container (zube_runtime_backend_t *self, const char *id)
{
    s_begin (self);
    uint32_t slot = s_container_find (self, id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: container %s not found", id ? id : "(null)");
    s_container_t *container = s_container_at (self, slot);
    s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
    const char *name = s_spec_names (sandbox)[container->index]->text;
    if (container->state != ZUBE_RUNTIME_CONTAINER_CREATED || container->starting)
        return s_fail (self, ZUBE_CONFLICT, "sim: start_container %s (%s): already %s", id,
                       name,
                       container->starting ? "starting"
                       : container->state == ZUBE_RUNTIME_CONTAINER_RUNNING ? "running"
                                                                            : "exited");
    int64_t delay = sim_duration_ms (s_behaviour (sandbox, "start-delay", name, container->init));
    int64_t now = s_now (self);
    bool ok;
    if (delay > 0) {
        container->starting = 1;
        s_mark_container (self, slot);
        ok = s_timer_set (self, slot, now + delay);
    }
    else
        ok = s_run (self, slot, now);
    if (!ok)
        return s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
    //  A run of 0 ends now: the container is reported exited at once.
    s_advance (self, now);
    return ZUBE_OK;
}

//  SIGTERM: exits with stop-exit-code (default 143, as a process killed by
//  SIGTERM); grace 0 is SIGKILL: 137. Reason as the kubelet reports it.
static void
s_container_stop (s_sim_t *self, uint32_t slot, int64_t grace_ms)
{
    s_container_t *container = s_container_at (self, slot);
    if (container->state == ZUBE_RUNTIME_CONTAINER_EXITED)
        return;
    int code = 137;
    if (grace_ms > 0) {
        s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
        const char *name = s_spec_names (sandbox)[container->index]->text;
        int annotated = sim_exit_code (s_behaviour (sandbox, "stop-exit-code", name,
                                                    container->init));
        code = annotated >= 0 ? annotated : 143;
    }
    s_exit (self, slot, s_now (self), code, code == 0 ? S_REASON_COMPLETED : S_REASON_ERROR);
}

static zube_status_t
s_stop_container (zube_runtime_backend_t *self, const char *id, int64_t grace_ms)
{
    s_begin (self);
    uint32_t slot = s_container_find (self, id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: container %s not found", id ? id : "(null)");
    s_container_stop (self, slot, grace_ms);
    return ZUBE_OK;
}

static zube_status_t
s_remove_container (zube_runtime_backend_t *self, const char *id)
{
    s_begin (self);
    uint32_t slot = s_container_find (self, id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: container %s not found", id ? id : "(null)");
    s_container_remove (self, slot);
    return ZUBE_OK;
}

static zube_status_t
s_container_status (zube_runtime_backend_t *self, const char *id,
                    zube_runtime_container_status_t *status)
{
    s_begin (self);
    uint32_t slot = s_container_find (self, id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: container %s not found", id ? id : "(null)");
    s_container_fill (self, slot, s_container_at (self, slot)->state, status);
    return ZUBE_OK;
}

static zube_status_t
s_list_containers (zube_runtime_backend_t *self, const char *sandbox_id,
                   zube_runtime_container_fn *fn, void *arg)
{
    s_begin (self);
    zube_runtime_container_status_t status;
    if (sandbox_id) {
        uint32_t sandbox_slot = s_sandbox_find (self, sandbox_id);
        if (sandbox_slot == S_NONE)
            return s_fail (self, ZUBE_NOT_FOUND, "sim: sandbox %s not found", sandbox_id);
        uint32_t slot = s_sandbox_at (self, sandbox_slot)->containers;
        while (slot != S_NONE) {
            uint32_t next = s_container_at (self, slot)->link;
            s_container_fill (self, slot, s_container_at (self, slot)->state, &status);
            if (fn (arg, &status) != 0)
                break;
            slot = next;
        }
        return ZUBE_OK;
    }
    for (uint32_t slot = 0; slot < self->containers.high; slot++) {
        s_container_t *container = s_container_at (self, slot);
        if (!container->unique)
            continue;
        s_container_fill (self, slot, container->state, &status);
        if (fn (arg, &status) != 0)
            break;
    }
    return ZUBE_OK;
}

static int64_t
s_tick (zube_runtime_backend_t *self, zube_runtime_event_fn *fn, void *arg)
{
    int64_t now = s_now (self);
    s_advance (self, now);
    //  The callback may call back in (a status, a removal): events are
    //  taken off the queue first, and a container removed meanwhile is
    //  skipped by its unique number.
    uint32_t count = self->event_count;
    uint32_t capacity = self->event_capacity;
    s_event_t *events = self->events;
    self->events = NULL;
    self->event_count = self->event_capacity = 0;
    zube_runtime_container_status_t status;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t slot = events[i].slot;
        if (slot >= self->containers.high
            || s_container_at (self, slot)->unique != events[i].unique)
            continue;
        s_container_fill (self, slot, events[i].state, &status);
        zube_runtime_event_t event = {.struct_size = sizeof event, .container = &status};
        fn (arg, &event);
    }
    //  The queue keeps its memory for the next tick, unless the callbacks
    //  queued new events meanwhile or it once grew large.
    if (!self->events && capacity <= 4096) {
        self->events = events;
        self->event_capacity = capacity;
    }
    else
        free (events);
    if (ZUBE_HOST_HAS (self->host, counter_add) && (self->heap_steps || self->timers_fired || count)) {
        self->host->counter_add (self->host, "sim_heap_steps_total", self->heap_steps);
        self->host->counter_add (self->host, "sim_timers_fired_total", self->timers_fired);
        self->host->counter_add (self->host, "sim_events_total", count);
        self->heap_steps = self->timers_fired = 0;
    }
    int64_t next = -1;
    if (self->state_dir && self->dirty) {
        if (now - self->saved_at >= self->state_interval_ms)
            s_save_logged (self);
        if (self->dirty)
            next = self->saved_at + self->state_interval_ms - now;
    }
    if (self->heap_count > 0) {
        int64_t due = s_container_at (self, self->heap[0])->due - now;
        if (due < 0)
            due = 0;
        if (next < 0 || due < next)
            next = due;
    }
    return next;
}

//  ---------------------------------------------------------------------
//  Probes, logs, exec

static zube_status_t
s_probe (zube_runtime_backend_t *self, const char *container_id,
         zube_runtime_probe_kind_t kind, int64_t timeout_ms, bool *success_p, char *message,
         size_t message_size)
{
    (void) timeout_ms;
    s_begin (self);
    *success_p = false;
    if (message && message_size)
        message[0] = 0;
    uint32_t slot = s_container_find (self, container_id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: container %s not found",
                       container_id ? container_id : "(null)");
    if (kind < ZUBE_RUNTIME_PROBE_LIVENESS || kind > ZUBE_RUNTIME_PROBE_STARTUP)
        return s_fail (self, ZUBE_BAD_REQUEST, "sim: probe kind %d", (int) kind);
    static const char *kinds[] = {"", "liveness", "readiness", "startup"};
    s_container_t *container = s_container_at (self, slot);
    s_sandbox_t *owner = s_sandbox_at (self, container->sandbox);
    if (sim_bool (s_behaviour (owner, "host-probes", s_spec_names (owner)[container->index]->text,
                               container->init))
        == 1)
        return s_fail (self, ZUBE_UNAVAILABLE,
                       "sim: probes of this container are the host's "
                       "(" SIM_ANNOTATION_PREFIX "host-probes)");
    if (container->state != ZUBE_RUNTIME_CONTAINER_RUNNING) {
        snprintf (message, message_size, "container is not running");
        return ZUBE_OK;
    }
    s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
    const char *name = s_spec_names (sandbox)[container->index]->text;
    int64_t running_ms = s_wall (self, s_now (self)) - container->started_ms;
    if (kind == ZUBE_RUNTIME_PROBE_READINESS) {
        int64_t delay = sim_duration_ms (
            s_behaviour (sandbox, "readiness-delay", name, container->init));
        if (delay > 0 && running_ms < delay) {
            snprintf (message, message_size,
                      "sim: readiness probe fails for %" PRId64 " ms more "
                      "(" SIM_ANNOTATION_PREFIX "readiness-delay)",
                      delay - running_ms);
            return ZUBE_OK;
        }
    }
    sim_fail_rule_t rules[4];
    char why[256];
    const char *text = s_behaviour (sandbox, "fail-probe", name, container->init);
    bool fails = false;
    if (text && sim_fail_probe_parse (text, rules, why, sizeof why)) {
        sim_fail_rule_t rule = rules[kind];
        fails = rule.mode == SIM_FAIL_ALWAYS
                || (rule.mode == SIM_FAIL_AFTER && running_ms >= rule.ms)
                || (rule.mode == SIM_FAIL_UNTIL && running_ms < rule.ms);
    }
    if (fails) {
        snprintf (message, message_size,
                  "sim: %s probe failed (" SIM_ANNOTATION_PREFIX "fail-probe: %s)", kinds[kind],
                  text);
        return ZUBE_OK;
    }
    *success_p = true;
    return ZUBE_OK;
}

static void
s_timestamp (int64_t wall_ms, char *out, size_t size)
{
    time_t seconds = (time_t) (wall_ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    char date[32];
    strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out, size, "%s.%03dZ", date, (int) (wall_ms % 1000));
}

//  One log line: its wall time and text (no newline).
typedef struct {
    int64_t at;
    const char *text;
    size_t length;
} s_line_t;

static zube_status_t
s_logs (zube_runtime_backend_t *self, const char *container_id,
        const zube_runtime_logs_options_t *options, zube_runtime_output_fn *fn, void *arg)
{
    s_begin (self);
    uint32_t slot = s_container_find (self, container_id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: container %s not found",
                       container_id ? container_id : "(null)");
    s_container_t *container = s_container_at (self, slot);
    s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
    const char *name = s_spec_names (sandbox)[container->index]->text;
    if (options && options->previous) {
        uint32_t previous = S_NONE;
        for (uint32_t c = sandbox->containers; c != S_NONE; c = s_container_at (self, c)->link) {
            s_container_t *other = s_container_at (self, c);
            if (other->index == container->index && other->init == container->init
                && other->attempt + 1 == container->attempt)
                previous = c;
        }
        if (previous == S_NONE)
            return s_fail (self, ZUBE_NOT_FOUND,
                           "previous terminated container \"%s\" in pod \"%s\" not found", name,
                           s_pod_name (sandbox));
        slot = previous;
        container = s_container_at (self, slot);
    }
    int64_t since_ms = options && options->struct_size >= offsetof (zube_runtime_logs_options_t,
                                                                        since_ms)
                                                               + sizeof options->since_ms
                           ? options->since_ms
                           : 0;
    //  The started line, the lines of sim.zube.io/logs (written at the
    //  start), the exited line
    char started[512] = "", exited[512] = "", when[40];
    const char *script = container->started_ms
                             ? s_behaviour (sandbox, "logs", name, container->init)
                             : NULL;
    size_t capacity = 2;
    for (const char *c = script; c && *c; c++)
        capacity += *c == '\n';
    capacity++;
    s_line_t *lines = calloc (capacity, sizeof *lines);
    if (!lines)
        return s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
    size_t count = 0;
    if (container->started_ms) {
        s_timestamp (container->started_ms, when, sizeof when);
        snprintf (started, sizeof started, "sim: container %s started at %s", name, when);
        lines[count++] = (s_line_t) {container->started_ms, started, strlen (started)};
    }
    for (const char *line = script; line && *line;) {
        const char *end = strchr (line, '\n');
        size_t length = end ? (size_t) (end - line) : strlen (line);
        lines[count++] = (s_line_t) {container->started_ms, line, length};
        line += length + (end ? 1 : 0);
    }
    if (container->state == ZUBE_RUNTIME_CONTAINER_EXITED) {
        s_timestamp (container->finished_ms, when, sizeof when);
        snprintf (exited, sizeof exited, "sim: container %s exited with code %d (%s) at %s",
                  name, container->exit_code,
                  container->reason < S_REASON_COUNT ? s_reason_names[container->reason] : "",
                  when);
        lines[count++] = (s_line_t) {container->finished_ms, exited, strlen (exited)};
    }
    size_t first = 0;
    while (first < count && lines[first].at < since_ms)
        first++;
    if (options && options->tail_lines >= 0 && (size_t) options->tail_lines < count - first)
        first = count - (size_t) options->tail_lines;
    for (size_t i = first; i < count; i++)
        if (fn (arg, lines[i].text, lines[i].length, false) != 0 || fn (arg, "\n", 1, false) != 0)
            break;
    free (lines);
    return ZUBE_OK;
}

static int
s_emit (zube_runtime_output_fn *fn, void *arg, const char *text, size_t length, bool error)
{
    return fn && length ? fn (arg, text, length, error) : 0;
}

//  Runs nothing. echo, true, false, cat (stdin back) and sh -c 'exit N'
//  are emulated; anything else answers what a rule of sim.zube.io/exec
//  says, else "executable file not found" with 127 (a shell's code).
static zube_status_t
s_exec (zube_runtime_backend_t *self, const char *container_id, const char *const *argv,
        const void *stdin_data, size_t stdin_size, int64_t timeout_ms,
        zube_runtime_output_fn *fn, void *arg, int *exit_code_p)
{
    (void) timeout_ms;
    s_begin (self);
    uint32_t slot = s_container_find (self, container_id);
    if (slot == S_NONE)
        return s_fail (self, ZUBE_NOT_FOUND, "sim: container %s not found",
                       container_id ? container_id : "(null)");
    if (!argv || !argv[0])
        return s_fail (self, ZUBE_BAD_REQUEST, "sim: exec: no command");
    s_container_t *container = s_container_at (self, slot);
    if (container->state != ZUBE_RUNTIME_CONTAINER_RUNNING)
        return s_fail (self, ZUBE_CONFLICT, "sim: exec: container %s is not running",
                       container_id);
    s_sandbox_t *sandbox = s_sandbox_at (self, container->sandbox);
    const char *name = s_spec_names (sandbox)[container->index]->text;
    const char *rules = s_behaviour (sandbox, "exec", name, container->init);
    size_t length = 0;
    for (size_t i = 0; argv[i]; i++)
        length += strlen (argv[i]) + 1;
    char *command = malloc (length + 1);
    if (!command)
        return s_fail (self, ZUBE_INTERNAL, "sim: out of memory");
    command[0] = 0;
    for (size_t i = 0; argv[i]; i++) {
        if (i)
            strcat (command, " ");
        strcat (command, argv[i]);
    }
    const char *base = strrchr (argv[0], '/') ? strrchr (argv[0], '/') + 1 : argv[0];
    int code = 0;
    const char *output = NULL;
    size_t output_length = 0;
    char *end = NULL;
    if (rules && sim_exec_rule_find (rules, command, &code, &output, &output_length)) {
        s_emit (fn, arg, output, output_length, false);
        if (output_length)
            s_emit (fn, arg, "\n", 1, false);
    } else if (strcmp (base, "echo") == 0) {
        bool stop = false;
        for (size_t i = 1; argv[i] && !stop; i++)
            stop = (i > 1 && s_emit (fn, arg, " ", 1, false) != 0)
                   || s_emit (fn, arg, argv[i], strlen (argv[i]), false) != 0;
        s_emit (fn, arg, "\n", 1, false);
    } else if (strcmp (base, "true") == 0 && !argv[1])
        code = 0;
    else if (strcmp (base, "false") == 0 && !argv[1])
        code = 1;
    else if (strcmp (base, "cat") == 0 && !argv[1])
        s_emit (fn, arg, stdin_data, stdin_data ? stdin_size : 0, false);
    else if ((strcmp (base, "sh") == 0 || strcmp (base, "bash") == 0) && argv[1] && strcmp (argv[1], "-c") == 0
             && argv[2] && !argv[3] && strncmp (argv[2], "exit ", 5) == 0
             && (code = (int) strtol (argv[2] + 5, &end, 10), end && !*end && end > argv[2] + 5)
             && code >= 0 && code <= 255)
        ;
    else {
        char message[600];
        int n = snprintf (message, sizeof message,
                          "sim: exec: \"%.200s\": executable file not found in $PATH (no "
                          SIM_ANNOTATION_PREFIX "exec rule for \"%.200s\")\n",
                          argv[0], command);
        s_emit (fn, arg, message, n > 0 ? strlen (message) : 0, true);
        code = 127;
    }
    free (command);
    *exit_code_p = code;
    return ZUBE_OK;
}

static const zube_runtime_ops_t s_ops = {
    .struct_size = sizeof (zube_runtime_ops_t),
    .open = s_open,
    .close = s_close,
    .errmsg = s_errmsg,
    .run_sandbox = s_run_sandbox,
    .stop_sandbox = s_stop_sandbox,
    .remove_sandbox = s_remove_sandbox,
    .sandbox_status = s_sandbox_status,
    .list_sandboxes = s_list_sandboxes,
    .create_container = s_create_container,
    .start_container = s_start_container,
    .stop_container = s_stop_container,
    .remove_container = s_remove_container,
    .container_status = s_container_status,
    .list_containers = s_list_containers,
    .tick = s_tick,
    .probe = s_probe,
    .logs = s_logs,
    .exec = s_exec,
};

ZUBE_PLUGIN_DEFINE (.name = "sim",
                    .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_RUNTIME,
                    .description = "simulated container runtime: records and timers, no processes",
                    .ops = &s_ops)
