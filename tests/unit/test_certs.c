/*  test_certs - the certificate directory: names, layout, modes, and the
    public key -> name map the broker uses. */
//  zt_rmtree's path buffer trips -Wformat-truncation when inlined here
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zube_testproc.h"
#pragma GCC diagnostic pop
#include "../zube_test.h"
#include <czmq.h>
#include "zube/certs.h"

static mode_t
s_mode (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? (st.st_mode & 0777) : (mode_t) -1;
}

static void
test_name_valid (void)
{
    ZT_ASSERT (zube_certs_name_valid ("alice"));
    ZT_ASSERT (zube_certs_name_valid ("node-1.example"));
    ZT_ASSERT (zube_certs_name_valid ("sim_0001"));
    ZT_ASSERT (zube_certs_name_valid ("a"));
    //  The identity of a zubelet hosting the nodes sim-0001, sim-0002, ...
    ZT_ASSERT (zube_certs_name_valid ("nodes-sim-"));
    ZT_ASSERT (!zube_certs_name_valid ("-a"));
    ZT_ASSERT (!zube_certs_name_valid ("a."));
    ZT_ASSERT (!zube_certs_name_valid ("a_"));
    ZT_ASSERT (!zube_certs_name_valid (NULL));
    ZT_ASSERT (!zube_certs_name_valid (""));
    ZT_ASSERT (!zube_certs_name_valid ("Alice"));
    ZT_ASSERT (!zube_certs_name_valid ("a/b"));
    ZT_ASSERT (!zube_certs_name_valid (".."));
    ZT_ASSERT (!zube_certs_name_valid ("-a"));
    ZT_ASSERT (!zube_certs_name_valid ("a."));
    char longest [300];
    memset (longest, 'a', sizeof longest);
    longest [253] = 0;
    ZT_ASSERT (zube_certs_name_valid (longest));
    longest [253] = 'a';
    longest [254] = 0;
    ZT_ASSERT (!zube_certs_name_valid (longest));
}

static void
test_paths (void)
{
    char buf [256];
    ZT_ASSERT_STR_EQ (zube_certs_public_path ("/d", "broker", buf, sizeof buf), "/d/broker.cert");
    ZT_ASSERT_STR_EQ (zube_certs_secret_path ("/d", "broker", buf, sizeof buf),
                      "/d/broker.cert_secret");
    ZT_ASSERT_STR_EQ (zube_certs_public_path ("/d", "alice", buf, sizeof buf),
                      "/d/public/alice.cert");
    ZT_ASSERT_STR_EQ (zube_certs_secret_path ("/d", "alice", buf, sizeof buf),
                      "/d/private/alice.cert_secret");
    ZT_ASSERT (zube_certs_public_path ("/d", "alice", buf, 5) == NULL);
}

