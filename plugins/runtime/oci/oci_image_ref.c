/*  oci_image_ref - image reference normalization, as Kubernetes and
    containerd do it (docker's distribution/reference ParseNormalizedNamed
    then TagNameOnly): a name without a registry is on docker.io, a
    docker.io name of one part is under library/, and a name without tag
    or digest gets :latest. "busybox" -> "docker.io/library/busybox:latest",
    "index.docker.io/x/y" -> "docker.io/x/y:latest". */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "oci_image_private.h"

//  A path component: [a-z0-9]+ joined by ".", "_", "__" or "-"+.
static bool
s_valid_component (const char *at, size_t len)
{
    if (len == 0 || !isalnum ((unsigned char) at[0]) || !isalnum ((unsigned char) at[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) at[i];
        if (!(islower (c) || isdigit (c) || c == '.' || c == '_' || c == '-'))
            return false;
        if (c == '.' && i + 1 < len && !isalnum ((unsigned char) at[i + 1]))
            return false;
    }
    return true;
}

static bool
s_valid_domain (const char *at, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) at[i];
        if (!(isalnum (c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

static bool
s_valid_tag (const char *tag)
{
    size_t len = strlen (tag);
    if (len == 0 || len > 128 || !(isalnum ((unsigned char) tag[0]) || tag[0] == '_'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) tag[i];
        if (!(isalnum (c) || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool
s_valid_digest (const char *digest)
{
    if (strncmp (digest, "sha256:", 7) != 0 || strlen (digest) != 7 + 64)
        return false;
    for (const char *at = digest + 7; *at; at++)
        if (!isdigit ((unsigned char) *at) && !(*at >= 'a' && *at <= 'f'))
            return false;
    return true;
}

int
oci_image_normalize_ref (const char *ref, char *out, size_t out_size, char *err,
                         size_t err_size)
{
    char name[512];
    if (!ref || !*ref)
        return oci_image_fail (err, err_size, "invalid image reference \"\": empty");
    if (strlen (ref) >= sizeof name)
        return oci_image_fail (err, err_size, "invalid image reference: longer than %zu",
                               sizeof name - 1);
    snprintf (name, sizeof name, "%s", ref);
    char *digest = strchr (name, '@');
    if (digest) {
        *digest++ = '\0';
        if (!s_valid_digest (digest))
            return oci_image_fail (err, err_size,
                                   "invalid image reference \"%s\": bad digest \"%s\"", ref,
                                   digest);
    }
    char *tag = NULL;
    char *colon = strrchr (name, ':');
    if (colon && !strchr (colon, '/')) {
        *colon = '\0';
        tag = colon + 1;
        if (!s_valid_tag (tag))
            return oci_image_fail (err, err_size, "invalid image reference \"%s\": bad tag \"%s\"",
                                   ref, tag);
    }
    const char *domain = "docker.io";
    size_t domain_len = 9;
    const char *path = name;
    char *slash = strchr (name, '/');
    if (slash) {
        size_t len = (size_t) (slash - name);
        bool is_domain = memchr (name, '.', len) || memchr (name, ':', len)
                      || (len == 9 && strncmp (name, "localhost", 9) == 0);
        for (size_t i = 0; i < len; i++)
            if (isupper ((unsigned char) name[i]))
                is_domain = true;
        if (is_domain) {
            if (!s_valid_domain (name, len))
                return oci_image_fail (err, err_size,
                                       "invalid image reference \"%s\": bad registry \"%.*s\"",
                                       ref, (int) len, name);
            if (!(len == 15 && strncmp (name, "index.docker.io", 15) == 0)) {
                domain = name;
                domain_len = len;
            }
            path = slash + 1;
        }
    }
    for (const char *at = path;;) {
        const char *end = strchr (at, '/');
        size_t len = end ? (size_t) (end - at) : strlen (at);
        if (!s_valid_component (at, len)) {
            for (size_t i = 0; i < len; i++)
                if (isupper ((unsigned char) at[i]))
                    return oci_image_fail (err, err_size,
                                           "invalid image reference \"%s\": repository name "
                                           "must be lowercase",
                                           ref);
            return oci_image_fail (err, err_size,
                                   "invalid image reference \"%s\": bad name component \"%.*s\"",
                                   ref, (int) len, at);
        }
        if (!end)
            break;
        at = end + 1;
    }
    bool library = domain_len == 9 && strncmp (domain, "docker.io", 9) == 0 && !strchr (path, '/');
    int n = snprintf (out, out_size, "%.*s/%s%s%s%s%s%s", (int) domain_len, domain,
                      library ? "library/" : "", path, tag || !digest ? ":" : "",
                      tag ? tag : digest ? "" : "latest", digest ? "@" : "",
                      digest ? digest : "");
    if (n < 0 || (size_t) n >= out_size)
        return oci_image_fail (err, err_size, "invalid image reference \"%s\": too long", ref);
    return 0;
}
