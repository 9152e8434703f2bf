/*  test_sched_preempt - ImageLocality on an in-memory node cache (no
    bus): the node holding the pod's image wins. The plugins are the
    shared objects just built ($ZUBE_BUILDDIR/plugins). */
#include "zs_sched.h"
#include "zube/codec.h"
#include "zube_test.h"
#include <czmq.h>

static zs_registry_t *s_registry;

//  A node with cpu, memory, 110 pods and status.images (YAML flow).
static void
s_node (zs_cache_t *cache, const char *name, const char *cpu, const char *images)
{
    char yaml[2048];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: %s}\n"
              "status: {allocatable: {cpu: '%s', memory: 16Gi, pods: '110'}, "
              "images: %s}\n",
              name, cpu, images ? images : "[]");
    ProtobufCMessage *node = NULL;
    zube_codec_error_t error;
    ZT_ASSERT_MSG (zube_codec_decode (yaml, strlen (yaml), &zube__node__descriptor, &node,
                                      &error) == 0,
                   "node: %s", error.message);
    ZT_ASSERT (zs_cache_node_set (cache, (Zube__Node *)node) >= 0);
    protobuf_c_message_free_unpacked (node, NULL);
}

//  A pod with one container asking for cpu, at priority, image image.
static zs_pod_t *
s_pod (const char *name, const char *cpu, int priority, const char *image,
       const char *more)
{
    char yaml[2048];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: %s, namespace: default, uid: uid-%s, "
              "creationTimestamp: '2026-01-01T00:00:00Z'}\n"
              "spec: {priority: %d, %s containers: [{name: c, image: '%s', "
              "resources: {requests: {cpu: '%s', memory: 1Mi}}}]}\n",
              name, name, priority, more ? more : "", image, cpu);
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

static zs_profile_t *
s_profile (const char *yaml)
{
    zs_profiles_t profiles;
    char error[1024];
    ZT_ASSERT_MSG (zs_profiles_load (s_registry, yaml, &profiles, error, sizeof error) ==
                       0,
                   "profiles: %.900s", error);
    zs_profile_t *profile = profiles.profiles[0];
    profiles.profiles[0] = NULL;
    for (size_t i = 1; i < profiles.count; i++)
        zs_profile_destroy (&profiles.profiles[i]);
    free (profiles.profiles);
    return profile;
}

static void
test_image_locality (void)
{
    zs_cache_t *cache = zs_cache_new ();
    //  Only ImageLocality scores, so the image decides
    zs_profile_t *profile = s_profile (
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "profiles:\n"
        "- schedulerName: default-scheduler\n"
        "  plugins:\n"
        "    score:\n"
        "      disabled: [{name: '*'}]\n"
        "      enabled: [{name: ImageLocality}]\n");
    s_node (cache, "bare", "4", NULL);
    s_node (cache, "cached", "4",
            "[{names: ['docker.io/library/big:latest', 'big:latest'], "
            "sizeBytes: 524288000}]");
    s_node (cache, "other", "4", "[{names: ['small:1'], sizeBytes: 1048576}]");
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf (name, sizeof name, "p%d", i);
        //  "big" is normalized to "big:latest"
        zs_pod_t *pod = s_pod (name, "100m", 0, "big", NULL);
        zs_result_t result;
        ZT_ASSERT (zs_profile_schedule (profile, cache, pod, &result) == 0);
        ZT_ASSERT_STR_EQ (result.node->name, "cached");
        zs_pod_destroy (&pod);
    }
    char *text = NULL;
    //  The explain report shows the score: 500 MB on 1 of 3 nodes is
    //  166 MB of the 23..1000 MB range: 100 * (166 - 23) / 977 = 14
    zs_pod_t *pod = s_pod ("q", "100m", 0, "big:latest", NULL);
    text = zs_profile_explain (profile, cache, pod, 3);
    ZT_ASSERT (text);
    ZT_ASSERT_MSG (strstr (text, "cached") && strstr (text, "14"), "%s", text);
    free (text);
    zs_pod_destroy (&pod);
    zs_profile_destroy (&profile);
    //  In the default profile with weight 1
    profile = s_profile (NULL);
    char *described = zs_profile_describe (profile);
    ZT_ASSERT_MSG (strstr (described, "ImageLocality*1"), "%s", described);
    free (described);
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

int
main (void)
{
    s_registry = zs_registry_new (NULL);
    ZT_RUN (test_image_locality);
    zs_registry_destroy (&s_registry);
    return zt_done ();
}
