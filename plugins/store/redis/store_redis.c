/*  redis - the store plugin on a Redis server, which any number of
    apiservers may share.

    URL `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (port 6379, DB 0 by
    default; `redis` alone is 127.0.0.1:6379). Everything of one store
    lives under one namespace (option `prefix`, default "zube"), in five
    keys whose braces are a Redis Cluster hash tag, so they share a slot
    as the scripts need:

        {zube}:meta     hash: format, revision (the counter), compacted
        {zube}:revs     hash: key -> mod revision (decimal)
        {zube}:values   hash: key -> value
        {zube}:index    sorted set of every key, all scores 0: range by
                        prefix in byte order is ZRANGEBYLEX
        {zube}:events   stream: one entry per write, id "<revision>-0",
                        fields t (ADDED, MODIFIED, DELETED), k (key),
                        p (previous mod revision), v (value; for DELETED
                        the last one)

    A batch of writes is ONE Lua script (EVALSHA of the script loaded with
    SCRIPT LOAD at connect, EVAL when the server answers NOSCRIPT). Redis
    runs a script atomically, so writers on other connections see each
    batch whole, and revisions come from the counter inside the script.
    The script first decides every op (each compare sees the ops before it
    in the batch; a group is all or nothing) and only then writes events,
    objects and the counter: a script that fails (out of memory, a key of
    the wrong type) fails before its first write, so nothing of the batch
    is written. Reads that need more than one command are scripts too, so
    each is one consistent read.

    Durability is the server's: Redis answers a script after appending it
    to its AOF, and with `appendfsync always` after the fsync. Opening a
    store logs a warning when the server is not configured so.

    A broken connection answers UNAVAILABLE and is made again on the next
    call; a connection the server already closed is noticed before a
    command is sent on it. A write whose connection broke while waiting
    for the answer may or may not have been applied; the error says so. */
#define _GNU_SOURCE
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "zube/store.h"

#define S_FORMAT "1"
#define S_DEFAULT_PORT 6379
#define S_DEFAULT_PREFIX "zube"
#define S_DEFAULT_TIMEOUT_MS 5000
#define S_MAX_KEY 1024
//  XTRIM MINID and exclusive XRANGE ids need Redis 6.2.
#define S_MIN_VERSION 602

//  The store's keys, in the order every script takes them.
enum { S_META, S_REVS, S_VALUES, S_INDEX, S_EVENTS, S_KEY_COUNT };
static const char *const s_key_names[S_KEY_COUNT] = {"meta", "revs", "values", "index",
                                                     "events"};

//  ---------------------------------------------------------------------
//  The scripts. Each checks everything before its first write.

// clang-format off
//  txn_commit. KEYS: meta revs values index events. ARGV: format, count,
//  then five per op: type (P put, D delete, X invalid), group, expected
//  revision (-1: any), key, value. Answers two integers per op: status
//  (0 OK, 1 CONFLICT, 2 NOT_FOUND, 3 BAD_REQUEST) and revision.
static const char s_write_script[] =
    "local meta, revs, values, index, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]\n"
    "local kinds = {'hash', 'hash', 'hash', 'zset', 'stream'}\n"
    "for i = 1, 5 do\n"
    "  local t = redis.call('TYPE', KEYS[i])['ok']\n"
    "  if t ~= 'none' and t ~= kinds[i] then\n"
    "    return redis.error_reply('ZUBE_CORRUPT ' .. KEYS[i] .. ' is a ' .. t)\n"
    "  end\n"
    "end\n"
    "local format = redis.call('HGET', meta, 'format')\n"
    "if format and format ~= ARGV[1] then\n"
    "  return redis.error_reply('ZUBE_FORMAT ' .. format)\n"
    "end\n"
    "local revision = tonumber(redis.call('HGET', meta, 'revision') or '0')\n"
    "local count = tonumber(ARGV[2])\n"
    "local known = {}\n"
    "local function state (key)\n"
    "  local s = known[key]\n"
    "  if not s then\n"
    "    local r = redis.call('HGET', revs, key)\n"
    "    s = {rev = r and tonumber(r) or 0}\n"
    "    known[key] = s\n"
    "  end\n"
    "  return s\n"
    "end\n"
    "local out, writes = {}, {}\n"
    "local i = 1\n"
    "while i <= count do\n"
    "  local last, group = i, ARGV[i * 5 - 1]\n"
    "  if group ~= '0' then\n"
    "    while last < count and ARGV[(last + 1) * 5 - 1] == group do last = last + 1 end\n"
    "  end\n"
    "  local status, rev, pending, done = 0, revision, {}, {}\n"
    "  for j = i, last do\n"
    "    local op, expect, key = ARGV[j * 5 - 2], tonumber(ARGV[j * 5]), ARGV[j * 5 + 1]\n"
    "    if op ~= 'P' and op ~= 'D' then status = 3 break end\n"
    "    local s = pending[key] or state(key)\n"
    "    if expect ~= -1 and expect ~= s.rev then status = 1 break end\n"
    "    if op == 'D' and s.rev == 0 then status = 2 break end\n"
    "    rev = rev + 1\n"
    "    if op == 'P' then\n"
    "      done[#done + 1] = {j, key, rev, s.rev, ARGV[j * 5 + 2], false}\n"
    "      pending[key] = {rev = rev, value = ARGV[j * 5 + 2]}\n"
    "    else\n"
    "      local last_value = s.value or redis.call('HGET', values, key) or ''\n"
    "      done[#done + 1] = {j, key, rev, s.rev, last_value, true}\n"
    "      pending[key] = {rev = 0}\n"
    "    end\n"
    "  end\n"
    "  if status == 0 then\n"
    "    for key, s in pairs(pending) do known[key] = s end\n"
    "    for _, w in ipairs(done) do\n"
    "      writes[#writes + 1] = w\n"
    "      out[w[1] * 2 - 1] = 0\n"
    "      out[w[1] * 2] = w[3]\n"
    "    end\n"
    "    revision = rev\n"
    "  else\n"
    "    for j = i, last do\n"
    "      out[j * 2 - 1] = status\n"
    "      out[j * 2] = state(ARGV[j * 5 + 1]).rev\n"
    "    end\n"
    "  end\n"
    "  i = last + 1\n"
    "end\n"
    "if #writes == 0 then return out end\n"
    "for _, w in ipairs(writes) do\n"
    "  local kind = 'MODIFIED'\n"
    "  if w[6] then kind = 'DELETED' elseif w[4] == 0 then kind = 'ADDED' end\n"
    "  redis.call('XADD', events, string.format('%d-0', w[3]), 't', kind, 'k', w[2],\n"
    "             'p', string.format('%d', w[4]), 'v', w[5])\n"
    "end\n"
    "for _, w in ipairs(writes) do\n"
    "  if w[6] then\n"
    "    redis.call('HDEL', values, w[2])\n"
    "    redis.call('HDEL', revs, w[2])\n"
    "    redis.call('ZREM', index, w[2])\n"
    "  else\n"
    "    redis.call('HSET', values, w[2], w[5])\n"
    "    redis.call('HSET', revs, w[2], string.format('%d', w[3]))\n"
    "    if w[4] == 0 then redis.call('ZADD', index, 0, w[2]) end\n"
    "  end\n"
    "end\n"
    "if not format then redis.call('HSET', meta, 'format', ARGV[1]) end\n"
    "redis.call('HINCRBY', meta, 'revision', #writes)\n"
    "return out\n";

//  get. KEYS: revs values. ARGV: key. Answers nil or {revision, value}.
static const char s_get_script[] =
    "local r = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not r then return false end\n"
    "return {r, redis.call('HGET', KEYS[2], ARGV[1]) or ''}\n";

//  range. KEYS: meta revs values index. ARGV: min, max (ZRANGEBYLEX),
//  count (0: all). Answers {revision, key, mod revision, value, ...}.
static const char s_range_script[] =
    "local out = {redis.call('HGET', KEYS[1], 'revision') or '0'}\n"
    "local keys\n"
    "if ARGV[3] == '0' then\n"
    "  keys = redis.call('ZRANGEBYLEX', KEYS[4], ARGV[1], ARGV[2])\n"
    "else\n"
    "  keys = redis.call('ZRANGEBYLEX', KEYS[4], ARGV[1], ARGV[2], 'LIMIT', 0, ARGV[3])\n"
    "end\n"
    "for _, k in ipairs(keys) do\n"
    "  out[#out + 1] = k\n"
    "  out[#out + 1] = redis.call('HGET', KEYS[2], k) or '0'\n"
    "  out[#out + 1] = redis.call('HGET', KEYS[3], k) or ''\n"
    "end\n"
    "return out\n";

//  events. KEYS: meta events. ARGV: since, first id, count (0: all).
//  Answers {revision, compacted[, entries]}: no entries when compacted.
static const char s_events_script[] =
    "local m = redis.call('HMGET', KEYS[1], 'revision', 'compacted')\n"
    "local revision, compacted = m[1] or '0', m[2] or '0'\n"
    "if tonumber(ARGV[1]) < tonumber(compacted) then return {revision, compacted} end\n"
    "local entries\n"
    "if ARGV[3] == '0' then\n"
    "  entries = redis.call('XRANGE', KEYS[2], ARGV[2], '+')\n"
    "else\n"
    "  entries = redis.call('XRANGE', KEYS[2], ARGV[2], '+', 'COUNT', ARGV[3])\n"
    "end\n"
    "return {revision, compacted, entries}\n";

