/*  authz - who may do what: the apiserver's authorization policy.

    A policy is roles (lists of rules: verbs x resources, optionally
    namespaces, with Kubernetes RBAC's wildcards: "*" for any verb or
    resource; "*" then "/status" for that subresource of any resource) and bindings
    of identities (exact, or a prefix ending in "*") to roles. Three
    roles are built in: admin (anything), node (the node named by what
    the binding's "*" matched) and nodes (every node whose name starts
    with it). The built-in default policy is itself a YAML document,
    read by the same code as a policy file (docs/authorization.md). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "authz.h"
#include "core.pb-c.h"
#include "zube/kinds.h"

//  The default policy (docs/authorization.md shows it)
static const char s_default_policy[] =
    "roles:\n"
    "- name: scheduler\n"
    "  rules:\n"
    "  - verbs: [get, list, watch]\n"
    "    resources: ['*']\n"
    "  - verbs: [create]\n"
    "    resources: [pods/binding, events, leases]\n"
    "  - verbs: [update, patch]\n"
    "    resources: [pods/status, events, leases]\n"
    "  - verbs: [delete]\n"
    "    resources: [pods]\n"
    "- name: controller-manager\n"
    "  rules:\n"
    "  - verbs: [get, list, watch]\n"
    "    resources: ['*']\n"
    "  - verbs: [create, update, patch, delete]\n"
    "    resources: [pods, pods/status, replicasets, replicasets/status, "
    "replicasets/scale,\n"
    "                deployments, deployments/status, deployments/scale, daemonsets,\n"
    "                daemonsets/status, jobs, jobs/status, endpointslices, "
    "serviceaccounts,\n"
    "                namespaces, namespaces/status, nodes, nodes/status, leases, "
    "events]\n"
    "  - verbs: [delete]\n"
    "    resources: ['*']\n"
    "bindings:\n"
    "- identities: [admin, anonymous]\n"
    "  role: admin\n"
    "- identities: [scheduler]\n"
    "  role: scheduler\n"
    "- identities: [controller-manager]\n"
    "  role: controller-manager\n"
    "- identities: ['node-*']\n"
    "  role: node\n"
    "- identities: ['nodes-*']\n"
    "  role: nodes\n";

typedef enum {
    S_ROLE_RULES,
    S_ROLE_ADMIN,
    S_ROLE_NODE,
    S_ROLE_NODES,
} s_role_kind_t;

typedef struct {
    char **items;
    size_t count;
} s_list_t;

typedef struct {
    s_list_t verbs;
    s_list_t resources;
    s_list_t namespaces;
} s_rule_t;

typedef struct {
    char *name;
    s_role_kind_t kind;
    s_rule_t *rules;
    size_t n_rules;
} s_role_t;

typedef struct {
    char *pattern; //  exact, or a prefix when it ends in '*'
    size_t role;
} s_binding_t;

struct _zube_authz_t {
    s_role_t *roles;
    size_t n_roles;
    s_binding_t *bindings;
    size_t n_bindings;
    uint64_t denials;
};

static const char *const s_verbs[] = {"get",   "list",   "watch", "create", "update",
                                      "patch", "delete", "*",     NULL};

//  ---------------------------------------------------------------------
//  Lifecycle

static void
s_list_clear (s_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free (list->items[i]);
    free (list->items);
    list->items = NULL;
    list->count = 0;
}

void
zube_authz_destroy (zube_authz_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_authz_t *self = *self_p;
    for (size_t r = 0; r < self->n_roles; r++) {
        s_role_t *role = &self->roles[r];
        for (size_t i = 0; i < role->n_rules; i++) {
            s_list_clear (&role->rules[i].verbs);
            s_list_clear (&role->rules[i].resources);
            s_list_clear (&role->rules[i].namespaces);
        }
        free (role->rules);
        free (role->name);
    }
    free (self->roles);
    for (size_t b = 0; b < self->n_bindings; b++)
        free (self->bindings[b].pattern);
    free (self->bindings);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Loading

typedef struct {
    yaml_document_t *doc;
    const char *file;
    char *error;
    size_t error_size;
    zube_authz_t *self;
} s_loader_t;

static int s_fail (s_loader_t *l, const yaml_node_t *node, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (s_loader_t *l, const yaml_node_t *node, const char *format, ...)
{
    if (!l->error || !l->error_size)
        return -1;
    char message[512];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    if (node)
        snprintf (l->error, l->error_size, "%s: line %zu: %s", l->file,
                  node->start_mark.line + 1, message);
    else
        snprintf (l->error, l->error_size, "%s: %s", l->file, message);
    return -1;
}

static const char *
s_scalar (const yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value
                                                  : NULL;
}

static int
s_string_list (s_loader_t *l, yaml_node_t *node, const char *what, s_list_t *list,
               const char *const *allowed)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return s_fail (l, node, "%s must be a list of strings", what);
    size_t count =
        (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    list->items = calloc (count ? count : 1, sizeof *list->items);
    if (!list->items)
        return s_fail (l, node, "out of memory");
    for (yaml_node_item_t *item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++) {
        yaml_node_t *child = yaml_document_get_node (l->doc, *item);
        const char *text = s_scalar (child);
        if (!text || !*text)
            return s_fail (l, child, "%s must be a list of strings", what);
        if (allowed) {
            bool known = false;
            for (const char *const *a = allowed; *a && !known; a++)
                known = strcmp (*a, text) == 0;
            if (!known)
                return s_fail (l, child,
                               "unknown verb \"%s\" (expected get, list, watch, create, "
                               "update, patch, delete or *)",
                               text);
        }
        if (!(list->items[list->count] = strdup (text)))
            return s_fail (l, child, "out of memory");
        list->count++;
    }
    if (count == 0)
        return s_fail (l, node, "%s may not be empty", what);
    return 0;
}

static ptrdiff_t
s_role_find (const zube_authz_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_roles; i++)
        if (strcmp (self->roles[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

static int
s_role_add (zube_authz_t *self, const char *name, s_role_kind_t kind)
{
    s_role_t *roles = realloc (self->roles, (self->n_roles + 1) * sizeof *roles);
    if (!roles)
        return -1;
    self->roles = roles;
    self->roles[self->n_roles] = (s_role_t){.name = strdup (name), .kind = kind};
    if (!self->roles[self->n_roles].name)
        return -1;
    self->n_roles++;
    return 0;
}

static int
s_load_rule (s_loader_t *l, yaml_node_t *node, s_rule_t *rule)
{
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (l, node, "a rule must be a mapping with verbs and resources");
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node (l->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node (l->doc, pair->value);
        const char *name = s_scalar (key);
        int rc;
        if (name && strcmp (name, "verbs") == 0 && !rule->verbs.count)
            rc = s_string_list (l, value, "verbs", &rule->verbs, s_verbs);
        else if (name && strcmp (name, "resources") == 0 && !rule->resources.count)
            rc = s_string_list (l, value, "resources", &rule->resources, NULL);
        else if (name && strcmp (name, "namespaces") == 0 && !rule->namespaces.count)
            rc = s_string_list (l, value, "namespaces", &rule->namespaces, NULL);
        else
            return s_fail (l, key,
                           "unknown or repeated field \"%s\" in a rule (expected verbs, "
                           "resources, namespaces)",
                           name ? name : "?");
        if (rc)
            return rc;
    }
    if (!rule->verbs.count)
        return s_fail (l, node, "a rule needs verbs");
    if (!rule->resources.count)
        return s_fail (l, node, "a rule needs resources");
    return 0;
}

static int
s_load_role (s_loader_t *l, yaml_node_t *node)
{
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (l, node, "a role must be a mapping with name and rules");
    const char *name = NULL;
    yaml_node_t *rules = NULL;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node (l->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node (l->doc, pair->value);
        const char *field = s_scalar (key);
        if (field && strcmp (field, "name") == 0 && s_scalar (value) && *s_scalar (value))
            name = s_scalar (value);
        else if (field && strcmp (field, "rules") == 0 &&
                 value->type == YAML_SEQUENCE_NODE)
            rules = value;
        else
            return s_fail (l, key,
                           "unexpected field \"%s\" in a role (expected name: a string, "
                           "rules: a list)",
                           field ? field : "?");
    }
    if (!name)
        return s_fail (l, node, "a role needs a name");
    if (!rules)
        return s_fail (l, node, "role \"%s\" needs rules", name);
    if (s_role_find (l->self, name) >= 0)
        return s_fail (
            l, node, "role \"%s\" is defined twice (admin, node and nodes are built in)",
            name);
    if (s_role_add (l->self, name, S_ROLE_RULES))
        return s_fail (l, node, "out of memory");
    s_role_t *role = &l->self->roles[l->self->n_roles - 1];
    size_t count =
        (size_t)(rules->data.sequence.items.top - rules->data.sequence.items.start);
    role->rules = calloc (count ? count : 1, sizeof *role->rules);
    if (!role->rules)
        return s_fail (l, node, "out of memory");
    for (yaml_node_item_t *item = rules->data.sequence.items.start;
         item < rules->data.sequence.items.top; item++) {
        int rc = s_load_rule (l, yaml_document_get_node (l->doc, *item),
                              &role->rules[role->n_rules]);
        role->n_rules++;
        if (rc)
            return rc;
    }
    return 0;
}

static int
s_load_binding (s_loader_t *l, yaml_node_t *node)
{
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (l, node, "a binding must be a mapping with identities and role");
    yaml_node_t *identities = NULL, *role_node = NULL;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node (l->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node (l->doc, pair->value);
        const char *field = s_scalar (key);
        if (field && strcmp (field, "identities") == 0)
            identities = value;
        else if (field && strcmp (field, "role") == 0)
            role_node = value;
        else
            return s_fail (
                l, key, "unknown field \"%s\" in a binding (expected identities, role)",
                field ? field : "?");
    }
    if (!role_node || !s_scalar (role_node))
        return s_fail (l, node, "a binding needs a role");
    if (!identities)
        return s_fail (l, node, "a binding needs identities");
    ptrdiff_t role = s_role_find (l->self, s_scalar (role_node));
    if (role < 0)
        return s_fail (l, role_node, "unknown role \"%s\"", s_scalar (role_node));
    s_list_t list = {0};
    if (s_string_list (l, identities, "identities", &list, NULL)) {
        s_list_clear (&list);
        return -1;
    }
    s_role_kind_t kind = l->self->roles[role].kind;
    for (size_t i = 0; i < list.count; i++) {
        size_t len = strlen (list.items[i]);
        bool prefix = list.items[i][len - 1] == '*';
        if ((kind == S_ROLE_NODE || kind == S_ROLE_NODES) && !prefix) {
            s_fail (l, identities,
                    "role \"%s\" binds identities by prefix: \"%s\" must end in '*' (the "
                    "rest "
                    "names the node)",
                    l->self->roles[role].name, list.items[i]);
            s_list_clear (&list);
            return -1;
        }
        if (strchr (list.items[i], '*') != list.items[i] + len - 1 &&
            strchr (list.items[i], '*')) {
            s_fail (l, identities, "identity \"%s\": '*' may only end a prefix",
                    list.items[i]);
            s_list_clear (&list);
            return -1;
        }
    }
    s_binding_t *bindings = realloc (
        l->self->bindings, (l->self->n_bindings + list.count) * sizeof *bindings);
    if (!bindings) {
        s_list_clear (&list);
        return s_fail (l, node, "out of memory");
    }
    l->self->bindings = bindings;
    for (size_t i = 0; i < list.count; i++) {
        bindings[l->self->n_bindings++] =
            (s_binding_t){.pattern = list.items[i], .role = (size_t)role};
        list.items[i] = NULL;
    }
    s_list_clear (&list);
    return 0;
}

static int
s_load (s_loader_t *l, const char *text, size_t size)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize (&parser))
        return s_fail (l, NULL, "out of memory");
    yaml_parser_set_input_string (&parser, (const unsigned char *)text, size);
    if (!yaml_parser_load (&parser, &doc)) {
        if (l->error && l->error_size)
            snprintf (l->error, l->error_size, "%s: line %zu: %s%s%s", l->file,
                      parser.problem_mark.line + 1,
                      parser.problem ? parser.problem : "bad YAML",
                      parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete (&parser);
        return -1;
    }
    yaml_parser_delete (&parser);
    l->doc = &doc;
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node (&doc);
    if (!root) {
        rc = s_fail (l, NULL, "the policy is empty");
        goto done;
    }
    if (root->type != YAML_MAPPING_NODE) {
        rc = s_fail (l, root, "a policy is a mapping with roles and bindings");
        goto done;
    }
    //  Roles first, so bindings may name roles defined after them
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
             pair < root->data.mapping.pairs.top && !rc; pair++) {
            yaml_node_t *key = yaml_document_get_node (&doc, pair->key);
            yaml_node_t *value = yaml_document_get_node (&doc, pair->value);
            const char *field = s_scalar (key);
            bool roles = field && strcmp (field, "roles") == 0;
            bool bindings = field && strcmp (field, "bindings") == 0;
            if (!roles && !bindings) {
                rc = s_fail (l, key, "unknown field \"%s\" (expected roles, bindings)",
                             field ? field : "?");
                break;
            }
            if ((pass == 0) != roles)
                continue;
            if (value->type != YAML_SEQUENCE_NODE) {
                rc = s_fail (l, value, "%s must be a list", field);
                break;
            }
            for (yaml_node_item_t *item = value->data.sequence.items.start;
                 item < value->data.sequence.items.top && !rc; item++) {
                yaml_node_t *child = yaml_document_get_node (&doc, *item);
                rc = roles ? s_load_role (l, child) : s_load_binding (l, child);
            }
        }
    }
done:
    yaml_document_delete (&doc);
    return rc;
}

zube_authz_t *
zube_authz_new (const char *path, char *error, size_t error_size)
{
    zube_authz_t *self = calloc (1, sizeof *self);
    if (!self) {
        if (error && error_size)
            snprintf (error, error_size, "out of memory");
        return NULL;
    }
    s_loader_t loader = {
        .file = path ? path : "(built-in policy)",
        .error = error,
        .error_size = error_size,
        .self = self,
    };
    if (s_role_add (self, "admin", S_ROLE_ADMIN) ||
        s_role_add (self, "node", S_ROLE_NODE) ||
        s_role_add (self, "nodes", S_ROLE_NODES)) {
        s_fail (&loader, NULL, "out of memory");
        zube_authz_destroy (&self);
        return NULL;
    }
    char *text = NULL;
    size_t size = 0;
    if (path) {
        FILE *file = fopen (path, "rb");
        if (!file) {
            s_fail (&loader, NULL, "cannot open: %s", strerror (errno));
            zube_authz_destroy (&self);
            return NULL;
        }
        char chunk[4096];
        size_t n;
        while ((n = fread (chunk, 1, sizeof chunk, file)) > 0) {
            char *grown = realloc (text, size + n + 1);
            if (!grown) {
                free (text);
                fclose (file);
                s_fail (&loader, NULL, "out of memory");
                zube_authz_destroy (&self);
                return NULL;
            }
            text = grown;
            memcpy (text + size, chunk, n);
            size += n;
        }
        fclose (file);
    }
    int rc = path ? s_load (&loader, text ? text : "", size)
                  : s_load (&loader, s_default_policy, strlen (s_default_policy));
    free (text);
    if (rc) {
        zube_authz_destroy (&self);
        return NULL;
    }
    return self;
}

//  ---------------------------------------------------------------------
//  Decisions

static bool
s_list_has (const s_list_t *list, const char *value)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcmp (list->items[i], "*") == 0 || strcmp (list->items[i], value) == 0)
            return true;
    return false;
}

//  RBAC's ResourceMatches: "*", the exact "pods/status", or "*" + "/status"
static bool
s_resource_matches (const s_list_t *list, const char *combined, const char *subresource)
{
    for (size_t i = 0; i < list->count; i++) {
        const char *rule = list->items[i];
        if (strcmp (rule, "*") == 0 || strcmp (rule, combined) == 0)
            return true;
        if (subresource && *subresource && strncmp (rule, "*/", 2) == 0 &&
            strcmp (rule + 2, subresource) == 0)
            return true;
    }
    return false;
}