static void
test_create (void)
{
    char *tmp = zt_tempdir ("certs");
    char dir [512], path [600], error [256];
    snprintf (dir, sizeof dir, "%s/cluster", tmp);
    ZT_ASSERT_MSG (zube_certs_create (dir, "broker", error, sizeof error) == 0, "%s", error);
    ZT_ASSERT_MSG (zube_certs_create (dir, "alice", error, sizeof error) == 0, "%s", error);
    ZT_ASSERT_INT_EQ (s_mode (dir), 0700);
    snprintf (path, sizeof path, "%s/private", dir);
    ZT_ASSERT_INT_EQ (s_mode (path), 0700);
    snprintf (path, sizeof path, "%s/public", dir);
    ZT_ASSERT_INT_EQ (s_mode (path), 0700);
    ZT_ASSERT_INT_EQ (s_mode (zube_certs_secret_path (dir, "broker", path, sizeof path)), 0600);
    ZT_ASSERT_INT_EQ (s_mode (zube_certs_secret_path (dir, "alice", path, sizeof path)), 0600);

    //  The public certificate names its owner
    zcert_t *alice = zcert_load (zube_certs_public_path (dir, "alice", path, sizeof path));
    ZT_ASSERT (alice);
    ZT_ASSERT_STR_EQ (zcert_meta (alice, "name"), "alice");
    char key [41];
    snprintf (key, sizeof key, "%s", zcert_public_txt (alice));
    zcert_destroy (&alice);
    //  ... and the secret one holds the same key
    zcert_t *secret = zcert_load (zube_certs_secret_path (dir, "alice", path, sizeof path));
    ZT_ASSERT (secret);
    ZT_ASSERT_STR_EQ (zcert_public_txt (secret), key);
    zcert_destroy (&secret);

    //  Idempotent: the key is kept
    ZT_ASSERT (zube_certs_create (dir, "alice", error, sizeof error) == 0);
    alice = zcert_load (zube_certs_public_path (dir, "alice", path, sizeof path));
    ZT_ASSERT_STR_EQ (zcert_public_txt (alice), key);
    zcert_destroy (&alice);
    //  A lost public certificate is restored from the secret one
    unlink (zube_certs_public_path (dir, "alice", path, sizeof path));
    ZT_ASSERT (zube_certs_create (dir, "alice", error, sizeof error) == 0);
    alice = zcert_load (path);
    ZT_ASSERT (alice);
    ZT_ASSERT_STR_EQ (zcert_public_txt (alice), key);
    zcert_destroy (&alice);
    //  A lost secret is an error, not a silent new key
    unlink (zube_certs_secret_path (dir, "alice", path, sizeof path));
    ZT_ASSERT (zube_certs_create (dir, "alice", error, sizeof error) == -1);
    ZT_ASSERT_STR_CONTAINS (error, "missing");
    //  Bad names
    ZT_ASSERT (zube_certs_create (dir, "../evil", error, sizeof error) == -1);
    ZT_ASSERT_STR_CONTAINS (error, "invalid certificate name");
    zt_rmtree (tmp);
    free (tmp);
}

static void
test_names (void)
{
    char *tmp = zt_tempdir ("names");
    char error [256], path [600];
    ZT_ASSERT (zube_certs_create (tmp, "broker", error, sizeof error) == 0);
    ZT_ASSERT (zube_certs_create (tmp, "alice", error, sizeof error) == 0);
    ZT_ASSERT (zube_certs_create (tmp, "bob", error, sizeof error) == 0);
    zube_certs_names_t *names = zube_certs_names_new (tmp);
    ZT_ASSERT (names);
    ZT_ASSERT_INT_EQ (zube_certs_names_size (names), 2);
    zcert_t *alice = zcert_load (zube_certs_public_path (tmp, "alice", path, sizeof path));
    ZT_ASSERT_STR_EQ (zube_certs_names_lookup (names, zcert_public_txt (alice)), "alice");
    zcert_destroy (&alice);
    ZT_ASSERT (zube_certs_names_lookup (names, "0000000000000000000000000000000000000000") == NULL);

    //  A certificate added later is found (the directory changed)
    usleep (20000);
    ZT_ASSERT (zube_certs_create (tmp, "carol", error, sizeof error) == 0);
    zcert_t *carol = zcert_load (zube_certs_public_path (tmp, "carol", path, sizeof path));
    ZT_ASSERT_STR_EQ (zube_certs_names_lookup (names, zcert_public_txt (carol)), "carol");
    zcert_destroy (&carol);
    ZT_ASSERT_INT_EQ (zube_certs_names_size (names), 3);
    zube_certs_names_destroy (&names);
    ZT_ASSERT (names == NULL);

    //  A directory without public/ is an error
    ZT_ASSERT (zube_certs_names_new ("/nonexistent/zube") == NULL);
    zt_rmtree (tmp);
    free (tmp);
}

int
main (void)
{
    ZT_RUN (test_name_valid);
    ZT_RUN (test_paths);
    ZT_RUN (test_create);
    ZT_RUN (test_names);
    return zt_done ();
}