//  compact. KEYS: meta events. ARGV: revision, first id kept. Answers
//  {-1, current} past the end, {0, 0} when already compacted that far,
//  {1, events dropped}.
static const char s_compact_script[] =
    "local m = redis.call('HMGET', KEYS[1], 'revision', 'compacted')\n"
    "local revision, compacted = tonumber(m[1] or '0'), tonumber(m[2] or '0')\n"
    "local target = tonumber(ARGV[1])\n"
    "if target > revision then return {-1, revision} end\n"
    "if target <= compacted then return {0, 0} end\n"
    "local t = redis.call('TYPE', KEYS[2])['ok']\n"
    "if t ~= 'none' and t ~= 'stream' then\n"
    "  return redis.error_reply('ZUBE_CORRUPT ' .. KEYS[2] .. ' is a ' .. t)\n"
    "end\n"
    "local dropped = redis.call('XTRIM', KEYS[2], 'MINID', ARGV[2])\n"
    "redis.call('HSET', KEYS[1], 'compacted', ARGV[1])\n"
    "return {1, dropped}\n";

//  The end of a restore. KEYS: the five keys, then the five staging keys
//  holding the snapshot. None of these commands can fail for memory.
static const char s_swap_script[] =
    "for i = 1, 5 do\n"
    "  if redis.call('EXISTS', KEYS[i + 5]) == 1 then\n"
    "    redis.call('RENAME', KEYS[i + 5], KEYS[i])\n"
    "    redis.call('PERSIST', KEYS[i])\n"
    "  else\n"
    "    redis.call('DEL', KEYS[i])\n"
    "  end\n"
    "end\n"
    "return 1\n";

// clang-format on
enum { S_WRITE, S_GET, S_RANGE, S_EVENTS_READ, S_COMPACT, S_SWAP, S_SCRIPT_COUNT };
static const char *const s_scripts[S_SCRIPT_COUNT] = {s_write_script,   s_get_script,
                                                      s_range_script,   s_events_script,
                                                      s_compact_script, s_swap_script};

//  ---------------------------------------------------------------------

struct zube_store_backend_t {
    const zube_host_t *host;
    char *server;
    int port;
    int db;
    char *user;
    char *password;
    char *prefix;
    //  "{prefix}:meta", ... in S_META order.
    char *keys[S_KEY_COUNT];
    struct timeval timeout;
    //  "host:port/db", for messages.
    char address[320];
    redisContext *redis;
    //  SHA1 of each script, as SCRIPT LOAD answered it.
    char sha[S_SCRIPT_COUNT][48];
    bool ever_connected;
    char error[512];
};

static void
s_free_reply (redisReply *reply)
{
    if (reply)
        freeReplyObject (reply);
}

static zube_status_t s_fail (zube_store_backend_t *self, zube_status_t status,
                             const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static zube_status_t
s_fail (zube_store_backend_t *self, zube_status_t status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof self->error, format, args);
    va_end (args);
    return status;
}

//  Arguments of one command, for redisCommandArgv.
typedef struct {
    const char **argv;
    size_t *lens;
    size_t count;
    size_t cap;
    bool failed;
} s_args_t;

static void
s_args_add (s_args_t *args, const void *text, size_t len)
{
    if (args->count == args->cap) {
        size_t cap = args->cap ? args->cap * 2 : 16;
        const char **argv = realloc (args->argv, cap * sizeof *argv);
        if (argv)
            args->argv = argv;
        size_t *lens = realloc (args->lens, cap * sizeof *lens);
        if (lens)
            args->lens = lens;
        if (!argv || !lens) {
            args->failed = true;
            return;
        }
        args->cap = cap;
    }
    args->argv[args->count] = text ? text : "";
    args->lens[args->count++] = len;
}

static void
s_args_text (s_args_t *args, const char *text)
{
    s_args_add (args, text, strlen (text));
}

static void
s_args_free (s_args_t *args)
{
    free (args->argv);
    free (args->lens);
    *args = (s_args_t){0};
}

//  ---------------------------------------------------------------------
//  SIGPIPE. Writing to a socket the server closed raises SIGPIPE, which
//  kills a process that did not ignore it, and hiredis writes with plain
//  write(2). A plugin installs no signal handler, so each call that may
//  write blocks SIGPIPE in the calling thread and swallows the one the
//  call raised, if any.

typedef struct {
    sigset_t old;
    bool was_pending;
} s_sigpipe_t;

static void
s_sigpipe_block (s_sigpipe_t *guard)
{
    sigset_t pipe_set, pending;
    sigemptyset (&pipe_set);
    sigaddset (&pipe_set, SIGPIPE);
    sigemptyset (&pending);
    sigpending (&pending);
    guard->was_pending = sigismember (&pending, SIGPIPE) == 1;
    pthread_sigmask (SIG_BLOCK, &pipe_set, &guard->old);
}