static bool
s_rules_allow (const s_role_t *role, const zube_authz_request_t *r, const char *combined)
{
    for (size_t i = 0; i < role->n_rules; i++) {
        const s_rule_t *rule = &role->rules[i];
        if (!s_list_has (&rule->verbs, r->verb))
            continue;
        if (!s_resource_matches (&rule->resources, combined, r->subresource))
            continue;
        if (rule->namespaces.count && !(r->namespace && *r->namespace &&
                                        s_list_has (&rule->namespaces, r->namespace)))
            continue;
        return true;
    }
    return false;
}

static const char *
s_pod_node (const ProtobufCMessage *object)
{
    if (!object || object->descriptor != &zube__pod__descriptor)
        return NULL;
    const Zube__Pod *pod = (const Zube__Pod *)object;
    return pod->spec ? pod->spec->node_name : NULL;
}

static bool
s_is_read (const char *verb)
{
    return strcmp (verb, "get") == 0 || strcmp (verb, "list") == 0 ||
           strcmp (verb, "watch") == 0;
}

//  The node rules. node is the node's name (prefix: any node whose name
//  starts with it). why gets the reason of a denial.
static bool
s_node_allows (const zube_authz_request_t *r, const char *node, bool prefix, char *why,
               size_t why_size)
{
    const char *resource = r->resource;
    const char *sub = r->subresource && *r->subresource ? r->subresource : NULL;
#define S_OWN(name)                                                                      \
    ((name) &&                                                                           \
     (prefix ? strncmp ((name), node, strlen (node)) == 0 && (name)[strlen (node)]       \
             : strcmp ((name), node) == 0))
    if (s_is_read (r->verb))
        return true;
    if (strcmp (resource, "nodes") == 0) {
        if (S_OWN (r->name))
            return true;
        snprintf (why, why_size, "a node may only write its own Node object");
        return false;
    }
    if (strcmp (resource, "leases") == 0) {
        if (r->namespace && strcmp (r->namespace, "kube-node-lease") == 0 &&
            S_OWN (r->name))
            return true;
        snprintf (why, why_size,
                  "a node may only write its own Lease in the kube-node-lease namespace");
        return false;
    }
    if (strcmp (resource, "events") == 0 && strcmp (r->verb, "create") == 0 && !sub)
        return true;
    if (strcmp (resource, "pods") == 0) {
        bool status_write =
            sub && strcmp (sub, "status") == 0 &&
            (strcmp (r->verb, "update") == 0 || strcmp (r->verb, "patch") == 0);
        bool delete = !sub && strcmp (r->verb, "delete") == 0;
        if (status_write || delete) {
            const char *old_node = s_pod_node (r->old);
            const char *new_node = r->object ? s_pod_node (r->object) : old_node;
            if (S_OWN (old_node) && S_OWN (new_node))
                return true;
            snprintf (why, why_size, "a node may only %s pods bound to it",
                      delete ? "delete" : "update the status of");
            return false;
        }
        snprintf (why, why_size, "a node may only update the status of pods bound to it");
        return false;
    }
#undef S_OWN
    snprintf (why, why_size, "a node may not write %s", resource);
    return false;
}

