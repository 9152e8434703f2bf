/*  test_zcm_queue - zube-controller-manager's work queue (Kubernetes'
    workqueue: a key queued once, never handed out again while it is
    processing (an add meanwhile queues it at done), delays where the earliest wins,
   per-key exponential back-off 5 ms .. 1000 s until forgotten) and Kubernetes'
    --controllers semantics. Time is passed in, so nothing here waits. */
#include "../zube_test.h"
#include "zcm.h"
#include <stdlib.h>
#include <string.h>

static void
test_queued_once_in_order (void)
{
    zcm_queue_t *queue = zcm_queue_new (0, 0);
    ZT_ASSERT (queue);
    zcm_queue_add (queue, "a");
    zcm_queue_add (queue, "b");
    zcm_queue_add (queue, "a");
    ZT_ASSERT_INT_EQ (zcm_queue_length (queue), 2);
    char *key = zcm_queue_pop (queue);
    ZT_ASSERT_STR_EQ (key, "a");
    //  Added again while "being synced": dirty, queued only once its sync
    //  is done (no second worker takes it meanwhile), then after b
    zcm_queue_add (queue, "a");
    zcm_queue_add (queue, "a");
    ZT_ASSERT_INT_EQ (zcm_queue_processing (queue), 1);
    char *b = zcm_queue_pop (queue);
    ZT_ASSERT_STR_EQ (b, "b");
    ZT_ASSERT (zcm_queue_pop (queue) == NULL);
    zcm_queue_done (queue, key);
    free (key);
    ZT_ASSERT_INT_EQ (zcm_queue_length (queue), 1);
    key = zcm_queue_pop (queue);
    ZT_ASSERT_STR_EQ (key, "a");
    //  Done without an add meanwhile: not queued again
    zcm_queue_done (queue, b);
    free (b);
    zcm_queue_done (queue, key);
    free (key);
    ZT_ASSERT (zcm_queue_pop (queue) == NULL);
    ZT_ASSERT_INT_EQ (zcm_queue_processing (queue), 0);
    zcm_queue_destroy (&queue);
    ZT_ASSERT (queue == NULL);
}

static void
test_delays (void)
{
    zcm_queue_t *queue = zcm_queue_new (0, 0);
    zcm_queue_add_after (queue, "late", 1000, 0);
    zcm_queue_add_after (queue, "soon", 100, 0);
    //  An earlier delay for the same key wins; a later one does not
    zcm_queue_add_after (queue, "late", 500, 0);
    zcm_queue_add_after (queue, "soon", 900, 0);
    ZT_ASSERT_INT_EQ (zcm_queue_length (queue), 0);
    ZT_ASSERT_INT_EQ (zcm_queue_waiting (queue), 2);
    ZT_ASSERT_INT_EQ (zcm_queue_flush (queue, 50), 50);
    ZT_ASSERT_INT_EQ (zcm_queue_flush (queue, 100), 400);
    char *key = zcm_queue_pop (queue);
    ZT_ASSERT_STR_EQ (key, "soon");
    free (key);
    ZT_ASSERT_INT_EQ (zcm_queue_flush (queue, 600), -1);
    key = zcm_queue_pop (queue);
    ZT_ASSERT_STR_EQ (key, "late");
    free (key);
    //  No delay: at once
    zcm_queue_add_after (queue, "now", 0, 600);
    ZT_ASSERT_INT_EQ (zcm_queue_length (queue), 1);
    zcm_queue_destroy (&queue);
}

static void
test_backoff (void)
{
    zcm_queue_t *queue =
        zcm_queue_new (ZUBE_CTRL_BACKOFF_BASE_MS, ZUBE_CTRL_BACKOFF_MAX_MS);
    int64_t expected[] = {5, 10, 20, 40, 80};
    for (int i = 0; i < 5; i++) {
        zcm_queue_add_rate_limited (queue, "k", 0);
        ZT_ASSERT_INT_EQ (zcm_queue_requeues (queue, "k"), i + 1);
        ZT_ASSERT_INT_EQ (zcm_queue_flush (queue, 0), expected[i]);
        ZT_ASSERT_INT_EQ (zcm_queue_flush (queue, expected[i]), -1);
        free (zcm_queue_pop (queue));
    }
    //  Capped at 1000 s
    for (int i = 0; i < 40; i++) {
        zcm_queue_add_rate_limited (queue, "k", 0);
        zcm_queue_flush (queue, ZUBE_CTRL_BACKOFF_MAX_MS);
        free (zcm_queue_pop (queue));
    }
    zcm_queue_add_rate_limited (queue, "k", 0);
    ZT_ASSERT_INT_EQ (zcm_queue_flush (queue, 0), ZUBE_CTRL_BACKOFF_MAX_MS);
    //  Forgotten: from 5 ms again
    zcm_queue_forget (queue, "k");
    ZT_ASSERT_INT_EQ (zcm_queue_requeues (queue, "k"), 0);
    zcm_queue_flush (queue, ZUBE_CTRL_BACKOFF_MAX_MS);
    free (zcm_queue_pop (queue));
    zcm_queue_add_rate_limited (queue, "k", 0);
    ZT_ASSERT_INT_EQ (zcm_queue_flush (queue, 0), 5);
    //  Other keys have their own
    zcm_queue_add_rate_limited (queue, "other", 0);
    ZT_ASSERT_INT_EQ (zcm_queue_requeues (queue, "other"), 1);
    zcm_queue_destroy (&queue);
}

static void
test_controllers_flag_semantics (void)
{
    ZT_ASSERT (zcm_controller_enabled (NULL, "replicaset"));
    ZT_ASSERT (zcm_controller_enabled ("*", "replicaset"));
    ZT_ASSERT (!zcm_controller_enabled ("*,-replicaset", "replicaset"));
    ZT_ASSERT (zcm_controller_enabled ("*,-replicaset", "deployment"));
    ZT_ASSERT (zcm_controller_enabled ("replicaset", "replicaset"));
    ZT_ASSERT (!zcm_controller_enabled ("replicaset", "deployment"));
    //  The first word naming it decides
    ZT_ASSERT (zcm_controller_enabled ("replicaset,-replicaset", "replicaset"));
    ZT_ASSERT (!zcm_controller_enabled ("-replicaset,*,replicaset", "replicaset"));
    //  No prefix matches
    ZT_ASSERT (!zcm_controller_enabled ("replica", "replicaset"));
    ZT_ASSERT (!zcm_controller_enabled ("-replica", "deployment"));
}

int
main (void)
{
    ZT_RUN (test_queued_once_in_order);
    ZT_RUN (test_delays);
    ZT_RUN (test_backoff);
    ZT_RUN (test_controllers_flag_semantics);
    return zt_done ();
}