static void
s_sigpipe_restore (s_sigpipe_t *guard)
{
    sigset_t pipe_set, pending;
    sigemptyset (&pipe_set);
    sigaddset (&pipe_set, SIGPIPE);
    sigemptyset (&pending);
    if (!guard->was_pending && sigpending (&pending) == 0 &&
        sigismember (&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait (&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask (SIG_SETMASK, &guard->old, NULL);
}

//  ---------------------------------------------------------------------
//  The connection

static void
s_disconnect (zube_store_backend_t *self)
{
    if (self->redis) {
        redisFree (self->redis);
        self->redis = NULL;
    }
}

//  The connection broke (or timed out) during a call: UNAVAILABLE, and
//  the next call connects again.
static zube_status_t
s_io_fail (zube_store_backend_t *self, const char *what, bool outcome_unknown)
{
    const char *cause =
        self->redis && self->redis->errstr[0] ? self->redis->errstr : "no answer";
    char timed_out[64];
    if (strstr (cause, "temporarily unavailable")) {
        snprintf (timed_out, sizeof timed_out, "no answer within %ld ms",
                  (long)(self->timeout.tv_sec * 1000 + self->timeout.tv_usec / 1000));
        cause = timed_out;
    }
    s_fail (self, ZUBE_UNAVAILABLE, "redis %s: %s: connection lost: %s%s", self->address,
            what, cause,
            outcome_unknown ? " (the write may or may not have been applied)" : "");
    self->host->log (self->host, ZUBE_LOG_WARN,
                     "msg=\"redis connection lost\" address=%s error=\"%s\"",
                     self->address, cause);
    self->host->counter_add (self->host, "store_connection_lost_total", 1);
    s_disconnect (self);
    return ZUBE_UNAVAILABLE;
}

//  Maps an error reply. Redis' own transient refusals are UNAVAILABLE:
//  retrying later can succeed.
static zube_status_t
s_reply_fail (zube_store_backend_t *self, const redisReply *reply, const char *what)
{
    static const char *const transient[] = {
        "LOADING",    "BUSY",     "MASTERDOWN",  "READONLY", "OOM",       "MISCONF",
        "NOREPLICAS", "TRYAGAIN", "CLUSTERDOWN", "NOAUTH",   "WRONGPASS", NULL};
    const char *text = reply && reply->str ? reply->str : "?";
    zube_status_t status = ZUBE_INTERNAL;
    for (size_t i = 0; transient[i]; i++) {
        size_t len = strlen (transient[i]);
        if (strncmp (text, transient[i], len) == 0 && (text[len] == ' ' || !text[len]))
            status = ZUBE_UNAVAILABLE;
    }
    if (strstr (text, "OOM command not allowed"))
        status = ZUBE_UNAVAILABLE;
    if (strncmp (text, "ZUBE_FORMAT", 11) == 0)
        return s_fail (
            self, ZUBE_INTERNAL,
            "redis %s: %s: store format %s (written by another zube version; this "
            "one writes format " S_FORMAT ")",
            self->address, self->prefix, text + 12);
    s_fail (self, status, "redis %s: %s: %s", self->address, what, text);
    if (status == ZUBE_INTERNAL)
        self->host->log (self->host, ZUBE_LOG_ERROR,
                         "msg=\"redis failure\" address=%s where=%s error=\"%s\"",
                         self->address, what, text);
    return status;
}

//  Sends one command and reads its answer. NULL when the connection
//  broke (the caller calls s_io_fail).
static redisReply *
s_command_argv (zube_store_backend_t *self, const s_args_t *args)
{
    s_sigpipe_t guard;
    s_sigpipe_block (&guard);
    redisReply *reply =
        redisCommandArgv (self->redis, (int)args->count, args->argv, args->lens);
    s_sigpipe_restore (&guard);
    return reply;
}

//  True when the server closed the connection while it was idle: an idle
//  connection has nothing to read, so anything readable is EOF or a reset.
static bool
s_connection_closed (zube_store_backend_t *self)
{
    struct pollfd poll_fd = {.fd = self->redis->fd, .events = POLLIN | POLLRDHUP};
    int rc = poll (&poll_fd, 1, 0);
    return rc != 0;
}

//  "redis_version:7.0.15" in INFO server -> 700.
static int
s_parse_version (const char *info, char *text, size_t text_size)
{
    const char *line = info ? strstr (info, "redis_version:") : NULL;
    if (!line)
        return -1;
    line += strlen ("redis_version:");
    size_t len = strcspn (line, "\r\n");
    snprintf (text, text_size, "%.*s", (int)len, line);
    int major = 0, minor = 0;
    if (sscanf (line, "%d.%d", &major, &minor) != 2)
        return -1;
    return major * 100 + minor;
}

//  Connects: AUTH, SELECT, the version check, and SCRIPT LOAD of every
//  script, pipelined in one round trip.
static zube_status_t
s_connect (zube_store_backend_t *self)
{
    s_disconnect (self);
    self->redis = redisConnectWithTimeout (self->server, self->port, self->timeout);
    if (!self->redis)
        return s_fail (self, ZUBE_UNAVAILABLE, "redis %s: cannot connect: out of memory",
                       self->address);
    if (self->redis->err) {
        s_fail (self, ZUBE_UNAVAILABLE, "redis %s: cannot connect: %s", self->address,
                self->redis->errstr);
        s_disconnect (self);
        return ZUBE_UNAVAILABLE;
    }
    redisSetTimeout (self->redis, self->timeout);
    redisEnableKeepAlive (self->redis);

    char db_text[16];
    snprintf (db_text, sizeof db_text, "%d", self->db);
    size_t sent = 0;
    s_sigpipe_t guard;
    s_sigpipe_block (&guard);
    if (self->password) {
        if (self->user) {
            const char *argv[] = {"AUTH", self->user, self->password};
            redisAppendCommandArgv (self->redis, 3, argv, NULL);
        } else {
            const char *argv[] = {"AUTH", self->password};
            redisAppendCommandArgv (self->redis, 2, argv, NULL);
        }
        sent++;
    }
    const char *select[] = {"SELECT", db_text};
    redisAppendCommandArgv (self->redis, 2, select, NULL);
    const char *info[] = {"INFO", "server"};
    redisAppendCommandArgv (self->redis, 2, info, NULL);
    sent += 2;
    for (int i = 0; i < S_SCRIPT_COUNT; i++) {
        const char *load[] = {"SCRIPT", "LOAD", s_scripts[i]};
        redisAppendCommandArgv (self->redis, 3, load, NULL);
        sent++;
    }
    zube_status_t status = ZUBE_OK;
    size_t script = 0;
    for (size_t i = 0; i < sent; i++) {
        redisReply *reply = NULL;
        if (redisGetReply (self->redis, (void **)&reply) != REDIS_OK || !reply) {
            status =
                s_fail (self, ZUBE_UNAVAILABLE, "redis %s: connect: %s", self->address,
                        self->redis->errstr[0] ? self->redis->errstr : "no answer");
            break;
        }
        if (status == ZUBE_OK && reply->type == REDIS_REPLY_ERROR)
            status =
                s_reply_fail (self, reply, i == 0 && self->password ? "AUTH" : "connect");
        else if (status == ZUBE_OK && reply->type == REDIS_REPLY_STRING &&
                 strstr (reply->str, "redis_version:")) {
            char version[32] = "?";
            if (s_parse_version (reply->str, version, sizeof version) < S_MIN_VERSION)
                status =
                    s_fail (self, ZUBE_UNAVAILABLE,
                            "redis %s: server version %s is too old (need 6.2 or later)",
                            self->address, version);
        } else if (status == ZUBE_OK && reply->type == REDIS_REPLY_STRING &&
                   reply->len == 40 && script < S_SCRIPT_COUNT)
            memcpy (self->sha[script++], reply->str, 41);
        s_free_reply (reply);
    }
    s_sigpipe_restore (&guard);
    if (status == ZUBE_OK && script != S_SCRIPT_COUNT)
        status = s_fail (self, ZUBE_INTERNAL, "redis %s: SCRIPT LOAD answered no SHA1",
                         self->address);
    if (status != ZUBE_OK) {
        s_disconnect (self);
        return status;
    }
    if (self->ever_connected) {
        self->host->log (self->host, ZUBE_LOG_INFO,
                         "msg=\"redis reconnected\" address=%s", self->address);
        self->host->counter_add (self->host, "store_reconnects_total", 1);
    }
    self->ever_connected = true;
    return ZUBE_OK;
}

//  A live connection, made again when it broke or the server closed it.
//  *fresh_p: the connection was made by this call.
static zube_status_t
s_ensure (zube_store_backend_t *self, bool *fresh_p)
{
    *fresh_p = false;
    if (self->redis && !self->redis->err && !s_connection_closed (self))
        return ZUBE_OK;
    *fresh_p = true;
    return s_connect (self);
}

//  One plain command; a read, retried once on a new connection when an
//  old one broke under it.
static zube_status_t
s_command (zube_store_backend_t *self, s_args_t *args, const char *what,
           redisReply **reply_p)
{
    *reply_p = NULL;
    if (args->failed)
        return s_fail (self, ZUBE_INTERNAL, "redis: out of memory");
    for (int attempt = 0;; attempt++) {
        bool fresh;
        zube_status_t status = s_ensure (self, &fresh);
        if (status != ZUBE_OK)
            return status;
        redisReply *reply = s_command_argv (self, args);
        if (!reply) {
            if (!fresh && attempt == 0) {
                s_disconnect (self);
                continue;
            }
            return s_io_fail (self, what, false);
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            status = s_reply_fail (self, reply, what);
            s_free_reply (reply);
            return status;
        }
        *reply_p = reply;
        return ZUBE_OK;
    }
}

//  Runs a script. args must start with two empty slots (the command and
//  the script), then numkeys, the keys and the arguments. A read is
//  retried once on a new connection when an old one broke under it; a
//  write never is (it may have been applied).
static zube_status_t
s_script (zube_store_backend_t *self, int script, s_args_t *args, bool is_write,
          const char *what, redisReply **reply_p)
{
    *reply_p = NULL;
    if (args->failed)
        return s_fail (self, ZUBE_INTERNAL, "redis: out of memory");
    for (int attempt = 0;; attempt++) {
        bool fresh;
        zube_status_t status = s_ensure (self, &fresh);
        if (status != ZUBE_OK)
            return status;
        args->argv[0] = "EVALSHA";
        args->lens[0] = 7;
        args->argv[1] = self->sha[script];
        args->lens[1] = strlen (self->sha[script]);
        redisReply *reply = s_command_argv (self, args);
        if (reply && reply->type == REDIS_REPLY_ERROR &&
            strncmp (reply->str, "NOSCRIPT", 8) == 0) {
            //  The script cache was flushed (SCRIPT FLUSH, a failover to a
            //  replica that never saw SCRIPT LOAD): send the body.
            s_free_reply (reply);
            args->argv[0] = "EVAL";
            args->lens[0] = 4;
            args->argv[1] = s_scripts[script];
            args->lens[1] = strlen (s_scripts[script]);
            reply = s_command_argv (self, args);
        }
        if (!reply) {
            if (!is_write && !fresh && attempt == 0) {
                s_disconnect (self);
                continue;
            }
            return s_io_fail (self, what, is_write);
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            status = s_reply_fail (self, reply, what);
            s_free_reply (reply);
            return status;
        }
        *reply_p = reply;
        return ZUBE_OK;
    }
}

//  The start of a script's arguments: two slots for s_script, numkeys,
//  and the first count keys of the store (in S_META order from first).
static void
s_script_args (zube_store_backend_t *self, s_args_t *args, const int *keys, int count,
               char *numkeys, size_t numkeys_size)
{
    s_args_add (args, "", 0);
    s_args_add (args, "", 0);
    snprintf (numkeys, numkeys_size, "%d", count);
    s_args_text (args, numkeys);
    for (int i = 0; i < count; i++)
        s_args_text (args, self->keys[keys[i]]);
}

//  ---------------------------------------------------------------------
//  Reply helpers

static bool
s_is_text (const redisReply *reply)
{
    return reply &&
           (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS);
}

//  A decimal string or integer reply as int64_t; false if it is neither.
static bool
s_reply_int (const redisReply *reply, int64_t *value_p)
{
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        *value_p = reply->integer;
        return true;
    }
    if (reply && reply->type == REDIS_REPLY_NIL) {
        *value_p = 0;
        return true;
    }
    if (!s_is_text (reply) || reply->len == 0 || reply->len > 20)
        return false;
    char *end = NULL;
    errno = 0;
    long long value = strtoll (reply->str, &end, 10);
    if (errno || end != reply->str + reply->len)
        return false;
    *value_p = value;
    return true;
}

static zube_status_t
s_malformed (zube_store_backend_t *self, const char *what)
{
    s_fail (self, ZUBE_INTERNAL, "redis %s: %s: unexpected answer (a corrupt store?)",
            self->address, what);
    self->host->log (self->host, ZUBE_LOG_ERROR,
                     "msg=\"redis unexpected answer\" address=%s where=%s", self->address,
                     what);
    return ZUBE_INTERNAL;
}

static bool
s_key_valid (const char *key)
{
    if (!key || !*key)
        return false;
    return strnlen (key, S_MAX_KEY + 1) <= S_MAX_KEY;
}

//  ---------------------------------------------------------------------
//  Opening

//  Parses "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" into self.
static bool
s_parse_url (zube_store_backend_t *self, const char *url, char *error, size_t error_size)
{
    const char *rest;
    if (strcmp (url, "redis") == 0 || strcmp (url, "redis:") == 0 ||
        strcmp (url, "redis://") == 0)
        rest = "";
    else if (strncmp (url, "redis://", 8) == 0)
        rest = url + 8;
    else {
        snprintf (error, error_size, "expected redis://HOST:PORT[/DB], found %s", url);
        return false;
    }
    const char *at = strrchr (rest, '@');
    if (at) {
        const char *colon = memchr (rest, ':', (size_t)(at - rest));
        if (!colon) {
            snprintf (error, error_size, "%s: expected [USER]:PASSWORD@ before the host",
                      url);
            return false;
        }
        if (colon > rest)
            self->user = strndup (rest, (size_t)(colon - rest));
        self->password = strndup (colon + 1, (size_t)(at - colon - 1));
        rest = at + 1;
    }
    const char *host_end;
    const char *host_start = rest;
    if (*rest == '[') {
        host_start = rest + 1;
        host_end = strchr (rest, ']');
        if (!host_end) {
            snprintf (error, error_size, "%s: unterminated [IPv6 address]", url);
            return false;
        }
        rest = host_end + 1;
    } else {
        host_end = rest + strcspn (rest, ":/");
        rest = host_end;
    }
    self->server = host_end > host_start
                       ? strndup (host_start, (size_t)(host_end - host_start))
                       : strdup ("127.0.0.1");
    self->port = S_DEFAULT_PORT;
    if (*rest == ':') {
        char *end = NULL;
        long port = strtol (rest + 1, &end, 10);
        if (end == rest + 1 || port < 1 || port > 65535 || (*end && *end != '/')) {
            snprintf (error, error_size, "%s: invalid port", url);
            return false;
        }
        self->port = (int)port;
        rest = end;
    }
    self->db = 0;
    if (*rest == '/' && rest[1]) {
        char *end = NULL;
        long db = strtol (rest + 1, &end, 10);
        if (end == rest + 1 || *end || db < 0 || db > INT_MAX) {
            snprintf (error, error_size, "%s: invalid database number", url);
            return false;
        }
        self->db = (int)db;
    } else if (*rest && strcmp (rest, "/") != 0) {
        snprintf (error, error_size, "%s: unexpected \"%s\" after the host", url, rest);
        return false;
    }
    snprintf (self->address, sizeof self->address, "%s:%d/%d", self->server, self->port,
              self->db);
    return self->server != NULL;
}

static bool
s_prefix_valid (const char *prefix)
{
    if (!prefix || !*prefix || strlen (prefix) > 64)
        return false;
    for (const char *c = prefix; *c; c++)
        if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
            !(*c >= '0' && *c <= '9') && *c != '-' && *c != '_' && *c != '.')
            return false;
    return true;
}

static bool
s_set_timeout (zube_store_backend_t *self, const char *value)
{
    char *end = NULL;
    long ms = value ? strtol (value, &end, 10) : 0;
    if (!value || !*value || *end || ms < 1 || ms > 3600 * 1000)
        return false;
    self->timeout = (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return true;
}

static bool
s_set_prefix (zube_store_backend_t *self, const char *value)
{
    if (!s_prefix_valid (value))
        return false;
    free (self->prefix);
    self->prefix = strdup (value);
    return self->prefix != NULL;
}

//  Applies one "key=value" setting; false (with error) if unknown or bad.
static bool
s_option (zube_store_backend_t *self, const char *option, char *error, size_t error_size)
{
    const char *equals = strchr (option, '=');
    size_t name_len = equals ? (size_t)(equals - option) : strlen (option);
    const char *value = equals ? equals + 1 : "";
    if (name_len == 6 && strncmp (option, "prefix", 6) == 0) {
        if (s_set_prefix (self, value))
            return true;
        snprintf (error, error_size,
                  "option prefix: expected 1 to 64 of [A-Za-z0-9._-], found \"%s\"",
                  value);
        return false;
    }
    if (name_len == 10 && strncmp (option, "timeout_ms", 10) == 0) {
        if (s_set_timeout (self, value))
            return true;
        snprintf (error, error_size,
                  "option timeout_ms: expected 1 to 3600000, found \"%s\"", value);
        return false;
    }
    if (name_len == 8 && strncmp (option, "password", 8) == 0) {
        free (self->password);
        self->password = strdup (value);
        return true;
    }
    snprintf (error, error_size,
              "unknown option \"%.*s\" (redis knows prefix, timeout_ms, password)",
              (int)name_len, option);
    return false;
}

//  Logs a warning when the server would lose acknowledged writes on a
//  crash, or evict keys of the store when full. CONFIG may be renamed
//  away; then nothing is known or said.
static void
s_check_durability (zube_store_backend_t *self)
{
    const char *names[3] = {"appendonly", "appendfsync", "maxmemory-policy"};
    char values[3][32] = {"?", "?", "?"};
    for (int i = 0; i < 3; i++) {
        s_args_t args = {0};
        s_args_text (&args, "CONFIG");
        s_args_text (&args, "GET");
        s_args_text (&args, names[i]);
        redisReply *reply = NULL;
        if (s_command (self, &args, "CONFIG GET", &reply) == ZUBE_OK &&
            reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            s_is_text (reply->element[1]))
            snprintf (values[i], sizeof values[i], "%s", reply->element[1]->str);
        s_free_reply (reply);
        s_args_free (&args);
    }
    self->error[0] = 0;
    if (strcmp (values[0], "?") == 0)
        return;
    if (strcmp (values[0], "yes") != 0 || strcmp (values[1], "always") != 0)
        self->host->log (
            self->host, ZUBE_LOG_WARN,
            "msg=\"redis is not configured for durable writes: acknowledged writes "
            "can be lost in a crash (set appendonly yes, appendfsync always)\" "
            "address=%s appendonly=%s appendfsync=%s",
            self->address, values[0], values[1]);
    //  volatile-* policies evict only keys with a TTL; the store has none.
    if (strncmp (values[2], "allkeys-", 8) == 0)
        self->host->log (self->host, ZUBE_LOG_WARN,
                         "msg=\"redis may evict keys of the store when full (set "
                         "maxmemory-policy noeviction)\" address=%s maxmemory-policy=%s",
                         self->address, values[2]);
}

//  Checks the store's format, marking a new store with ours.
static zube_status_t
s_check_format (zube_store_backend_t *self)
{
    s_args_t args = {0};
    s_args_text (&args, "HSETNX");
    s_args_text (&args, self->keys[S_META]);
    s_args_text (&args, "format");
    s_args_text (&args, S_FORMAT);
    redisReply *reply = NULL;
    zube_status_t status = s_command (self, &args, "format", &reply);
    s_free_reply (reply);
    s_args_free (&args);
    if (status != ZUBE_OK)
        return status;
    args = (s_args_t){0};
    s_args_text (&args, "HGET");
    s_args_text (&args, self->keys[S_META]);
    s_args_text (&args, "format");
    status = s_command (self, &args, "format", &reply);
    s_args_free (&args);
    if (status == ZUBE_OK && (!s_is_text (reply) || strcmp (reply->str, S_FORMAT) != 0))
        status = s_fail (
            self, ZUBE_INTERNAL,
            "redis %s: %s: store format %s (written by another zube version; this "
            "one writes format " S_FORMAT ")",
            self->address, self->keys[S_META], s_is_text (reply) ? reply->str : "?");
    s_free_reply (reply);
    return status;
}

static void
s_close (zube_store_backend_t **backend_p)
{
    if (!backend_p || !*backend_p)
        return;
    zube_store_backend_t *self = *backend_p;
    s_disconnect (self);
    for (int i = 0; i < S_KEY_COUNT; i++)
        free (self->keys[i]);
    free (self->server);
    free (self->user);
    free (self->password);
    free (self->prefix);
    free (self);
    *backend_p = NULL;
}

static zube_status_t
s_open (const zube_host_t *host, const char *url, const char *const *options,
        zube_store_backend_t **backend_p, char *error, size_t error_size)
{
    *backend_p = NULL;
    zube_store_backend_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    self->host = host;
    self->timeout = (struct timeval){.tv_sec = S_DEFAULT_TIMEOUT_MS / 1000,
                                     .tv_usec = (S_DEFAULT_TIMEOUT_MS % 1000) * 1000};
    self->prefix = strdup (S_DEFAULT_PREFIX);
    if (!s_parse_url (self, url ? url : "", error, error_size)) {
        s_close (&self);
        return ZUBE_BAD_REQUEST;
    }
    //  The plugin's configuration first; options override it.
    const char *configured = host->config_get (host, "prefix");
    if (configured && *configured && !s_set_prefix (self, configured))
        host->log (host, ZUBE_LOG_WARN,
                   "msg=\"ignoring invalid prefix configuration\" prefix=\"%s\"",
                   configured);
    configured = host->config_get (host, "timeout_ms");
    if (configured && *configured && !s_set_timeout (self, configured))
        host->log (host, ZUBE_LOG_WARN,
                   "msg=\"ignoring invalid timeout_ms configuration\" value=\"%s\"",
                   configured);
    configured = host->config_get (host, "password");
    if (configured && *configured && !self->password)
        self->password = strdup (configured);
    for (size_t i = 0; options && options[i]; i++)
        if (!s_option (self, options[i], error, error_size)) {
            s_close (&self);
            return ZUBE_BAD_REQUEST;
        }
    for (int i = 0; i < S_KEY_COUNT; i++)
        if (asprintf (&self->keys[i], "{%s}:%s", self->prefix, s_key_names[i]) < 0) {
            self->keys[i] = NULL;
            snprintf (error, error_size, "out of memory");
            s_close (&self);
            return ZUBE_INTERNAL;
        }
    zube_status_t status = s_connect (self);
    if (status == ZUBE_OK)
        status = s_check_format (self);
    if (status != ZUBE_OK) {
        snprintf (error, error_size, "%s", self->error);
        s_close (&self);
        return status;
    }
    s_check_durability (self);
    host->log (host, ZUBE_LOG_INFO, "msg=\"store opened\" address=%s prefix=%s",
               self->address, self->prefix);
    self->error[0] = 0;
    *backend_p = self;
    return ZUBE_OK;
}

static const char *
s_errmsg (zube_store_backend_t *self)
{
    return self->error;
}

//  ---------------------------------------------------------------------
//  Reads

static zube_status_t
s_get (zube_store_backend_t *self, const char *key, zube_store_kv_fn *fn, void *arg)
{
    if (!s_key_valid (key))
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "redis: invalid key (empty or over %d bytes)", S_MAX_KEY);
    static const int keys[] = {S_REVS, S_VALUES};
    s_args_t args = {0};
    char numkeys[8];
    s_script_args (self, &args, keys, 2, numkeys, sizeof numkeys);
    s_args_text (&args, key);
    redisReply *reply = NULL;
    zube_status_t status = s_script (self, S_GET, &args, false, "get", &reply);
    s_args_free (&args);
    if (status != ZUBE_OK)
        return status;
    int64_t mod_revision = 0;
    if (reply->type == REDIS_REPLY_NIL)
        status = s_fail (self, ZUBE_NOT_FOUND, "%s not found", key);
    else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
             !s_reply_int (reply->element[0], &mod_revision) || mod_revision <= 0 ||
             !s_is_text (reply->element[1]))
        status = s_malformed (self, "get");
    else if (fn) {
        zube_store_kv_t kv = {.key = key,
                              .key_size = strlen (key),
                              .value = reply->element[1]->str,
                              .value_size = reply->element[1]->len,
                              .mod_revision = mod_revision};
        fn (arg, &kv);
    }
    s_free_reply (reply);
    return status;
}

