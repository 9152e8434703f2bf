/*  zt_sched - what the scheduler's unit tests share: nodes and pods from
    YAML into an in-memory cache, and profiles from a
    KubeSchedulerConfiguration. Include after zs_sched.h and zube_test.h. */
#ifndef ZT_SCHED_H_INCLUDED
#define ZT_SCHED_H_INCLUDED

#include "zube/codec.h"

#define ZT_SCHED_UNUSED __attribute__ ((unused))

//  Decodes a Node from YAML and puts it in cache.
static ZT_SCHED_UNUSED void
zt_sched_node_add (zs_cache_t *cache, const char *yaml)
{
    ProtobufCMessage *node = NULL;
    zube_codec_error_t error;
    ZT_ASSERT_MSG (zube_codec_decode (yaml, strlen (yaml), &zube__node__descriptor, &node,
                                      &error) == 0,
                   "node: %s (%s)", error.message, error.field);
    ZT_ASSERT (zs_cache_node_set (cache, (Zube__Node *)node) >= 0);
    protobuf_c_message_free_unpacked (node, NULL);
}

//  Decodes a Pod from YAML into the scheduler's pod digest.
static ZT_SCHED_UNUSED zs_pod_t *
zt_sched_pod (const char *yaml)
{
    ProtobufCMessage *object = NULL;
    zube_codec_error_t error;
    ZT_ASSERT_MSG (zube_codec_decode (yaml, strlen (yaml), &zube__pod__descriptor,
                                      &object, &error) == 0,
                   "pod: %s (%s)", error.message, error.field);
    zs_pod_t *pod = zs_pod_new ((Zube__Pod *)object);
    protobuf_c_message_free_unpacked (object, NULL);
    ZT_ASSERT (pod);
    return pod;
}

//  The first profile of a configuration (NULL: the default one); the
//  others are dropped.
static ZT_SCHED_UNUSED zs_profile_t *
zt_sched_profile (zs_registry_t *registry, const char *yaml)
{
    zs_profiles_t profiles;
    char error[1024];
    ZT_ASSERT_MSG (zs_profiles_load (registry, yaml, &profiles, error, sizeof error) == 0,
                   "profiles: %.900s", error);
    zs_profile_t *profile = profiles.profiles[0];
    profiles.profiles[0] = NULL;
    for (size_t i = 1; i < profiles.count; i++)
        zs_profile_destroy (&profiles.profiles[i]);
    free (profiles.profiles);
    return profile;
}

#endif
