/*  zube_selector - Kubernetes label and field selectors.

    The label selector parser is a transcription of Kubernetes' own
    (k8s.io/apimachinery/pkg/labels/selector.go): the same lexer, the
    same recursive descent, and the same error messages, so a selector
    that kubectl rejects is rejected here with the words kubectl uses.
    Field selectors follow pkg/fields/selector.go (terms split on
    unescaped commas, values unescaped with \\ \, \=), and the fields a
    kind allows are the ones its Kubernetes registry strategy selects on;
    their values are read from the object through its descriptor. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zube/codec.h"
#include "zube/kinds.h"
#include "zube/selector.h"

//  ---------------------------------------------------------------------
//  Helpers

static void
s_error (char *error, size_t size, const char *format, ...)
{
    if (!error || size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (error, size, format, args);
    va_end (args);
}

//  A growing string (all-or-nothing on allocation failure: ok false)
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool ok;
} s_buf_t;

static void
s_buf_add (s_buf_t *buf, const char *text, size_t len)
{
    if (!buf->ok)
        return;
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 64;
        while (cap < buf->len + len + 1)
            cap *= 2;
        char *data = realloc (buf->data, cap);
        if (!data) {
            buf->ok = false;
            return;
        }
        buf->data = data;
        buf->cap = cap;
    }
    memcpy (buf->data + buf->len, text, len);
    buf->len += len;
    buf->data[buf->len] = 0;
}

static void
s_buf_puts (s_buf_t *buf, const char *text)
{
    s_buf_add (buf, text, strlen (text));
}

static void s_buf_printf (s_buf_t *buf, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_buf_printf (s_buf_t *buf, const char *format, ...)
{
    char small[256];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (small, sizeof small, format, args);
    va_end (args);
    if (n < 0) {
        buf->ok = false;
        return;
    }
    if ((size_t)n < sizeof small) {
        s_buf_add (buf, small, (size_t)n);
        return;
    }
    char *big = malloc ((size_t)n + 1);
    if (!big) {
        buf->ok = false;
        return;
    }
    va_start (args, format);
    vsnprintf (big, (size_t)n + 1, format, args);
    va_end (args);
    s_buf_add (buf, big, (size_t)n);
    free (big);
}

//  Returns the string (caller frees) or NULL
static char *
s_buf_take (s_buf_t *buf)
{
    if (!buf->ok) {
        free (buf->data);
        return NULL;
    }
    if (!buf->data)
        return strdup ("");
    return buf->data;
}

static int
s_strcmp_p (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

//  ---------------------------------------------------------------------
//  Name validation (k8s.io/apimachinery/pkg/util/validation)

#define S_QNAME_FMT "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
#define S_QNAME_MSG                                                                      \
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "  \
    "with an alphanumeric character"
#define S_QNAME_EXAMPLES "(e.g. 'MyName',  or 'my.name',  or '123-abc', "
#define S_LABEL_VALUE_MSG                                                                \
    "a valid label must be an empty string or consist of alphanumeric characters, '-', " \
    "'_' or '.', and must start and end with an alphanumeric character (e.g. "           \
    "'MyValue',  or 'my_value',  or '12345', regex used for validation is "              \
    "'(" S_QNAME_FMT ")?')"
#define S_DNS_LABEL_FMT "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
#define S_DNS_LABEL_MSG                                                                  \
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "  \
    "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "   \
    "'123-abc', regex used for validation is '" S_DNS_LABEL_FMT "')"
#define S_DNS_SUBDOMAIN_MSG                                                              \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "            \
    "characters, '-' or '.', and must start and end with an alphanumeric character "     \
    "(e.g. 'example.com', regex used for validation is '" S_DNS_LABEL_FMT                \
    "(\\." S_DNS_LABEL_FMT ")*')"

static bool
s_is_alnum (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
s_is_lower_alnum (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

//  ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over text[0..len)
static bool
s_qualified_name_matches (const char *text, size_t len)
{
    if (len == 0 || !s_is_alnum (text[0]) || !s_is_alnum (text[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!s_is_alnum (c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

//  One DNS-1123 label over text[0..len)
static bool
s_dns_label_matches (const char *text, size_t len)
{
    if (len == 0 || !s_is_lower_alnum (text[0]) || !s_is_lower_alnum (text[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_is_lower_alnum (text[i]) && text[i] != '-')
            return false;
    return true;
}

static bool
s_dns_subdomain_matches (const char *text, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '.') {
            if (!s_dns_label_matches (text + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

//  Appends one message to a "; "-joined list
static void
s_join (s_buf_t *buf, const char *message)
{
    if (buf->len)
        s_buf_puts (buf, "; ");
    s_buf_puts (buf, message);
}

static int
s_finish (s_buf_t *buf, char *error, size_t size)
{
    int rc = buf->len ? -1 : 0;
    if (rc)
        s_error (error, size, "%s", buf->ok ? buf->data : "out of memory");
    free (buf->data);
    return rc;
}

static void
s_subdomain_errors (s_buf_t *buf, const char *prefix, const char *text, size_t len)
{
    char message[600];
    if (len > 253) {
        snprintf (message, sizeof message, "%smust be no more than 253 characters",
                  prefix);
        s_join (buf, message);
    }
    if (!s_dns_subdomain_matches (text, len)) {
        snprintf (message, sizeof message, "%s%s", prefix, S_DNS_SUBDOMAIN_MSG);
        s_join (buf, message);
    }
}

int
zube_dns1123_subdomain_validate (const char *name, char *error, size_t error_size)
{
    s_buf_t buf = {.ok = true};
    if (!name)
        name = "";
    s_subdomain_errors (&buf, "", name, strlen (name));
    return s_finish (&buf, error, error_size);
}

int
zube_dns1123_label_validate (const char *name, char *error, size_t error_size)
{
    s_buf_t buf = {.ok = true};
    if (!name)
        name = "";
    size_t len = strlen (name);
    if (len > 63)
        s_join (&buf, "must be no more than 63 characters");
    if (!s_dns_label_matches (name, len)) {
        if (s_dns_subdomain_matches (name, len))
            s_join (&buf, "must not contain dots");
        else
            s_join (&buf, S_DNS_LABEL_MSG);
    }
    return s_finish (&buf, error, error_size);
}

int
zube_label_key_validate (const char *key, char *error, size_t error_size)
{
    s_buf_t buf = {.ok = true};
    if (!key)
        key = "";
    const char *slash = strchr (key, '/');
    const char *name = key;
    if (slash && strchr (slash + 1, '/')) {
        s_join (&buf, "a qualified name " S_QNAME_MSG " " S_QNAME_EXAMPLES
                      "regex used for validation is '" S_QNAME_FMT
                      "') with an optional DNS subdomain prefix and '/' (e.g. "
                      "'example.com/MyName')");
        return s_finish (&buf, error, error_size);
    }
    if (slash) {
        size_t prefix_len = (size_t)(slash - key);
        if (prefix_len == 0)
            s_join (&buf, "prefix part must be non-empty");
        else
            s_subdomain_errors (&buf, "prefix part ", key, prefix_len);
        name = slash + 1;
    }
    size_t len = strlen (name);
    if (len == 0)
        s_join (&buf, "name part must be non-empty");
    else if (len > 63)
        s_join (&buf, "name part must be no more than 63 characters");
    if (!s_qualified_name_matches (name, len))
        s_join (&buf, "name part " S_QNAME_MSG " " S_QNAME_EXAMPLES
                      "regex used for validation is '" S_QNAME_FMT "')");
    return s_finish (&buf, error, error_size);
}

int
zube_label_value_validate (const char *value, char *error, size_t error_size)
{
    s_buf_t buf = {.ok = true};
    if (!value)
        value = "";
    size_t len = strlen (value);
    if (len > 63)
        s_join (&buf, "must be no more than 63 characters");
    if (len > 0 && !s_qualified_name_matches (value, len))
        s_join (&buf, S_LABEL_VALUE_MSG);
    return s_finish (&buf, error, error_size);
}

//  ---------------------------------------------------------------------
//  Label selectors: requirements

typedef enum {
    S_OP_IN,
    S_OP_NOT_IN,
    S_OP_EQUALS,
    S_OP_DOUBLE_EQUALS,
    S_OP_NOT_EQUALS,
    S_OP_EXISTS,
    S_OP_DOES_NOT_EXIST,
    S_OP_GREATER_THAN,
    S_OP_LESS_THAN,
} s_op_t;

typedef struct {
    char *key;
    s_op_t op;
    char **values;
    size_t n_values;
} s_requirement_t;

struct _zube_selector_t {
    s_requirement_t *requirements;
    size_t count;
};

static void
s_requirement_clear (s_requirement_t *req)
{
    free (req->key);
    for (size_t i = 0; i < req->n_values; i++)
        free (req->values[i]);
    free (req->values);
    memset (req, 0, sizeof *req);
}

void
zube_selector_destroy (zube_selector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_selector_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        s_requirement_clear (&self->requirements[i]);
    free (self->requirements);
    free (self);
    *self_p = NULL;
}

//  A list of string values being collected, kept as Kubernetes'
//  sets.String would (sorted, unique) when sorted is true
typedef struct {
    char **items;
    size_t count;
    size_t cap;
} s_strings_t;

static int
s_strings_add (s_strings_t *list, const char *value, bool as_set)
{
    if (as_set)
        for (size_t i = 0; i < list->count; i++)
            if (strcmp (list->items[i], value) == 0)
                return 0;
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 4;
        char **items = realloc (list->items, cap * sizeof *items);
        if (!items)
            return -1;
        list->items = items;
        list->cap = cap;
    }
    char *copy = strdup (value);
    if (!copy)
        return -1;
    list->items[list->count++] = copy;
    return 0;
}

static void
s_strings_clear (s_strings_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free (list->items[i]);
    free (list->items);
    memset (list, 0, sizeof *list);
}

//  Go's %q for plain strings (what label keys and values can hold)
static void
s_buf_quote (s_buf_t *buf, const char *text)
{
    s_buf_puts (buf, "\"");
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            s_buf_printf (buf, "\\%c", *p);
        else if (*p == '\n')
            s_buf_puts (buf, "\\n");
        else if (*p == '\t')
            s_buf_puts (buf, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            s_buf_printf (buf, "\\x%02x", *p);
        else
            s_buf_add (buf, (const char *)p, 1);
    }
    s_buf_puts (buf, "\"");
}

//  The value list as json.Marshal writes a []string (null when empty)
static void
s_buf_json_list (s_buf_t *buf, char **values, size_t count)
{
    if (count == 0) {
        s_buf_puts (buf, "null");
        return;
    }
    s_buf_puts (buf, "[");
    for (size_t i = 0; i < count; i++) {
        if (i)
            s_buf_puts (buf, ",");
        s_buf_quote (buf, values[i]);
    }
    s_buf_puts (buf, "]");
}

static bool
s_parse_int64 (const char *text, int64_t *value_p)
{
    if (!*text)
        return false;
    const char *digits = text;
    if (*digits == '+' || *digits == '-')
        digits++;
    if (*digits < '0' || *digits > '9')
        return false;
    errno = 0;
    char *end = NULL;
    long long value = strtoll (text, &end, 10);
    if (errno || *end)
        return false;
    *value_p = value;
    return true;
}

//  An aggregate of field errors, as utilerrors.NewAggregate prints them
typedef struct {
    s_buf_t buf;
    int count;
} s_aggregate_t;

static void
s_aggregate_add (s_aggregate_t *agg, const char *message)
{
    //  Kubernetes prints each distinct message once
    if (agg->count && agg->buf.ok && agg->buf.data) {
        const char *at = strstr (agg->buf.data, message);
        size_t len = strlen (message);
        while (at) {
            bool start =
                at == agg->buf.data || (at >= agg->buf.data + 2 && at[-2] == ',');
            bool end = at[len] == 0 || at[len] == ',';
            if (start && end)
                return;
            at = strstr (at + 1, message);
        }
    }
    if (agg->count)
        s_buf_puts (&agg->buf, ", ");
    s_buf_puts (&agg->buf, message);
    agg->count++;
}

//  NewRequirement: validates and builds. values are copied. path is the
//  field path prefix ("" for none, Kubernetes' nil path).
static int
s_requirement_new (s_requirement_t *req, const char *key, s_op_t op, char **values,
                   size_t n_values, char *error, size_t error_size)
{
    s_aggregate_t agg = {.buf = {.ok = true}};
    char detail[1024];
    s_buf_t one = {.ok = true};

    if (zube_label_key_validate (key, detail, sizeof detail)) {
        s_buf_puts (&one, "key: Invalid value: ");
        s_buf_quote (&one, key);
        s_buf_printf (&one, ": %s", detail);
        if (one.ok)
            s_aggregate_add (&agg, one.data);
        one.len = 0;
    }
    const char *problem = NULL;
    switch (op) {
    case S_OP_IN:
    case S_OP_NOT_IN:
        if (n_values == 0)
            problem = "for 'in', 'notin' operators, values set can't be empty";
        break;
    case S_OP_EQUALS:
    case S_OP_DOUBLE_EQUALS:
    case S_OP_NOT_EQUALS:
        if (n_values != 1)
            problem = "exact-match compatibility requires one single value";
        break;
    case S_OP_EXISTS:
    case S_OP_DOES_NOT_EXIST:
        if (n_values != 0)
            problem = "values set must be empty for exists and does not exist";
        break;
    case S_OP_GREATER_THAN:
    case S_OP_LESS_THAN:
        if (n_values != 1)
            problem = "for 'Gt', 'Lt' operators, exactly one value is required";
        break;
    }
    if (problem) {
        s_buf_puts (&one, "values: Invalid value: ");
        s_buf_json_list (&one, values, n_values);
        s_buf_printf (&one, ": %s", problem);
        if (one.ok)
            s_aggregate_add (&agg, one.data);
        one.len = 0;
    }
    if (op == S_OP_GREATER_THAN || op == S_OP_LESS_THAN) {
        for (size_t i = 0; i < n_values; i++) {
            int64_t ignored;
            if (!s_parse_int64 (values[i], &ignored)) {
                s_buf_printf (&one, "values[%zu]: Invalid value: ", i);
                s_buf_quote (&one, values[i]);
                s_buf_puts (&one,
                            ": for 'Gt', 'Lt' operators, the value must be an integer");
                if (one.ok)
                    s_aggregate_add (&agg, one.data);
                one.len = 0;
            }
        }
    }
    for (size_t i = 0; i < n_values; i++) {
        if (zube_label_value_validate (values[i], detail, sizeof detail)) {
            s_buf_printf (&one, "values[%zu][%s]: Invalid value: ", i, key);
            s_buf_quote (&one, values[i]);
            s_buf_printf (&one, ": %s", detail);
            if (one.ok)
                s_aggregate_add (&agg, one.data);
            one.len = 0;
        }
    }
    free (one.data);
    if (agg.count) {
        if (!agg.buf.ok)
            s_error (error, error_size, "out of memory");
        else if (agg.count == 1)
            s_error (error, error_size, "%s", agg.buf.data);
        else
            s_error (error, error_size, "[%s]", agg.buf.data);
        free (agg.buf.data);
        return -1;
    }
    free (agg.buf.data);

    memset (req, 0, sizeof *req);
    req->op = op;
    req->key = strdup (key);
    if (n_values) {
        req->values = calloc (n_values, sizeof *req->values);
        if (!req->values) {
            s_requirement_clear (req);
            s_error (error, error_size, "out of memory");
            return -1;
        }
    }
    req->n_values = n_values;
    bool ok = req->key != NULL;
    for (size_t i = 0; i < n_values; i++)
        ok = ok && (req->values[i] = strdup (values[i])) != NULL;
    if (!ok) {
        s_requirement_clear (req);
        s_error (error, error_size, "out of memory");
        return -1;
    }
    return 0;
}

static const char *
s_label_get (const zube_label_t *labels, size_t count, const char *key)
{
    for (size_t i = 0; i < count; i++)
        if (labels[i].key && strcmp (labels[i].key, key) == 0)
            return labels[i].value ? labels[i].value : "";
    return NULL;
}

static bool
s_requirement_has_value (const s_requirement_t *req, const char *value)
{
    for (size_t i = 0; i < req->n_values; i++)
        if (strcmp (req->values[i], value) == 0)
            return true;
    return false;
}

static bool
s_requirement_matches (const s_requirement_t *req, const zube_label_t *labels,
                       size_t count)
{
    const char *value = s_label_get (labels, count, req->key);
    switch (req->op) {
    case S_OP_IN:
    case S_OP_EQUALS:
    case S_OP_DOUBLE_EQUALS:
        return value && s_requirement_has_value (req, value);
    case S_OP_NOT_IN:
    case S_OP_NOT_EQUALS:
        return !value || !s_requirement_has_value (req, value);
    case S_OP_EXISTS:
        return value != NULL;
    case S_OP_DOES_NOT_EXIST:
        return value == NULL;
    case S_OP_GREATER_THAN:
    case S_OP_LESS_THAN: {
        int64_t have, want;
        if (!value || req->n_values != 1 || !s_parse_int64 (value, &have) ||
            !s_parse_int64 (req->values[0], &want))
            return false;
        return req->op == S_OP_GREATER_THAN ? have > want : have < want;
    }
    }
    return false;
}

//  Sorts by key, keeping the order of equal keys (insertion sort: few
//  requirements)
static void
s_sort_requirements (s_requirement_t *reqs, size_t count)
{
    for (size_t i = 1; i < count; i++) {
        s_requirement_t item = reqs[i];
        size_t j = i;
        while (j > 0 && strcmp (reqs[j - 1].key, item.key) > 0) {
            reqs[j] = reqs[j - 1];
            j--;
        }
        reqs[j] = item;
    }
}

//  ---------------------------------------------------------------------
//  Label selectors: the lexer

typedef enum {
    S_TOK_ERROR,
    S_TOK_END,
    S_TOK_CLOSED_PAR,
    S_TOK_COMMA,
    S_TOK_DOES_NOT_EXIST,
    S_TOK_DOUBLE_EQUALS,
    S_TOK_EQUALS,
    S_TOK_GREATER_THAN,
    S_TOK_IDENTIFIER,
    S_TOK_IN,
    S_TOK_LESS_THAN,
    S_TOK_NOT_EQUALS,
    S_TOK_NOT_IN,
    S_TOK_OPEN_PAR,
} s_token_t;

typedef struct {
    s_token_t token;
    char *literal;
} s_item_t;

static const struct {
    const char *literal;
    s_token_t token;
} s_literal_tokens[] = {
    {.literal = ")", .token = S_TOK_CLOSED_PAR},
    {.literal = ",", .token = S_TOK_COMMA},
    {.literal = "!", .token = S_TOK_DOES_NOT_EXIST},
    {.literal = "==", .token = S_TOK_DOUBLE_EQUALS},
    {.literal = "=", .token = S_TOK_EQUALS},
    {.literal = ">", .token = S_TOK_GREATER_THAN},
    {.literal = "in", .token = S_TOK_IN},
    {.literal = "<", .token = S_TOK_LESS_THAN},
    {.literal = "!=", .token = S_TOK_NOT_EQUALS},
    {.literal = "notin", .token = S_TOK_NOT_IN},
    {.literal = "(", .token = S_TOK_OPEN_PAR},
};

static s_token_t
s_literal_token (const char *text, size_t len)
{
    for (size_t i = 0; i < sizeof s_literal_tokens / sizeof s_literal_tokens[0]; i++)
        if (strlen (s_literal_tokens[i].literal) == len &&
            memcmp (s_literal_tokens[i].literal, text, len) == 0)
            return s_literal_tokens[i].token;
    return S_TOK_ERROR;
}

static bool
s_is_whitespace (char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
s_is_special (char c)
{
    return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' ||
           c == '<';
}

//  One token from *pos on; the literal is malloc'd (NULL: out of memory)
static s_item_t
s_lex (const char *text, size_t *pos)
{
    s_item_t item = {.token = S_TOK_END};
    while (text[*pos] && s_is_whitespace (text[*pos]))
        (*pos)++;
    size_t start = *pos;
    if (!text[start]) {
        item.literal = strdup ("");
        return item;
    }
    if (s_is_special (text[start])) {
        //  The longest run of special characters that is still a token
        s_token_t last = S_TOK_ERROR;
        size_t last_len = 0;
        size_t len = 0;
        while (text[start + len] && s_is_special (text[start + len])) {
            len++;
            s_token_t token = s_literal_token (text + start, len);
            if (token != S_TOK_ERROR) {
                last = token;
                last_len = len;
            } else if (last != S_TOK_ERROR)
                break;
        }
        if (last == S_TOK_ERROR) {
            *pos = start + len;
            item.token = S_TOK_ERROR;
            char message[128];
            snprintf (message, sizeof message, "error expected: keyword found '%.*s'",
                      (int)len, text + start);
            item.literal = strdup (message);
            return item;
        }
        *pos = start + last_len;
        item.token = last;
        item.literal = strndup (text + start, last_len);
        return item;
    }
    size_t len = 0;
    while (text[start + len] && !s_is_special (text[start + len]) &&
           !s_is_whitespace (text[start + len]))
        len++;
    *pos = start + len;
    s_token_t token = s_literal_token (text + start, len);
    item.token = token != S_TOK_ERROR ? token : S_TOK_IDENTIFIER;
    item.literal = strndup (text + start, len);
    return item;
}

//  ---------------------------------------------------------------------
//  Label selectors: the parser

typedef struct {
    s_item_t *items;
    size_t count;
    size_t position;
    s_requirement_t *reqs;
    size_t n_reqs;
    size_t cap_reqs;
    char *error;
    size_t error_size;
} s_parser_t;

//  In the values context, "in" and "notin" are identifiers
static s_token_t
s_lookahead (s_parser_t *p, bool values, const char **literal)
{
    s_item_t *item = &p->items[p->position];
    if (literal)
        *literal = item->literal;
    if (values && (item->token == S_TOK_IN || item->token == S_TOK_NOT_IN))
        return S_TOK_IDENTIFIER;
    return item->token;
}

static s_token_t
s_consume (s_parser_t *p, bool values, const char **literal)
{
    s_token_t token = s_lookahead (p, values, literal);
    if (p->position + 1 < p->count)
        p->position++;
    return token;
}

static int
s_parse_exact_value (s_parser_t *p, s_strings_t *values)
{
    const char *literal;
    s_token_t token = s_lookahead (p, true, NULL);
    if (token == S_TOK_END || token == S_TOK_COMMA)
        return s_strings_add (values, "", true);
    token = s_consume (p, true, &literal);
    if (token == S_TOK_IDENTIFIER)
        return s_strings_add (values, literal, true);
    s_error (p->error, p->error_size, "found '%s', expected: identifier", literal);
    return -1;
}

static int
s_parse_identifiers_list (s_parser_t *p, s_strings_t *values)
{
    for (;;) {
        const char *literal, *literal2;
        s_token_t token = s_consume (p, true, &literal);
        switch (token) {
        case S_TOK_IDENTIFIER: {
            if (s_strings_add (values, literal, true))
                return -1;
            s_token_t token2 = s_lookahead (p, true, &literal2);
            if (token2 == S_TOK_COMMA)
                continue;
            if (token2 == S_TOK_CLOSED_PAR)
                return 0;
            s_error (p->error, p->error_size, "found '%s', expected: ',' or ')'",
                     literal2);
            return -1;
        }
        case S_TOK_COMMA: {
            if (values->count == 0 && s_strings_add (values, "", true))
                return -1;
            s_token_t token2 = s_lookahead (p, true, NULL);
            if (token2 == S_TOK_CLOSED_PAR)
                return s_strings_add (values, "", true);
            if (token2 == S_TOK_COMMA) {
                s_consume (p, true, NULL);
                if (s_strings_add (values, "", true))
                    return -1;
            }
            break;
        }
        default:
            s_error (p->error, p->error_size, "found '%s', expected: ',', or identifier",
                     literal);
            return -1;
        }
    }
}

static int
s_parse_values (s_parser_t *p, s_strings_t *values)
{
    const char *literal;
    s_token_t token = s_consume (p, true, &literal);
    if (token != S_TOK_OPEN_PAR) {
        s_error (p->error, p->error_size, "found '%s' expected: '('", literal);
        return -1;
    }
    token = s_lookahead (p, true, &literal);
    switch (token) {
    case S_TOK_IDENTIFIER:
    case S_TOK_COMMA: {
        if (s_parse_identifiers_list (p, values))
            return -1;
        if (s_consume (p, true, NULL) != S_TOK_CLOSED_PAR) {
            s_error (p->error, p->error_size, "found '%s', expected: ')'", literal);
            return -1;
        }
        return 0;
    }
    case S_TOK_CLOSED_PAR:
        s_consume (p, true, NULL);
        return s_strings_add (values, "", true);
    default:
        s_error (p->error, p->error_size, "found '%s', expected: ',', ')' or identifier",
                 literal);
        return -1;
    }
}

static int
s_parse_requirement (s_parser_t *p, s_requirement_t *req)
{
    const char *literal, *key;
    bool does_not_exist = false, exists = false;
    s_token_t token = s_consume (p, true, &literal);
    if (token == S_TOK_DOES_NOT_EXIST) {
        does_not_exist = true;
        token = s_consume (p, true, &literal);
    }
    if (token != S_TOK_IDENTIFIER) {
        s_error (p->error, p->error_size, "found '%s', expected: identifier", literal);
        return -1;
    }
    key = literal;
    char detail[1024];
    if (zube_label_key_validate (key, detail, sizeof detail)) {
        s_buf_t buf = {.ok = true};
        s_buf_puts (&buf, "<nil>: Invalid value: ");
        s_buf_quote (&buf, key);
        s_buf_printf (&buf, ": %s", detail);
        s_error (p->error, p->error_size, "%s", buf.ok ? buf.data : "out of memory");
        free (buf.data);
        return -1;
    }
    token = s_lookahead (p, true, NULL);
    if ((token == S_TOK_END || token == S_TOK_COMMA) && !does_not_exist)
        exists = true;
    if (exists || does_not_exist)
        return s_requirement_new (req, key, exists ? S_OP_EXISTS : S_OP_DOES_NOT_EXIST,
                                  NULL, 0, p->error, p->error_size);

    s_op_t op;
    token = s_consume (p, false, &literal);
    switch (token) {
    case S_TOK_IN:
        op = S_OP_IN;
        break;
    case S_TOK_EQUALS:
        op = S_OP_EQUALS;
        break;
    case S_TOK_DOUBLE_EQUALS:
        op = S_OP_DOUBLE_EQUALS;
        break;
    case S_TOK_GREATER_THAN:
        op = S_OP_GREATER_THAN;
        break;
    case S_TOK_LESS_THAN:
        op = S_OP_LESS_THAN;
        break;
    case S_TOK_NOT_IN:
        op = S_OP_NOT_IN;
        break;
    case S_TOK_NOT_EQUALS:
        op = S_OP_NOT_EQUALS;
        break;
    default:
        s_error (p->error, p->error_size,
                 "found '%s', expected: in, notin, =, ==, !=, gt, lt", literal);
        return -1;
    }
    s_strings_t values = {0};
    int rc = op == S_OP_IN || op == S_OP_NOT_IN ? s_parse_values (p, &values)
                                                : s_parse_exact_value (p, &values);
    if (rc == 0) {
        //  sets.String.List () is sorted
        if (values.count > 1)
            qsort (values.items, values.count, sizeof values.items[0], s_strcmp_p);
        rc = s_requirement_new (req, key, op, values.items, values.count, p->error,
                                p->error_size);
    }
    s_strings_clear (&values);
    return rc;
}

static int
s_parser_add (s_parser_t *p, s_requirement_t *req)
{
    if (p->n_reqs == p->cap_reqs) {
        size_t cap = p->cap_reqs ? p->cap_reqs * 2 : 4;
        s_requirement_t *reqs = realloc (p->reqs, cap * sizeof *reqs);
        if (!reqs)
            return -1;
        p->reqs = reqs;
        p->cap_reqs = cap;
    }
    p->reqs[p->n_reqs++] = *req;
    return 0;
}

static int
s_parse (s_parser_t *p)
{
    for (;;) {
        const char *literal;
        s_token_t token = s_lookahead (p, true, &literal);
        switch (token) {
        case S_TOK_IDENTIFIER:
        case S_TOK_DOES_NOT_EXIST: {
            s_requirement_t req;
            char inner[1024];
            char *outer = p->error;
            size_t outer_size = p->error_size;
            p->error = inner;
            p->error_size = sizeof inner;
            inner[0] = 0;
            int rc = s_parse_requirement (p, &req);
            p->error = outer;
            p->error_size = outer_size;
            if (rc) {
                s_error (p->error, p->error_size, "unable to parse requirement: %s",
                         inner);
                return -1;
            }
            if (s_parser_add (p, &req)) {
                s_requirement_clear (&req);
                s_error (p->error, p->error_size, "out of memory");
                return -1;
            }
            token = s_consume (p, true, &literal);
            if (token == S_TOK_END)
                return 0;
            if (token == S_TOK_COMMA) {
                const char *literal2;
                s_token_t token2 = s_lookahead (p, true, &literal2);
                if (token2 != S_TOK_IDENTIFIER && token2 != S_TOK_DOES_NOT_EXIST) {
                    s_error (p->error, p->error_size,
                             "found '%s', expected: identifier after ','", literal2);
                    return -1;
                }
                break;
            }
            s_error (p->error, p->error_size,
                     "found '%s', expected: ',' or 'end of string'", literal);
            return -1;
        }
        case S_TOK_END:
            return 0;
        default:
            s_error (p->error, p->error_size,
                     "found '%s', expected: !, identifier, or 'end of string'", literal);
            return -1;
        }
    }
}

int
zube_selector_parse (const char *text, zube_selector_t **self_p, char *error,
                     size_t error_size)
{
    if (!self_p)
        return -1;
    if (!text)
        text = "";
    s_parser_t p = {.error = error, .error_size = error_size};
    size_t cap = 0;
    size_t pos = 0;
    int rc = 0;
    for (;;) {
        if (p.count == cap) {
            cap = cap ? cap * 2 : 16;
            s_item_t *items = realloc (p.items, cap * sizeof *items);
            if (!items) {
                rc = -1;
                break;
            }
            p.items = items;
        }
        s_item_t item = s_lex (text, &pos);
        if (!item.literal) {
            rc = -1;
            break;
        }
        p.items[p.count++] = item;
        if (item.token == S_TOK_END)
            break;
    }
    if (rc)
        s_error (error, error_size, "out of memory");
    else
        rc = s_parse (&p);

    for (size_t i = 0; i < p.count; i++)
        free (p.items[i].literal);
    free (p.items);

    zube_selector_t *self = rc ? NULL : calloc (1, sizeof *self);
    if (!self) {
        if (!rc)
            s_error (error, error_size, "out of memory");
        for (size_t i = 0; i < p.n_reqs; i++)
            s_requirement_clear (&p.reqs[i]);
        free (p.reqs);
        return -1;
    }
    s_sort_requirements (p.reqs, p.n_reqs);
    self->requirements = p.reqs;
    self->count = p.n_reqs;
    *self_p = self;
    return 0;
}

int
zube_selector_from_message (const Zube__LabelSelector *message, zube_selector_t **self_p,
                            char *error, size_t error_size)
{
    if (!self_p)
        return -1;
    zube_selector_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_error (error, error_size, "out of memory");
        return -1;
    }
    size_t total = message ? message->n_match_labels + message->n_match_expressions : 0;
    if (total) {
        self->requirements = calloc (total, sizeof *self->requirements);
        if (!self->requirements) {
            free (self);
            s_error (error, error_size, "out of memory");
            return -1;
        }
    }
    for (size_t i = 0; message && i < message->n_match_labels; i++) {
        const Zube__LabelSelector__MatchLabelsEntry *entry = message->match_labels[i];
        char *value = entry->value ? entry->value : "";
        if (s_requirement_new (&self->requirements[self->count],
                               entry->key ? entry->key : "", S_OP_EQUALS, &value, 1,
                               error, error_size))
            goto fail;
        self->count++;
    }
    for (size_t i = 0; message && i < message->n_match_expressions; i++) {
        const Zube__LabelSelectorRequirement *expr = message->match_expressions[i];
        const char *op_name = expr->operator_ ? expr->operator_ : "";
        s_op_t op;
        if (strcmp (op_name, "In") == 0)
            op = S_OP_IN;
        else if (strcmp (op_name, "NotIn") == 0)
            op = S_OP_NOT_IN;
        else if (strcmp (op_name, "Exists") == 0)
            op = S_OP_EXISTS;
        else if (strcmp (op_name, "DoesNotExist") == 0)
            op = S_OP_DOES_NOT_EXIST;
        else {
            s_buf_t buf = {.ok = true};
            s_buf_quote (&buf, op_name);
            s_buf_puts (&buf, " is not a valid label selector operator");
            s_error (error, error_size, "%s", buf.ok ? buf.data : "out of memory");
            free (buf.data);
            goto fail;
        }
        if (s_requirement_new (&self->requirements[self->count],
                               expr->key ? expr->key : "", op, expr->values,
                               expr->n_values, error, error_size))
            goto fail;
        self->count++;
    }
    s_sort_requirements (self->requirements, self->count);
    *self_p = self;
    return 0;
fail:
    zube_selector_destroy (&self);
    return -1;
}

bool
zube_selector_empty (const zube_selector_t *self)
{
    return !self || self->count == 0;
}

bool
zube_selector_matches (const zube_selector_t *self, const zube_label_t *labels,
                       size_t count)
{
    if (!self)
        return true;
    for (size_t i = 0; i < self->count; i++)
        if (!s_requirement_matches (&self->requirements[i], labels, count))
            return false;
    return true;
}

bool
zube_selector_matches_meta (const zube_selector_t *self, const Zube__ObjectMeta *metadata)
{
    if (zube_selector_empty (self))
        return true;
    size_t count = metadata ? metadata->n_labels : 0;
    zube_label_t small[16];
    zube_label_t *labels = small;
    if (count > sizeof small / sizeof small[0]) {
        labels = calloc (count, sizeof *labels);
        if (!labels)
            return false;
    }
    for (size_t i = 0; i < count; i++) {
        labels[i].key = metadata->labels[i]->key ? metadata->labels[i]->key : "";
        labels[i].value = metadata->labels[i]->value ? metadata->labels[i]->value : "";
    }
    bool yes = zube_selector_matches (self, labels, count);
    if (labels != small)
        free (labels);
    return yes;
}

//  The object's metadata, found through its descriptor (NULL if none)
static const Zube__ObjectMeta *
s_object_meta (const ProtobufCMessage *object)
{
    if (!object)
        return NULL;
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (object->descriptor, "metadata");
    if (!field || field->type != PROTOBUF_C_TYPE_MESSAGE ||
        field->descriptor != &zube__object_meta__descriptor ||
        field->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return *(const Zube__ObjectMeta *const *)((const char *)object + field->offset);
}

bool
zube_selector_matches_object (const zube_selector_t *self, const ProtobufCMessage *object)
{
    return zube_selector_matches_meta (self, s_object_meta (object));
}

char *
zube_selector_string (const zube_selector_t *self)
{
    s_buf_t buf = {.ok = true};
    for (size_t i = 0; self && i < self->count; i++) {
        const s_requirement_t *req = &self->requirements[i];
        if (i)
            s_buf_puts (&buf, ",");
        if (req->op == S_OP_DOES_NOT_EXIST)
            s_buf_puts (&buf, "!");
        s_buf_puts (&buf, req->key);
        switch (req->op) {
        case S_OP_EQUALS:
            s_buf_puts (&buf, "=");
            break;
        case S_OP_DOUBLE_EQUALS:
            s_buf_puts (&buf, "==");
            break;
        case S_OP_NOT_EQUALS:
            s_buf_puts (&buf, "!=");
            break;
        case S_OP_IN:
            s_buf_puts (&buf, " in (");
            break;
        case S_OP_NOT_IN:
            s_buf_puts (&buf, " notin (");
            break;
        case S_OP_GREATER_THAN:
            s_buf_puts (&buf, ">");
            break;
        case S_OP_LESS_THAN:
            s_buf_puts (&buf, "<");
            break;
        case S_OP_EXISTS:
        case S_OP_DOES_NOT_EXIST:
            continue;
        }
        //  Values print sorted, without touching the selector
        char **sorted = NULL;
        if (req->n_values > 1) {
            sorted = malloc (req->n_values * sizeof *sorted);
            if (!sorted) {
                buf.ok = false;
                break;
            }
            memcpy (sorted, req->values, req->n_values * sizeof *sorted);
            qsort (sorted, req->n_values, sizeof *sorted, s_strcmp_p);
        }
        for (size_t v = 0; v < req->n_values; v++) {
            if (v)
                s_buf_puts (&buf, ",");
            s_buf_puts (&buf, sorted ? sorted[v] : req->values[v]);
        }
        free (sorted);
        if (req->op == S_OP_IN || req->op == S_OP_NOT_IN)
            s_buf_puts (&buf, ")");
    }
    return s_buf_take (&buf);
}

//  ---------------------------------------------------------------------
//  Field selectors

//  A selectable field: its name in selectors and the JSON path it reads
//  (the same but for the few Kubernetes renames)
typedef struct {
    const char *resource; //  NULL: every kind
    const char *field;
    const char *path;
} s_field_def_t;

static const s_field_def_t s_field_defs[] = {
    {.resource = NULL, .field = "metadata.name", .path = "metadata.name"},
    {.resource = "pods", .field = "spec.nodeName", .path = "spec.nodeName"},
    {.resource = "pods", .field = "spec.restartPolicy", .path = "spec.restartPolicy"},
    {.resource = "pods", .field = "spec.schedulerName", .path = "spec.schedulerName"},
    {.resource = "pods",
     .field = "spec.serviceAccountName",
     .path = "spec.serviceAccountName"},
    {.resource = "pods", .field = "spec.hostNetwork", .path = "spec.hostNetwork"},
    {.resource = "pods", .field = "status.phase", .path = "status.phase"},
    {.resource = "pods", .field = "status.podIP", .path = "status.podIP"},
    {.resource = "pods",
     .field = "status.nominatedNodeName",
     .path = "status.nominatedNodeName"},
    {.resource = "nodes", .field = "spec.unschedulable", .path = "spec.unschedulable"},
    {.resource = "namespaces", .field = "status.phase", .path = "status.phase"},
    {.resource = "services", .field = "spec.clusterIP", .path = "spec.clusterIP"},
    {.resource = "services", .field = "spec.type", .path = "spec.type"},
    {.resource = "secrets", .field = "type", .path = "type"},
    {.resource = "replicasets", .field = "status.replicas", .path = "status.replicas"},
    {.resource = "jobs", .field = "status.successful", .path = "status.succeeded"},
    {.resource = "events", .field = "involvedObject.kind", .path = "involvedObject.kind"},
    {.resource = "events",
     .field = "involvedObject.namespace",
     .path = "involvedObject.namespace"},
    {.resource = "events", .field = "involvedObject.name", .path = "involvedObject.name"},
    {.resource = "events", .field = "involvedObject.uid", .path = "involvedObject.uid"},
    {.resource = "events",
     .field = "involvedObject.apiVersion",
     .path = "involvedObject.apiVersion"},
    {.resource = "events",
     .field = "involvedObject.resourceVersion",
     .path = "involvedObject.resourceVersion"},
    {.resource = "events",
     .field = "involvedObject.fieldPath",
     .path = "involvedObject.fieldPath"},
    {.resource = "events", .field = "reason", .path = "reason"},
    {.resource = "events", .field = "reportingComponent", .path = "reportingComponent"},
    {.resource = "events", .field = "source", .path = "source.component"},
    {.resource = "events", .field = "type", .path = "type"},
};

typedef struct {
    char *field;
    char *value;
    bool not_equal;
    const char *path;
} s_term_t;

struct _zube_field_selector_t {
    s_term_t *terms;
    size_t count;
};

void
zube_field_selector_destroy (zube_field_selector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_field_selector_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        free (self->terms[i].field);
        free (self->terms[i].value);
    }
    free (self->terms);
    free (self);
    *self_p = NULL;
}

static const s_field_def_t *
s_field_def (const zube_kind_t *kind, const char *field)
{
    if (kind && kind->namespaced && strcmp (field, "metadata.namespace") == 0) {
        static const s_field_def_t namespace_def = {.resource = NULL,
                                                    .field = "metadata.namespace",
                                                    .path = "metadata.namespace"};
        return &namespace_def;
    }
    for (size_t i = 0; i < sizeof s_field_defs / sizeof s_field_defs[0]; i++) {
        const s_field_def_t *def = &s_field_defs[i];
        if (strcmp (def->field, field) != 0)
            continue;
        if (!def->resource || (kind && strcmp (def->resource, kind->resource) == 0))
            return def;
    }
    return NULL;
}

//  UnescapeValue: \\ \, \= only, and no bare , or =
static int
s_unescape (const char *text, size_t len, char **value_p, char *error, size_t error_size)
{
    char *value = malloc (len + 1);
    if (!value) {
        s_error (error, error_size, "out of memory");
        return -1;
    }
    size_t n = 0;
    bool in_slash = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_slash) {
            if (c != '\\' && c != ',' && c != '=') {
                s_error (error, error_size,
                         "invalid field selector: invalid escape sequence: \\%c", c);
                free (value);
                return -1;
            }
            value[n++] = c;
            in_slash = false;
        } else if (c == '\\')
            in_slash = true;
        else if (c == ',' || c == '=') {
            s_error (error, error_size,
                     "invalid field selector: unescaped character in value: %d", c);
            free (value);
            return -1;
        } else
            value[n++] = c;
    }
    if (in_slash) {
        s_error (error, error_size,
                 "invalid field selector: invalid escape sequence: \\");
        free (value);
        return -1;
    }
    value[n] = 0;
    *value_p = value;
    return 0;
}

static int
s_term_parse (const char *whole, const char *part, size_t len, s_term_t *term,
              char *error, size_t error_size)
{
    //  The first operator wins: != before == before =
    size_t at = 0, op_len = 0;
    bool not_equal = false;
    for (at = 0; at < len; at++) {
        if (at + 1 < len && part[at] == '!' && part[at + 1] == '=') {
            op_len = 2;
            not_equal = true;
            break;
        }
        if (at + 1 < len && part[at] == '=' && part[at + 1] == '=') {
            op_len = 2;
            break;
        }
        if (part[at] == '=') {
            op_len = 1;
            break;
        }
    }
    if (!op_len) {
        s_error (error, error_size, "invalid selector: '%s'; can't understand '%.*s'",
                 whole, (int)len, part);
        return -1;
    }
    memset (term, 0, sizeof *term);
    term->not_equal = not_equal;
    term->field = strndup (part, at);
    if (!term->field) {
        s_error (error, error_size, "out of memory");
        return -1;
    }
    if (s_unescape (part + at + op_len, len - at - op_len, &term->value, error,
                    error_size)) {
        free (term->field);
        return -1;
    }
    return 0;
}

int
zube_field_selector_parse (const char *text, const char *resource,
                           zube_field_selector_t **self_p, char *error, size_t error_size)
{
    if (!self_p)
        return -1;
    if (!text)
        text = "";
    const zube_kind_t *kind = NULL;
    if (resource && *resource) {
        kind = zube_kind_by_resource (resource);
        if (!kind) {
            s_error (error, error_size, "the server doesn't have a resource type \"%s\"",
                     resource);
            return -1;
        }
    }
    zube_field_selector_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_error (error, error_size, "out of memory");
        return -1;
    }
    //  Terms end at commas that no backslash escapes
    size_t len = strlen (text);
    size_t start = 0;
    bool in_slash = false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len) {
            if (in_slash) {
                in_slash = false;
                continue;
            }
            if (text[i] == '\\') {
                in_slash = true;
                continue;
            }
            if (text[i] != ',')
                continue;
        }
        if (i > start) {
            s_term_t *terms = realloc (self->terms, (self->count + 1) * sizeof *terms);
            if (!terms) {
                s_error (error, error_size, "out of memory");
                zube_field_selector_destroy (&self);
                return -1;
            }
            self->terms = terms;
            if (s_term_parse (text, text + start, i - start, &self->terms[self->count],
                              error, error_size)) {
                zube_field_selector_destroy (&self);
                return -1;
            }
            self->count++;
        }
        start = i + 1;
    }
    //  The syntax first, then the fields the kind selects on, as the
    //  apiserver converts field labels after parsing
    for (size_t i = 0; i < self->count; i++) {
        const s_field_def_t *def = s_field_def (kind, self->terms[i].field);
        if (!def) {
            s_error (error, error_size, "field label not supported: %s",
                     self->terms[i].field);
            zube_field_selector_destroy (&self);
            return -1;
        }
        self->terms[i].path = def->path;
    }
    *self_p = self;
    return 0;
}

bool
zube_field_selector_empty (const zube_field_selector_t *self)
{
    return !self || self->count == 0;
}

//  The value of a field (JSON path, "spec.nodeName") as Kubernetes'
//  fields.Set holds it: strings as they are ("" when absent), bools
//  "true"/"false", numbers in decimal.
static void
s_field_value (const ProtobufCMessage *object, const char *path, char *buf, size_t size)
{
    buf[0] = 0;
    //  msg may turn NULL on the way (an absent spec): the leaf is then
    //  its type's zero value, as in Kubernetes' Go structs
    const ProtobufCMessage *msg = object;
    const ProtobufCMessageDescriptor *descriptor = object->descriptor;
    char part[128];
    for (;;) {
        const char *dot = strchr (path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen (path);
        if (len >= sizeof part)
            return;
        memcpy (part, path, len);
        part[len] = 0;
        const ProtobufCFieldDescriptor *field =
            zube_codec_field_by_json_name (descriptor, part);
        if (!field || field->label == PROTOBUF_C_LABEL_REPEATED)
            return;
        const char *member = msg ? (const char *)msg + field->offset : NULL;
        if (dot) {
            if (field->type != PROTOBUF_C_TYPE_MESSAGE)
                return;
            msg = member ? *(const ProtobufCMessage *const *)member : NULL;
            descriptor = field->descriptor;
            path = dot + 1;
            continue;
        }
        bool present = member != NULL;
        if (present && field->quantifier_offset &&
            field->type != PROTOBUF_C_TYPE_MESSAGE &&
            field->type != PROTOBUF_C_TYPE_STRING)
            present = *(const protobuf_c_boolean *)((const char *)msg +
                                                    field->quantifier_offset);
        switch (field->type) {
        case PROTOBUF_C_TYPE_STRING: {
            const char *text = member ? *(const char *const *)member : NULL;
            snprintf (buf, size, "%s", text ? text : "");
            break;
        }
        case PROTOBUF_C_TYPE_BOOL:
            snprintf (buf, size, "%s",
                      present && *(const protobuf_c_boolean *)member ? "true" : "false");
            break;
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
            snprintf (buf, size, "%" PRId32, present ? *(const int32_t *)member : 0);
            break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
            snprintf (buf, size, "%" PRId64, present ? *(const int64_t *)member : 0);
            break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            snprintf (buf, size, "%" PRIu32, present ? *(const uint32_t *)member : 0);
            break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            snprintf (buf, size, "%" PRIu64, present ? *(const uint64_t *)member : 0);
            break;
        default:
            break;
        }
        return;
    }
}

bool
zube_field_selector_matches (const zube_field_selector_t *self,
                             const ProtobufCMessage *object)
{
    if (zube_field_selector_empty (self))
        return true;
    if (!object)
        return false;
    for (size_t i = 0; i < self->count; i++) {
        const s_term_t *term = &self->terms[i];
        char value[1024];
        s_field_value (object, term->path, value, sizeof value);
        bool equal = strcmp (value, term->value) == 0;
        if (equal == term->not_equal)
            return false;
    }
    return true;
}

const char *
zube_field_selector_required (const zube_field_selector_t *self, const char *field)
{
    for (size_t i = 0; self && field && i < self->count; i++)
        if (!self->terms[i].not_equal && strcmp (self->terms[i].field, field) == 0)
            return self->terms[i].value;
    return NULL;
}