//  The smallest string after every string that starts with prefix
//  ("ab" -> "ac", "a\xff" -> "b"); false when there is none (prefix is
//  empty or all 0xff bytes).
static bool
s_prefix_end (const char *prefix, char *end, size_t end_size)
{
    size_t len = strlen (prefix);
    while (len > 0 && (unsigned char)prefix[len - 1] == 0xff)
        len--;
    if (len == 0 || len + 2 > end_size)
        return false;
    end[0] = '(';
    memcpy (end + 1, prefix, len);
    end[len] = (char)((unsigned char)end[len] + 1);
    end[len + 1] = 0;
    return true;
}

static zube_status_t
s_range (zube_store_backend_t *self, const zube_store_range_t *range,
         zube_store_kv_fn *fn, void *arg, zube_store_range_result_t *result)
{
    *result = (zube_store_range_result_t){0};
    const char *prefix = range && range->prefix ? range->prefix : "";
    const char *after = range ? range->after_key : NULL;
    size_t limit = range ? range->limit : 0;
    if (strlen (prefix) > S_MAX_KEY || (after && strlen (after) > S_MAX_KEY))
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "redis: range prefix or after_key over %d bytes", S_MAX_KEY);
    //  ZRANGEBYLEX bounds: from just after after_key, or from the prefix.
    char min[S_MAX_KEY + 2], max[S_MAX_KEY + 2];
    if (after && strcmp (after, prefix) >= 0)
        snprintf (min, sizeof min, "(%s", after);
    else if (*prefix)
        snprintf (min, sizeof min, "[%s", prefix);
    else
        snprintf (min, sizeof min, "-");
    if (!s_prefix_end (prefix, max, sizeof max))
        snprintf (max, sizeof max, "+");
    //  One more than asked for tells whether more remain.
    char count[24];
    snprintf (count, sizeof count, "%zu", limit ? limit + 1 : 0);
    static const int keys[] = {S_META, S_REVS, S_VALUES, S_INDEX};
    s_args_t args = {0};
    char numkeys[8];
    s_script_args (self, &args, keys, 4, numkeys, sizeof numkeys);
    s_args_text (&args, min);
    s_args_text (&args, max);
    s_args_text (&args, count);
    redisReply *reply = NULL;
    zube_status_t status = s_script (self, S_RANGE, &args, false, "range", &reply);
    s_args_free (&args);
    if (status != ZUBE_OK)
        return status;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        (reply->elements - 1) % 3 ||
        !s_reply_int (reply->element[0], &result->revision)) {
        s_free_reply (reply);
        return s_malformed (self, "range");
    }
    size_t found = (reply->elements - 1) / 3;
    for (size_t i = 0; i < found; i++) {
        if (limit && result->count == limit) {
            result->more = true;
            break;
        }
        redisReply **item = reply->element + 1 + 3 * i;
        int64_t mod_revision = 0;
        if (!s_is_text (item[0]) || !s_reply_int (item[1], &mod_revision) ||
            mod_revision <= 0 || !s_is_text (item[2])) {
            status = s_malformed (self, "range");
            break;
        }
        zube_store_kv_t kv = {.key = item[0]->str,
                              .key_size = item[0]->len,
                              .value = item[2]->str,
                              .value_size = item[2]->len,
                              .mod_revision = mod_revision};
        result->count++;
        if (fn && fn (arg, &kv) != 0) {
            result->more = i + 1 < found;
            break;
        }
    }
    s_free_reply (reply);
    return status;
}