static bool
s_binding_matches (const s_binding_t *b, const char *identity, const char **rest_p)
{
    size_t len = strlen (b->pattern);
    if (b->pattern[len - 1] == '*') {
        if (strncmp (identity, b->pattern, len - 1) != 0 || !identity[len - 1])
            return false;
        *rest_p = identity + len - 1;
        return true;
    }
    *rest_p = NULL;
    return strcmp (identity, b->pattern) == 0;
}

bool
zube_authz_allowed (zube_authz_t *self, const zube_authz_request_t *request, char *reason,
                    size_t reason_size)
{
    if (reason && reason_size)
        reason[0] = 0;
    const char *identity = request && request->identity ? request->identity : "";
    const char *verb = request && request->verb ? request->verb : "";
    const char *resource = request && request->resource ? request->resource : "";
    const char *sub = request && request->subresource && *request->subresource
                          ? request->subresource
                          : NULL;
    char combined[256];
    snprintf (combined, sizeof combined, "%s%s%s", resource, sub ? "/" : "",
              sub ? sub : "");
    zube_authz_request_t r = request ? *request : (zube_authz_request_t){0};
    r.identity = identity;
    r.verb = verb;
    r.resource = resource;
    char why[256] = "";
    if (self) {
        for (size_t i = 0; i < self->n_bindings; i++) {
            const char *rest = NULL;
            if (!s_binding_matches (&self->bindings[i], identity, &rest))
                continue;
            const s_role_t *role = &self->roles[self->bindings[i].role];
            switch (role->kind) {
            case S_ROLE_ADMIN:
                return true;
            case S_ROLE_RULES:
                if (s_rules_allow (role, &r, combined))
                    return true;
                break;
            case S_ROLE_NODE:
            case S_ROLE_NODES:
                if (rest &&
                    s_node_allows (&r, rest, role->kind == S_ROLE_NODES, why, sizeof why))
                    return true;
                break;
            }
        }
        __atomic_add_fetch (&self->denials, 1, __ATOMIC_RELAXED);
    }
    if (reason && reason_size) {
        const zube_kind_t *kind = zube_kind_by_resource (resource);
        const char *group = kind ? kind->group : "";
        const char *ns = request && request->namespace ? request->namespace : "";
        char scope[300];
        if (*ns)
            snprintf (scope, sizeof scope, "in the namespace \"%s\"", ns);
        else
            snprintf (scope, sizeof scope, "at the cluster scope");
        snprintf (reason, reason_size,
                  "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" %s%s%s",
                  identity, verb, combined, group, scope, why[0] ? ": " : "", why);
    }
    return false;
}

uint64_t
zube_authz_denials (zube_authz_t *self)
{
    return self ? __atomic_load_n (&self->denials, __ATOMIC_RELAXED) : 0;
}
