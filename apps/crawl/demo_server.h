/* SPDX-License-Identifier: MIT */
/*
 * The demo site's HTTP/1.1 server, on knit: one listening socket per
 * virtual host on 127.0.0.1, one task per connection, keep-alive,
 * Content-Length and chunked bodies, HEAD, 400/405/431/501/505 answers to
 * bad requests (http_proto.h parses), and whatever site.h says the page
 * is (slow, failing, reset, redirecting).
 */
#ifndef CRAWL_DEMO_SERVER_H
#define CRAWL_DEMO_SERVER_H

#include <stdint.h>

#include "site.h"

struct demo_server;

/**
 * demo_server_start() - serve @cfg's site (call from a task).
 * @base_port: host h listens on base_port + h; 0 = ephemeral ports.
 * The server runs in tasks of its own until demo_server_stop().
 * Return: 0 and *@out, or a negative errno with a message in @err.
 */
int demo_server_start(const struct site_config *cfg, int base_port,
                      struct demo_server **out, char *err, size_t errlen);

/* "http://127.0.0.1:PORT" of host @h. */
const char *demo_server_origin(const struct demo_server *d, int h);

/* The site being served (for site_list, site_describe). */
struct site *demo_server_site(const struct demo_server *d);

/* Requests answered so far. */
uint64_t demo_server_requests(const struct demo_server *d);

/* Stop accepting, close every connection, wait for the tasks, free. */
void demo_server_stop(struct demo_server *d);

#endif