static zube_status_t
s_revision (zube_store_backend_t *self, int64_t *revision_p, int64_t *compacted_p)
{
    s_args_t args = {0};
    s_args_text (&args, "HMGET");
    s_args_text (&args, self->keys[S_META]);
    s_args_text (&args, "revision");
    s_args_text (&args, "compacted");
    redisReply *reply = NULL;
    zube_status_t status = s_command (self, &args, "revision", &reply);
    s_args_free (&args);
    if (status != ZUBE_OK)
        return status;
    int64_t revision = 0, compacted = 0;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        !s_reply_int (reply->element[0], &revision) ||
        !s_reply_int (reply->element[1], &compacted))
        status = s_malformed (self, "revision");
    s_free_reply (reply);
    if (status != ZUBE_OK)
        return status;
    if (revision_p)
        *revision_p = revision;
    if (compacted_p)
        *compacted_p = compacted;
    return ZUBE_OK;
}

static zube_store_event_type_t
s_event_type (const redisReply *reply)
{
    if (!s_is_text (reply))
        return 0;
    if (strcmp (reply->str, "ADDED") == 0)
        return ZUBE_STORE_EVENT_ADDED;
    if (strcmp (reply->str, "MODIFIED") == 0)
        return ZUBE_STORE_EVENT_MODIFIED;
    if (strcmp (reply->str, "DELETED") == 0)
        return ZUBE_STORE_EVENT_DELETED;
    return 0;
}

//  "42-0" -> 42; 0 when it is not a revision id.
static int64_t
s_entry_revision (const redisReply *id)
{
    if (!s_is_text (id))
        return 0;
    char *end = NULL;
    long long revision = strtoll (id->str, &end, 10);
    return end && strcmp (end, "-0") == 0 && revision > 0 ? revision : 0;
}

//  A stream entry [id, [field, value, ...]] as an event; false if it is
//  not one of ours.
static bool
s_parse_event (const redisReply *entry, zube_store_event_t *event)
{
    *event = (zube_store_event_t){0};
    if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[1]->type != REDIS_REPLY_ARRAY || entry->element[1]->elements % 2)
        return false;
    event->revision = s_entry_revision (entry->element[0]);
    const redisReply *fields = entry->element[1];
    bool has_key = false, has_value = false, has_prev = false;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *name = fields->element[i], *value = fields->element[i + 1];
        if (!s_is_text (name) || !s_is_text (value) || name->len != 1)
            return false;
        switch (name->str[0]) {
        case 't':
            event->type = s_event_type (value);
            break;
        case 'k':
            event->key = value->str;
            event->key_size = value->len;
            has_key = true;
            break;
        case 'p':
            has_prev = s_reply_int (value, &event->prev_revision);
            break;
        case 'v':
            event->value = value->str;
            event->value_size = value->len;
            has_value = true;
            break;
        default:
            break;
        }
    }
    return event->revision > 0 && event->type && has_key && has_value && has_prev &&
           event->key_size > 0;
}

static zube_status_t
s_events (zube_store_backend_t *self, int64_t since, size_t limit,
          zube_store_event_fn *fn, void *arg, int64_t *revision_p)
{
    if (since < 0)
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "redis: events since %" PRId64 ": negative", since);
    static const int keys[] = {S_META, S_EVENTS};
    char since_text[24], first[32], count[24], numkeys[8];
    snprintf (since_text, sizeof since_text, "%" PRId64, since);
    snprintf (first, sizeof first, "%" PRId64 "-0", since + 1);
    snprintf (count, sizeof count, "%zu", limit);
    s_args_t args = {0};
    s_script_args (self, &args, keys, 2, numkeys, sizeof numkeys);
    s_args_text (&args, since_text);
    s_args_text (&args, first);
    s_args_text (&args, count);
    redisReply *reply = NULL;
    zube_status_t status = s_script (self, S_EVENTS_READ, &args, false, "events", &reply);
    s_args_free (&args);
    if (status != ZUBE_OK)
        return status;
    int64_t revision = 0, compacted = 0;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        !s_reply_int (reply->element[0], &revision) ||
        !s_reply_int (reply->element[1], &compacted)) {
        s_free_reply (reply);
        return s_malformed (self, "events");
    }
    if (revision_p)
        *revision_p = revision;
    if (since < compacted) {
        s_free_reply (reply);
        return s_fail (self, ZUBE_GONE,
                       "events since %" PRId64
                       " are compacted (oldest available: since %" PRId64 ")",
                       since, compacted);
    }
    const redisReply *entries = reply->elements == 3 ? reply->element[2] : NULL;
    if (!entries || entries->type != REDIS_REPLY_ARRAY) {
        s_free_reply (reply);
        return s_malformed (self, "events");
    }
    for (size_t i = 0; i < entries->elements; i++) {
        zube_store_event_t event;
        if (!s_parse_event (entries->element[i], &event)) {
            status = s_malformed (self, "events");
            break;
        }
        if (fn && fn (arg, &event) != 0)
            break;
    }
    s_free_reply (reply);
    return status;
}

//  ---------------------------------------------------------------------
//  Writes

