/*  zube_leader - leader election through a coordination.k8s.io Lease, as
    Kubernetes' client-go leaderelection package (docs/leader-election.md).

    Candidates share one Lease (kube-system/kube-controller-manager). A
    candidate acquires it when it does not exist, or when its holder has not
    renewed it for leaseDurationSeconds as this candidate observed on its own
    clock (never trusting another host's timestamps); every write carries
    the resourceVersion it read, so of two candidates writing at once one
    gets Conflict and stays a follower. The leader renews every retry
    period; when no renew succeeded for the renew deadline it has lost the
    lease and must stop acting (Kubernetes' components exit). Since the
    renew deadline is shorter than the lease duration, a leader stops before
    any other candidate can take over.

        zube_leader_t *leader = zube_leader_new (api, &(zube_leader_config_t){
            .namespace_ = "kube-system", .name = "kube-scheduler",
            .identity = "host_1234"}, error, sizeof error);
        while (running) {
            int64_t next_ms;
            zube_leader_state_t state = zube_leader_tick (leader, &next_ms);
            if (state == ZUBE_LEADER_LOST)
                break;                      //  exit: another may lead now
            if (state == ZUBE_LEADER_LEADING)
                ... act ...
            zube_bus_poll (bus, next_ms);
        }
        zube_leader_release (leader);       //  the next takes over at once
        zube_leader_destroy (&leader);

    It makes synchronous calls through the zube_api_t it borrows, from
    zube_leader_tick only, on the thread that uses that api. */
#ifndef ZUBE_LEADER_H_INCLUDED
#define ZUBE_LEADER_H_INCLUDED

#include "zube/api.h"
#include "zube/config.h"
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Kubernetes' defaults (kube-controller-manager, kube-scheduler)
#define ZUBE_LEADER_DEFAULT_LEASE_DURATION_MS 15000
#define ZUBE_LEADER_DEFAULT_RENEW_DEADLINE_MS 10000
#define ZUBE_LEADER_DEFAULT_RETRY_PERIOD_MS 2000
#define ZUBE_LEADER_DEFAULT_NAMESPACE "kube-system"

typedef struct _zube_leader_t zube_leader_t;

typedef enum {
    //  Another holds a valid lease, or none was acquired yet.
    ZUBE_LEADER_FOLLOWING = 0,
    //  This candidate holds the lease and renewed it within the deadline.
    ZUBE_LEADER_LEADING = 1,
    //  It held the lease and could not renew it within the renew deadline:
    //  stop acting at once. Stays LOST.
    ZUBE_LEADER_LOST = 2
} zube_leader_state_t;

typedef struct {
    //  The Lease (namespace_ NULL: kube-system). name is required.
    const char *namespace_;
    const char *name;
    //  holderIdentity; required, unique per candidate.
    const char *identity;
    //  0: the defaults above. Needs lease > renew deadline > retry period.
    int lease_duration_ms;
    int renew_deadline_ms;
    int retry_period_ms;
} zube_leader_config_t;

//  NULL with error when the config is incomplete or inconsistent.
//  Borrows api, which must outlive the leader.
zube_leader_t *zube_leader_new (zube_api_t *api, const zube_leader_config_t *config,
                                char *error, size_t error_size);
void zube_leader_destroy (zube_leader_t **self_p);

//  Tries to acquire or renew when the retry period has passed since the
//  last try (else does nothing) and answers the state; *next_ms_p (may be
//  NULL): milliseconds until it wants to be called again.
zube_leader_state_t zube_leader_tick (zube_leader_t *self, int64_t *next_ms_p);
bool zube_leader_is_leader (zube_leader_t *self);
//  How often this candidate acquired the lease.
uint64_t zube_leader_acquisitions (zube_leader_t *self);
//  When leading: clears holderIdentity (leaseDurationSeconds 1), so a
//  standby takes over without waiting out the lease, as client-go's
//  ReleaseOnCancel. Then FOLLOWING.
void zube_leader_release (zube_leader_t *self);

//  A duration as the --leader-elect-* flags take it, Kubernetes style:
//  "15s", "500ms", "1m", or a bare number of seconds. Milliseconds, or -1
//  when it is not one (or longer than a day).
int zube_leader_duration_ms (const char *text);

//  A zube_flag_valid_fn (zube/config.h) for those flags: a duration above 0.
#define ZUBE_LEADER_DURATION_EXPECTED "a duration such as 15s or 500ms"
bool zube_leader_flag_valid_duration (const char *value);

//  The --leader-elect* flags and --identity, as kube-scheduler and
//  kube-controller-manager take them (checked). rows is their table for
//  zube_flags_parse, pointing into the struct: init it where it stays.
typedef struct {
    const char *elect; //  "true" or "false"
    const char *lease_duration;
    const char *renew_deadline;
    const char *retry_period;
    const char *namespace_;
    const char *name;
    const char *identity;
    zube_flag_t rows[8];
} zube_leader_flags_t;

void zube_leader_flags_init (zube_leader_flags_t *self);

#ifdef __cplusplus
}
#endif
#endif
