/* SPDX-License-Identifier: MIT */
/*
 * The Lua scripts of the distributed crawl (dist.c). Each runs atomically
 * in Redis, so no other client sees half of one.
 */
#ifndef CRAWL_DIST_LUA_H
#define CRAWL_DIST_LUA_H

/* KEYS seen, frontier, stats; ARGV depth, hops, url...: add each URL not
 * yet in the seen-set to the frontier. Returns how many were added. */
static const char dist_lua_add[] =
    "local n = 0\n"
    "for i = 3, #ARGV do\n"
    "  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then\n"
    "    redis.call('XADD', KEYS[2], '*', 'url', ARGV[i],\n"
    "               'depth', ARGV[1], 'hops', ARGV[2])\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "if n > 0 then redis.call('HINCRBY', KEYS[3], 'added', n) end\n"
    "return n\n";

/* KEYS frontier, stats, pages; ARGV group, id, url, status, bytes,
 * consumer: XACK the entry and record the page (status -1: no page to
 * record: robots.txt forbade it, or it was recorded by an earlier ack). A second ack of the same entry (it was reclaimed
 * while its first holder still finished it) counts as a duplicate.
 * Returns XACK's result. */
static const char dist_lua_ack[] =
    "local a = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "if a == 1 then redis.call('HINCRBY', KEYS[2], 'acked', 1) end\n"
    "if ARGV[4] == '-1' then return a end\n"
    "if a == 0 then redis.call('HINCRBY', KEYS[2], 'dups', 1) end\n"
    "redis.call('HINCRBY', KEYS[2], 'pages', 1)\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', 100000, '*', 'url', ARGV[3],\n"
    "           'status', ARGV[4], 'bytes', ARGV[5], 'consumer', ARGV[6])\n"
    "return a\n";

/* KEYS bucket; ARGV rate (tokens per second): a token bucket of burst 1
 * on the server's clock, shared by every process. Returns 0 when a token
 * was taken, else the milliseconds to wait before asking again. */
static const char dist_lua_rate[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local rate = tonumber(ARGV[1])\n"
    "local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
    "local tokens = tonumber(b[1]) or 1\n"
    "local ts = tonumber(b[2]) or now\n"
    "tokens = math.min(1, tokens + (now - ts) * rate / 1000)\n"
    "local wait = 0\n"
    "if tokens >= 1 then tokens = tokens - 1\n"
    "else wait = math.ceil((1 - tokens) * 1000 / rate) end\n"
    "redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)\n"
    "redis.call('PEXPIRE', KEYS[1], 60000)\n"
    "return wait\n";

/* KEYS frontier; ARGV group, consumer, id...: claim again (to the same
 * consumer, idle time 0) those of the entries it still owns, so that no
 * other process reclaims them while it works on them. An entry another
 * process already reclaimed stays with that process. Returns the count. */
static const char dist_lua_heartbeat[] =
    "local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}\n"
    "for i = 3, #ARGV do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i],\n"
    "                       1, ARGV[2])\n"
    "  if #p > 0 then args[#args + 1] = ARGV[i] end\n"
    "end\n"
    "if #args == 5 then return 0 end\n"
    "args[#args + 1] = 'JUSTID'\n"
    "redis.call(unpack(args))\n"
    "return #args - 6\n";

#endif