static zube_status_t
s_txn_commit (zube_store_backend_t *self, const zube_store_op_t *ops, size_t count,
              zube_store_result_t *results)
{
    if (count == 0)
        return ZUBE_OK;
    if (!ops || !results)
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "redis: txn_commit without ops or results");
    //  Two numbers per op (group, expected revision) live here until sent.
    char (*numbers)[24] = malloc (count * 2 * sizeof *numbers);
    if (!numbers)
        return s_fail (self, ZUBE_INTERNAL, "redis: out of memory");
    static const int keys[] = {S_META, S_REVS, S_VALUES, S_INDEX, S_EVENTS};
    s_args_t args = {0};
    char numkeys[8], count_text[24];
    s_script_args (self, &args, keys, S_KEY_COUNT, numkeys, sizeof numkeys);
    snprintf (count_text, sizeof count_text, "%zu", count);
    s_args_text (&args, S_FORMAT);
    s_args_text (&args, count_text);
    for (size_t i = 0; i < count; i++) {
        const zube_store_op_t *op = &ops[i];
        bool valid = s_key_valid (op->key) &&
                     (op->type == ZUBE_STORE_PUT || op->type == ZUBE_STORE_DELETE) &&
                     !(op->type == ZUBE_STORE_PUT && op->value_size && !op->value) &&
                     op->expect_revision >= ZUBE_STORE_ANY_REVISION;
        if (!valid)
            s_fail (
                self, ZUBE_BAD_REQUEST,
                "redis: invalid operation on \"%.64s\" (empty or too long key, unknown "
                "type, or missing value)",
                op->key ? op->key : "(null)");
        snprintf (numbers[2 * i], sizeof numbers[0], "%" PRIu32, op->group);
        snprintf (numbers[2 * i + 1], sizeof numbers[0], "%" PRId64, op->expect_revision);
        s_args_text (&args, !valid ? "X" : op->type == ZUBE_STORE_PUT ? "P" : "D");
        s_args_text (&args, numbers[2 * i]);
        s_args_text (&args, numbers[2 * i + 1]);
        //  An invalid key still goes, cut short, so the group fails as one.
        s_args_add (&args, op->key ? op->key : "",
                    op->key ? strnlen (op->key, S_MAX_KEY + 1) : 0);
        if (valid && op->type == ZUBE_STORE_PUT)
            s_args_add (&args, op->value, op->value_size);
        else
            s_args_add (&args, "", 0);
    }
    redisReply *reply = NULL;
    zube_status_t status = s_script (self, S_WRITE, &args, true, "txn_commit", &reply);
    s_args_free (&args);
    free (numbers);
    if (status == ZUBE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 * count))
        status = s_malformed (self, "txn_commit");
    size_t written = 0;
    for (size_t i = 0; status == ZUBE_OK && i < count; i++) {
        const redisReply *code = reply->element[2 * i],
                         *revision = reply->element[2 * i + 1];
        if (code->type != REDIS_REPLY_INTEGER || revision->type != REDIS_REPLY_INTEGER) {
            status = s_malformed (self, "txn_commit");
            break;
        }
        static const zube_status_t codes[] = {ZUBE_OK, ZUBE_CONFLICT, ZUBE_NOT_FOUND,
                                              ZUBE_BAD_REQUEST};
        results[i].status = code->integer >= 0 && code->integer < 4 ? codes[code->integer]
                                                                    : ZUBE_INTERNAL;
        results[i].revision = revision->integer;
        written += results[i].status == ZUBE_OK;
    }
    s_free_reply (reply);
    if (status != ZUBE_OK) {
        for (size_t i = 0; i < count; i++)
            results[i] = (zube_store_result_t){.status = status};
        return status;
    }
    self->host->counter_add (self->host, "store_txn_total", 1);
    self->host->counter_add (self->host, "store_writes_total", written);
    if (written < count)
        self->host->counter_add (self->host, "store_failed_ops_total", count - written);
    return ZUBE_OK;
}

static zube_status_t
s_compact (zube_store_backend_t *self, int64_t revision)
{
    if (revision < 0)
        return s_fail (self, ZUBE_BAD_REQUEST, "redis: compact to %" PRId64 ": negative",
                       revision);
    static const int keys[] = {S_META, S_EVENTS};
    char target[24], first[32], numkeys[8];
    snprintf (target, sizeof target, "%" PRId64, revision);
    snprintf (first, sizeof first, "%" PRId64 "-0", revision + 1);
    s_args_t args = {0};
    s_script_args (self, &args, keys, 2, numkeys, sizeof numkeys);
    s_args_text (&args, target);
    s_args_text (&args, first);
    redisReply *reply = NULL;
    zube_status_t status = s_script (self, S_COMPACT, &args, true, "compact", &reply);
    s_args_free (&args);
    if (status != ZUBE_OK)
        return status;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER)
        status = s_malformed (self, "compact");
    else if (reply->element[0]->integer < 0)
        status =
            s_fail (self, ZUBE_BAD_REQUEST,
                    "redis: compact to %" PRId64 ": beyond the current revision %lld",
                    revision, reply->element[1]->integer);
    else if (reply->element[0]->integer > 0)
        self->host->counter_add (self->host, "store_events_compacted_total",
                                 (uint64_t)reply->element[1]->integer);
    s_free_reply (reply);
    return status;
}

//  ---------------------------------------------------------------------
//  Snapshot and restore: a portable framed stream, big-endian throughout.
//
//      "ZUBESNAP" u32 version (1)
//      'M' u64 revision u64 compacted
//      'O' u64 mod_revision u32 key_size key u32 value_size value   (key order)
//      'E' u64 revision u8 type u64 prev_revision u32 key_size key
//          u32 value_size value                                     (revision order)
//      'Z' u64 objects u64 events u32 crc32 (of every byte before it)
//
//  Nothing of Redis is in it: another backend could read it.

#define S_SNAP_MAGIC "ZUBESNAP"
#define S_SNAP_VERSION 1

static void
s_crc_table (uint32_t table[256])
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; bit++)
            crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
        table[i] = crc;
    }
}

static uint32_t
s_crc_update (const uint32_t table[256], uint32_t crc, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    crc = ~crc;
    for (size_t i = 0; i < size; i++)
        crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

typedef struct {
    int fd;
    uint32_t table[256];
    uint32_t crc;
    unsigned char buffer[65536];
    size_t used;
    int error;
} s_writer_t;

static void
s_write_all (s_writer_t *writer, const void *data, size_t size)
{
    const char *bytes = data;
    while (size > 0 && !writer->error) {
        ssize_t put = write (writer->fd, bytes, size);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0) {
            writer->error = errno;
            break;
        }
        bytes += put;
        size -= (size_t)put;
    }
}

static void
s_writer_flush (s_writer_t *writer)
{
    s_write_all (writer, writer->buffer, writer->used);
    writer->used = 0;
}

static void
s_put (s_writer_t *writer, const void *data, size_t size)
{
    writer->crc = s_crc_update (writer->table, writer->crc, data, size);
    if (writer->used + size > sizeof writer->buffer)
        s_writer_flush (writer);
    if (size > sizeof writer->buffer)
        s_write_all (writer, data, size);
    else {
        memcpy (writer->buffer + writer->used, data, size);
        writer->used += size;
    }
}

static void
s_put_u8 (s_writer_t *writer, unsigned value)
{
    unsigned char byte = (unsigned char)value;
    s_put (writer, &byte, 1);
}

static void
s_put_u32 (s_writer_t *writer, uint32_t value)
{
    unsigned char bytes[4] = {(unsigned char)(value >> 24), (unsigned char)(value >> 16),
                              (unsigned char)(value >> 8), (unsigned char)value};
    s_put (writer, bytes, 4);
}

static void
s_put_u64 (s_writer_t *writer, uint64_t value)
{
    s_put_u32 (writer, (uint32_t)(value >> 32));
    s_put_u32 (writer, (uint32_t)value);
}

static void
s_put_bytes (s_writer_t *writer, const void *data, size_t size)
{
    s_put_u32 (writer, (uint32_t)size);
    s_put (writer, data, size);
}

static int
s_compare_pair_keys (const void *a, const void *b)
{
    const redisReply *x = **(redisReply *const *const *)a;
    const redisReply *y = **(redisReply *const *const *)b;
    size_t len = x->len < y->len ? x->len : y->len;
    int diff = memcmp (x->str, y->str, len);
    return diff ? diff : (x->len > y->len) - (x->len < y->len);
}

//  The pairs of an HGETALL answer ([field, value, field, value, ...]) in
//  field order: an array of pointers to each pair's first element.
static redisReply ***
s_sorted_pairs (const redisReply *hash)
{
    size_t pairs = hash->elements / 2;
    redisReply ***sorted = malloc ((pairs ? pairs : 1) * sizeof *sorted);
    if (!sorted)
        return NULL;
    for (size_t i = 0; i < pairs; i++)
        sorted[i] = hash->element + 2 * i;
    qsort (sorted, pairs, sizeof *sorted, s_compare_pair_keys);
    return sorted;
}

static bool
s_is_hash_reply (const redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2)
        return false;
    for (size_t i = 0; i < reply->elements; i++)
        if (!s_is_text (reply->element[i]))
            return false;
    return true;
}

//  One consistent read of everything: MULTI, HGETALL meta, HGETALL revs,
//  HGETALL values, XRANGE events, EXEC, pipelined.
static zube_status_t
s_read_everything (zube_store_backend_t *self, redisReply **exec_p)
{
    *exec_p = NULL;
    bool fresh;
    zube_status_t status = s_ensure (self, &fresh);
    if (status != ZUBE_OK)
        return status;
    s_sigpipe_t guard;
    s_sigpipe_block (&guard);
    const char *multi[] = {"MULTI"};
    const char *meta[] = {"HGETALL", self->keys[S_META]};
    const char *revs[] = {"HGETALL", self->keys[S_REVS]};
    const char *values[] = {"HGETALL", self->keys[S_VALUES]};
    const char *events[] = {"XRANGE", self->keys[S_EVENTS], "-", "+"};
    const char *exec[] = {"EXEC"};
    redisAppendCommandArgv (self->redis, 1, multi, NULL);
    redisAppendCommandArgv (self->redis, 2, meta, NULL);
    redisAppendCommandArgv (self->redis, 2, revs, NULL);
    redisAppendCommandArgv (self->redis, 2, values, NULL);
    redisAppendCommandArgv (self->redis, 4, events, NULL);
    redisAppendCommandArgv (self->redis, 1, exec, NULL);
    for (int i = 0; i < 6 && status == ZUBE_OK; i++) {
        redisReply *reply = NULL;
        if (redisGetReply (self->redis, (void **)&reply) != REDIS_OK || !reply) {
            status = s_io_fail (self, "snapshot", false);
            break;
        }
        if (reply->type == REDIS_REPLY_ERROR)
            status = s_reply_fail (self, reply, "snapshot");
        else if (i == 5)
            *exec_p = reply, reply = NULL;
        s_free_reply (reply);
    }
    s_sigpipe_restore (&guard);
    //  An error inside MULTI leaves the rest of the answers unread.
    if (status != ZUBE_OK)
        s_disconnect (self);
    return status;
}

