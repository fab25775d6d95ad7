/*
 * cocofd.h: whole writes to a socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <stddef.h>

/* Send all @len bytes of @buf on the blocking socket @fd (MSG_NOSIGNAL,
 * retried on EINTR and short writes). Returns 0, or -errno (-EPIPE when
 * the peer stopped taking bytes). */
int cocoFdSendAll(int fd, const void *buf, size_t len);
