/*
 * cocowritelog.h: which pages of a file another process wrote through its
 * own mappings of it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The kernel's asynchronous userfaultfd write protection (Linux 6.7:
 * UFFD_FEATURE_WP_ASYNC) records, per page table entry, that a protected
 * page was written, and PAGEMAP_SCAN reads those records and protects the
 * pages again in one step. Only a process can create a userfaultfd for its
 * own memory: the writer makes one at start (cocoWriteLogPrepareSelf(),
 * what qemu-coco's write-log preload does inside QEMU) and keeps it open;
 * the logger takes a copy (pidfd_getfd), registers the writer's mappings
 * of the file and reads its page tables through /proc/PID/pagemap.
 *
 * What it sees: every write through the writer's mappings that existed at
 * attach time, by its threads or by the kernel on its behalf (read(),
 * vhost). What it cannot see: writes through another process's mapping, a
 * mapping made after attach, or write(2) to the file; cocoWriteLogCheck()
 * finds a changed set of mappings.
 *
 * Threading: cocoWriteLogCollect() may run concurrently on disjoint page
 * ranges; attach, check and free run alone.
 */

#pragma once

#include "internal.h"

#include <stdint.h>
#include <sys/types.h>

typedef struct _CocoWriteLog CocoWriteLog;

/* In the writer: create the userfaultfd the logger will use (write
 * protection negotiated, nothing registered yet). Returns the descriptor
 * or -errno; the caller keeps it open for its lifetime. */
int cocoWriteLogPrepareSelf(void);

/* In the logger: log the writes of process @pid to the pages
 * [@offset, @offset + @size) of the file @fd (page-aligned). Every page of
 * the range starts protected: the first collect reports what was written
 * after this call. */
CocoWriteLog *cocoWriteLogAttach(pid_t pid, int fd, uint64_t offset,
                                 uint64_t size, GError **error);

/* Set bit (p - @first) of @bits for every page p of [@first, @first +
 * @npages) (counted from @offset) written since the previous collect of
 * that page, and protect them again. 0 or -1 with @error. */
int cocoWriteLogCollect(CocoWriteLog *log, uint64_t first, uint64_t npages,
                        uint64_t *bits, GError **error);

/* 0 when the writer still maps the file exactly as at attach, else -1
 * with @error naming what changed. */
int cocoWriteLogCheck(CocoWriteLog *log, GError **error);

/* Unregister (the writer's pages become writable without faults again)
 * and close. */
void cocoWriteLogFree(CocoWriteLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoWriteLog, cocoWriteLogFree)