static zube_status_t
s_snapshot (zube_store_backend_t *self, int fd)
{
    redisReply *all = NULL;
    zube_status_t status = s_read_everything (self, &all);
    if (status != ZUBE_OK)
        return status;
    if (all->type != REDIS_REPLY_ARRAY || all->elements != 4 ||
        !s_is_hash_reply (all->element[0]) || !s_is_hash_reply (all->element[1]) ||
        !s_is_hash_reply (all->element[2]) ||
        all->element[3]->type != REDIS_REPLY_ARRAY ||
        all->element[1]->elements != all->element[2]->elements) {
        s_free_reply (all);
        return s_malformed (self, "snapshot");
    }
    const redisReply *meta = all->element[0], *events = all->element[3];
    int64_t revision = 0, compacted = 0;
    for (size_t i = 0; i + 1 < meta->elements; i += 2) {
        if (strcmp (meta->element[i]->str, "revision") == 0)
            s_reply_int (meta->element[i + 1], &revision);
        else if (strcmp (meta->element[i]->str, "compacted") == 0)
            s_reply_int (meta->element[i + 1], &compacted);
    }
    redisReply ***revs = s_sorted_pairs (all->element[1]);
    redisReply ***values = s_sorted_pairs (all->element[2]);
    s_writer_t *writer = malloc (sizeof *writer);
    if (!revs || !values || !writer) {
        free (revs);
        free (values);
        free (writer);
        s_free_reply (all);
        return s_fail (self, ZUBE_INTERNAL, "redis: snapshot: out of memory");
    }
    writer->fd = fd;
    writer->used = 0;
    writer->error = 0;
    writer->crc = 0;
    s_crc_table (writer->table);
    s_put (writer, S_SNAP_MAGIC, 8);
    s_put_u32 (writer, S_SNAP_VERSION);
    s_put_u8 (writer, 'M');
    s_put_u64 (writer, (uint64_t)revision);
    s_put_u64 (writer, (uint64_t)compacted);
    size_t objects = all->element[1]->elements / 2;
    for (size_t i = 0; i < objects && status == ZUBE_OK; i++) {
        redisReply **rev = revs[i], **value = values[i];
        int64_t mod_revision = 0;
        if (s_compare_pair_keys (&revs[i], &values[i]) != 0 ||
            !s_reply_int (rev[1], &mod_revision) || mod_revision <= 0) {
            status = s_malformed (self, "snapshot");
            break;
        }
        s_put_u8 (writer, 'O');
        s_put_u64 (writer, (uint64_t)mod_revision);
        s_put_bytes (writer, rev[0]->str, rev[0]->len);
        s_put_bytes (writer, value[1]->str, value[1]->len);
    }
    for (size_t i = 0; i < events->elements && status == ZUBE_OK; i++) {
        zube_store_event_t event;
        if (!s_parse_event (events->element[i], &event)) {
            status = s_malformed (self, "snapshot");
            break;
        }
        s_put_u8 (writer, 'E');
        s_put_u64 (writer, (uint64_t)event.revision);
        s_put_u8 (writer, (unsigned)event.type);
        s_put_u64 (writer, (uint64_t)event.prev_revision);
        s_put_bytes (writer, event.key, event.key_size);
        s_put_bytes (writer, event.value, event.value_size);
    }
    if (status == ZUBE_OK) {
        s_put_u8 (writer, 'Z');
        s_put_u64 (writer, objects);
        s_put_u64 (writer, events->elements);
        s_put_u32 (writer, writer->crc);
        s_writer_flush (writer);
        if (writer->error)
            status = s_fail (self, ZUBE_UNAVAILABLE, "redis: snapshot: write: %s",
                             strerror (writer->error));
    }
    free (revs);
    free (values);
    free (writer);
    s_free_reply (all);
    return status;
}

//  A snapshot read back: bounds-checked cursor over the whole stream.
typedef struct {
    const unsigned char *data;
    size_t size;
    size_t at;
    bool bad;
} s_reader_t;

static const unsigned char *
s_take (s_reader_t *reader, size_t size)
{
    if (reader->bad || reader->size - reader->at < size) {
        reader->bad = true;
        return NULL;
    }
    const unsigned char *bytes = reader->data + reader->at;
    reader->at += size;
    return bytes;
}

static uint64_t
s_take_uint (s_reader_t *reader, size_t size)
{
    const unsigned char *bytes = s_take (reader, size);
    uint64_t value = 0;
    for (size_t i = 0; bytes && i < size; i++)
        value = (value << 8) | bytes[i];
    return value;
}

static const char *
s_take_bytes (s_reader_t *reader, size_t *size_p)
{
    *size_p = (size_t)s_take_uint (reader, 4);
    return (const char *)s_take (reader, *size_p);
}

//  One record of a snapshot.
typedef struct {
    char tag;
    int64_t revision;
    int64_t other;
    int type;
    const char *key;
    size_t key_size;
    const char *value;
    size_t value_size;
} s_record_t;

static bool
s_next_record (s_reader_t *reader, s_record_t *record)
{
    *record = (s_record_t){0};
    const unsigned char *tag = s_take (reader, 1);
    if (!tag)
        return false;
    record->tag = (char)*tag;
    switch (record->tag) {
    case 'M':
        record->revision = (int64_t)s_take_uint (reader, 8);
        record->other = (int64_t)s_take_uint (reader, 8);
        break;
    case 'O':
        record->revision = (int64_t)s_take_uint (reader, 8);
        record->key = s_take_bytes (reader, &record->key_size);
        record->value = s_take_bytes (reader, &record->value_size);
        break;
    case 'E':
        record->revision = (int64_t)s_take_uint (reader, 8);
        record->type = (int)s_take_uint (reader, 1);
        record->other = (int64_t)s_take_uint (reader, 8);
        record->key = s_take_bytes (reader, &record->key_size);
        record->value = s_take_bytes (reader, &record->value_size);
        break;
    case 'Z':
        record->revision = (int64_t)s_take_uint (reader, 8);
        record->other = (int64_t)s_take_uint (reader, 8);
        break;
    default:
        reader->bad = true;
    }
    return !reader->bad;
}

static bool
s_snapshot_key_valid (const s_record_t *record)
{
    return record->key_size > 0 && record->key_size <= S_MAX_KEY &&
           !memchr (record->key, 0, record->key_size);
}

//  Checks a whole snapshot: framing, order, revisions, counts, checksum.
//  NULL when it is good, else what is wrong.
static const char *
s_check_snapshot (const unsigned char *data, size_t size, int64_t *revision_p)
{
    if (size < 12 || memcmp (data, S_SNAP_MAGIC, 8) != 0)
        return "not a zube snapshot";
    s_reader_t reader = {.data = data, .size = size, .at = 8};
    if (s_take_uint (&reader, 4) != S_SNAP_VERSION)
        return "snapshot version not supported by this zube";
    s_record_t record, previous = {0};
    if (!s_next_record (&reader, &record) || record.tag != 'M' || record.revision < 0 ||
        record.other < 0 || record.other > record.revision)
        return "bad header record";
    int64_t revision = record.revision, compacted = record.other, last_event = compacted;
    uint64_t objects = 0, events = 0;
    while (true) {
        if (!s_next_record (&reader, &record))
            return "truncated or corrupt record";
        if (record.tag == 'O') {
            if (events || !s_snapshot_key_valid (&record) || record.revision <= 0 ||
                record.revision > revision)
                return "bad object record";
            if (objects) {
                size_t len = previous.key_size < record.key_size ? previous.key_size
                                                                 : record.key_size;
                int diff = memcmp (previous.key, record.key, len);
                if (diff > 0 || (diff == 0 && previous.key_size >= record.key_size))
                    return "object keys out of order";
            }
            previous = record;
            objects++;
        } else if (record.tag == 'E') {
            if (!s_snapshot_key_valid (&record) || record.revision <= last_event ||
                record.revision > revision || record.type < ZUBE_STORE_EVENT_ADDED ||
                record.type > ZUBE_STORE_EVENT_DELETED || record.other < 0 ||
                record.other >= record.revision)
                return "bad event record";
            last_event = record.revision;
            events++;
        } else if (record.tag == 'Z') {
            uint32_t table[256];
            s_crc_table (table);
            uint32_t crc = s_crc_update (table, 0, data, reader.at);
            uint32_t stored = (uint32_t)s_take_uint (&reader, 4);
            if (reader.bad)
                return "truncated end record";
            if ((uint64_t)record.revision != objects || (uint64_t)record.other != events)
                return "record counts do not match";
            if (crc != stored)
                return "checksum mismatch";
            if (reader.at != size)
                return "data after the end record";
            break;
        } else
            return "misplaced record";
    }
    *revision_p = revision;
    return NULL;
}

//  Reads fd to EOF into memory.
static int
s_read_all (int fd, unsigned char **data_p, size_t *size_p)
{
    size_t cap = 65536, used = 0;
    unsigned char *data = malloc (cap);
    if (!data)
        return ENOMEM;
    while (true) {
        if (used == cap) {
            unsigned char *bigger = realloc (data, cap * 2);
            if (!bigger) {
                free (data);
                return ENOMEM;
            }
            data = bigger;
            cap *= 2;
        }
        ssize_t got = read (fd, data + used, cap - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int rc = errno;
            free (data);
            return rc;
        }
        if (got == 0)
            break;
        used += (size_t)got;
    }
    *data_p = data;
    *size_p = used;
    return 0;
}

//  Commands sent without waiting, answered in batches.
typedef struct {
    zube_store_backend_t *self;
    size_t pending;
    size_t bytes;
    zube_status_t status;
} s_pipeline_t;

static void
s_pipeline_drain (s_pipeline_t *pipeline)
{
    zube_store_backend_t *self = pipeline->self;
    for (; pipeline->pending > 0; pipeline->pending--) {
        redisReply *reply = NULL;
        if (!self->redis)
            continue;
        if (redisGetReply (self->redis, (void **)&reply) != REDIS_OK || !reply) {
            if (pipeline->status == ZUBE_OK)
                pipeline->status = s_io_fail (self, "restore", false);
            else
                s_disconnect (self);
            continue;
        }
        if (reply->type == REDIS_REPLY_ERROR && pipeline->status == ZUBE_OK)
            pipeline->status = s_reply_fail (self, reply, "restore");
        s_free_reply (reply);
    }
    pipeline->bytes = 0;
}

