/* pal_sockaddr.h - tml_sockaddr <-> the OS's sockaddr, for the platform
 * layer's two implementations (pal_posix.c, pal_win32.c), whose socket
 * headers spell these types the same way. Include it after them. */
#ifndef PAL_SOCKADDR_H
#define PAL_SOCKADDR_H

#include <string.h>

#include "tml/rt.h"

/* Fills *ss from `a`; returns its length, or 0 when `a` is no address. */
static int to_os(const tml_sockaddr *a, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (a->family == TML_AF_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->ip, 4);
        return sizeof *in;
    }
    if (a->family == TML_AF_IPV6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        in6->sin6_scope_id = a->scope_id;
        memcpy(&in6->sin6_addr, a->ip, 16);
        return sizeof *in6;
    }
    return 0;
}

/* Converts an OS address into *a; family 0 for one TML has no SocketAddr for. */
static void from_os(const struct sockaddr_storage *ss, tml_sockaddr *a) {
    tml_sockaddr r = {0};
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        r.family = TML_AF_IPV4;
        r.port = ntohs(in->sin_port);
        memcpy(r.ip, &in->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        r.family = TML_AF_IPV6;
        r.port = ntohs(in6->sin6_port);
        r.scope_id = in6->sin6_scope_id;
        memcpy(r.ip, &in6->sin6_addr, 16);
    }
    *a = r;
}

#endif /* PAL_SOCKADDR_H */