static void
s_pipeline_send (s_pipeline_t *pipeline, s_args_t *args)
{
    if (pipeline->status != ZUBE_OK || !pipeline->self->redis)
        return;
    if (args->failed) {
        pipeline->status =
            s_fail (pipeline->self, ZUBE_INTERNAL, "redis: restore: out of memory");
        return;
    }
    redisAppendCommandArgv (pipeline->self->redis, (int)args->count, args->argv,
                            args->lens);
    pipeline->pending++;
    for (size_t i = 0; i < args->count; i++)
        pipeline->bytes += args->lens[i];
    if (pipeline->pending >= 256 || pipeline->bytes >= (8u << 20))
        s_pipeline_drain (pipeline);
}

static void
s_expire_staging (s_pipeline_t *pipeline, char *const *staging)
{
    for (int i = 0; i < S_KEY_COUNT && pipeline->status == ZUBE_OK; i++) {
        s_args_t command = {0};
        s_args_text (&command, "EXPIRE");
        s_args_text (&command, staging[i]);
        s_args_text (&command, "86400");
        s_pipeline_send (pipeline, &command);
        s_args_free (&command);
    }
}

//  Loads a checked snapshot into the staging keys.
static zube_status_t
s_load_staging (zube_store_backend_t *self, char *const *staging,
                const unsigned char *data, size_t size)
{
    s_pipeline_t pipeline = {.self = self, .status = ZUBE_OK};
    s_reader_t reader = {.data = data, .size = size, .at = 12};
    s_record_t record;
    //  Objects go in chunks of up to 512 per command.
    s_args_t revs = {0}, values = {0}, index = {0}, command = {0};
    char (*numbers)[24] = malloc (512 * sizeof *numbers);
    if (!numbers)
        return s_fail (self, ZUBE_INTERNAL, "redis: restore: out of memory");
    size_t chunk = 0;
    char event_revision[32], prev[24], revision_text[24], compacted_text[24];
    s_sigpipe_t guard;
    s_sigpipe_block (&guard);
    while (pipeline.status == ZUBE_OK && s_next_record (&reader, &record) &&
           record.tag != 'Z') {
        if (record.tag == 'M') {
            snprintf (revision_text, sizeof revision_text, "%" PRId64, record.revision);
            snprintf (compacted_text, sizeof compacted_text, "%" PRId64, record.other);
            command = (s_args_t){0};
            s_args_text (&command, "HSET");
            s_args_text (&command, staging[S_META]);
            s_args_text (&command, "format");
            s_args_text (&command, S_FORMAT);
            s_args_text (&command, "revision");
            s_args_text (&command, revision_text);
            s_args_text (&command, "compacted");
            s_args_text (&command, compacted_text);
            s_pipeline_send (&pipeline, &command);
            s_args_free (&command);
        } else if (record.tag == 'O') {
            if (chunk == 0) {
                s_args_text (&revs, "HSET");
                s_args_text (&revs, staging[S_REVS]);
                s_args_text (&values, "HSET");
                s_args_text (&values, staging[S_VALUES]);
                s_args_text (&index, "ZADD");
                s_args_text (&index, staging[S_INDEX]);
            }
            snprintf (numbers[chunk], sizeof numbers[0], "%" PRId64, record.revision);
            s_args_add (&revs, record.key, record.key_size);
            s_args_text (&revs, numbers[chunk]);
            s_args_add (&values, record.key, record.key_size);
            s_args_add (&values, record.value, record.value_size);
            s_args_text (&index, "0");
            s_args_add (&index, record.key, record.key_size);
            chunk++;
        } else if (record.tag == 'E') {
            static const char *const types[] = {"", "ADDED", "MODIFIED", "DELETED"};
            snprintf (event_revision, sizeof event_revision, "%" PRId64 "-0",
                      record.revision);
            snprintf (prev, sizeof prev, "%" PRId64, record.other);
            command = (s_args_t){0};
            s_args_text (&command, "XADD");
            s_args_text (&command, staging[S_EVENTS]);
            s_args_text (&command, event_revision);
            s_args_text (&command, "t");
            s_args_text (&command, types[record.type]);
            s_args_text (&command, "k");
            s_args_add (&command, record.key, record.key_size);
            s_args_text (&command, "p");
            s_args_text (&command, prev);
            s_args_text (&command, "v");
            s_args_add (&command, record.value, record.value_size);
            s_pipeline_send (&pipeline, &command);
            s_args_free (&command);
        }
        bool next_is_object = reader.at < size && data[reader.at] == 'O';
        if (chunk && (chunk == 512 || !next_is_object)) {
            s_pipeline_send (&pipeline, &revs);
            s_pipeline_send (&pipeline, &values);
            s_pipeline_send (&pipeline, &index);
            s_args_free (&revs);
            s_args_free (&values);
            s_args_free (&index);
            chunk = 0;
        }
        //  After each drain, and at the end: staging keys expire, so a
        //  restore that dies half way leaves nothing behind for long.
        if (pipeline.pending == 0)
            s_expire_staging (&pipeline, staging);
    }
    s_expire_staging (&pipeline, staging);
    if (self->redis)
        s_pipeline_drain (&pipeline);
    s_sigpipe_restore (&guard);
    s_args_free (&revs);
    s_args_free (&values);
    s_args_free (&index);
    free (numbers);
    return pipeline.status;
}

static void
s_delete_keys (zube_store_backend_t *self, char *const *keys, int count)
{
    s_args_t args = {0};
    s_args_text (&args, "DEL");
    for (int i = 0; i < count; i++)
        s_args_text (&args, keys[i]);
    redisReply *reply = NULL;
    s_command (self, &args, "restore cleanup", &reply);
    s_free_reply (reply);
    s_args_free (&args);
}

static zube_status_t
s_restore (zube_store_backend_t *self, int fd)
{
    unsigned char *data = NULL;
    size_t size = 0;
    int rc = s_read_all (fd, &data, &size);
    if (rc != 0)
        return s_fail (self, rc == ENOMEM ? ZUBE_INTERNAL : ZUBE_UNAVAILABLE,
                       "redis: restore: reading the snapshot: %s", strerror (rc));
    int64_t revision = 0;
    const char *problem = s_check_snapshot (data, size, &revision);
    if (problem) {
        free (data);
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "redis %s: restore: %s (%zu bytes); store unchanged",
                       self->address, problem, size);
    }
    //  The snapshot goes into staging keys beside the store, then one
    //  script renames them over the store's keys: readers see the old
    //  store or the new one, never a mixture.
    char *staging[S_KEY_COUNT] = {0};
    zube_status_t status = ZUBE_OK;
    unsigned long long tag = ((unsigned long long)getpid () << 32) ^
                             (unsigned long long)self->host->monotonic_ns (self->host);
    for (int i = 0; i < S_KEY_COUNT && status == ZUBE_OK; i++)
        if (asprintf (&staging[i], "{%s}:restore-%llx:%s", self->prefix, tag,
                      s_key_names[i]) < 0) {
            staging[i] = NULL;
            status = s_fail (self, ZUBE_INTERNAL, "redis: restore: out of memory");
        }
    if (status == ZUBE_OK) {
        bool fresh;
        status = s_ensure (self, &fresh);
    }
    if (status == ZUBE_OK)
        status = s_load_staging (self, staging, data, size);
    free (data);
    if (status == ZUBE_OK) {
        s_args_t args = {0};
        char numkeys[8];
        snprintf (numkeys, sizeof numkeys, "%d", 2 * S_KEY_COUNT);
        s_args_add (&args, "", 0);
        s_args_add (&args, "", 0);
        s_args_text (&args, numkeys);
        for (int i = 0; i < S_KEY_COUNT; i++)
            s_args_text (&args, self->keys[i]);
        for (int i = 0; i < S_KEY_COUNT; i++)
            s_args_text (&args, staging[i]);
        redisReply *reply = NULL;
        status = s_script (self, S_SWAP, &args, true, "restore", &reply);
        s_free_reply (reply);
        s_args_free (&args);
    }
    if (status != ZUBE_OK && staging[S_KEY_COUNT - 1]) {
        char saved[sizeof self->error];
        memcpy (saved, self->error, sizeof saved);
        s_delete_keys (self, staging, S_KEY_COUNT);
        memcpy (self->error, saved, sizeof saved);
    }
    for (int i = 0; i < S_KEY_COUNT; i++)
        free (staging[i]);
    if (status == ZUBE_OK)
        self->host->log (self->host, ZUBE_LOG_INFO,
                         "msg=\"store restored\" address=%s prefix=%s revision=%" PRId64,
                         self->address, self->prefix, revision);
    return status;
}

//  ---------------------------------------------------------------------

static zube_plugin_rc_t
s_init (const zube_host_t *host, char *error, size_t error_size)
{
    if (!ZUBE_HOST_HAS (host, monotonic_ns)) {
        snprintf (error, error_size, "host table version %u is too old (need %d)",
                  host->version, ZUBE_HOST_VERSION);
        return ZUBE_PLUGIN_ERROR;
    }
    return ZUBE_PLUGIN_OK;
}

static const zube_store_ops_t s_ops = {
    .struct_size = sizeof (zube_store_ops_t),
    .open = s_open,
    .close = s_close,
    .errmsg = s_errmsg,
    .get = s_get,
    .range = s_range,
    .txn_commit = s_txn_commit,
    .revision = s_revision,
    .events = s_events,
    .compact = s_compact,
    .snapshot = s_snapshot,
    .restore = s_restore,
};

ZUBE_PLUGIN_DEFINE (.name = "redis", .version = ZUBE_VERSION_STRING,
                    .kind = ZUBE_PLUGIN_STORE,
                    .description = "store on a Redis server (redis://HOST:PORT[/DB])",
                    .ops = &s_ops, .init = s_init)
