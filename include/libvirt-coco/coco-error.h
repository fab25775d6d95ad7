/*
 * coco-error.h: the libvirt-coco error domain and its stable codes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(LIBVIRT_COCO_H_INSIDE) && !defined(LIBVIRT_COCO_COMPILATION)
# error "Only <libvirt-coco/libvirt-coco.h> can be included directly."
#endif

#include <glib.h>

G_BEGIN_DECLS

/**
 * COCO_ERROR:
 *
 * The one #GError domain every libvirt-coco function reports into.
 * Its quark string is "coco-error-quark". (Since: 0.1.0)
 */
#define COCO_ERROR (cocoErrorQuark())

/**
 * CocoErrorCode:
 *
 * Stable error codes of the %COCO_ERROR domain. The numbers are ABI: they
 * never change meaning and are never reused. They are grouped in blocks of
 * one hundred, one block per layer, so a layer can add codes at the end of
 * its block without renumbering another. The D-Bus error name of a code is
 * "org.libvirtcoco.Error." followed by its nick (see cocoErrorCodeToString()).
 * (Since: 0.1.0)
 *
 * @COCO_ERROR_INTERNAL: a bug or an impossible state inside libvirt-coco
 * @COCO_ERROR_INVALID_ARG: a caller passed an argument that is not allowed
 * @COCO_ERROR_NOT_SUPPORTED: the operation is not supported here
 * @COCO_ERROR_SYSTEM: an operating-system call failed (errno in the message)
 * @COCO_ERROR_LIBVIRT: libvirt reported an error; see cocoErrorGetLibvirtCode()
 * @COCO_ERROR_USAGE: a command line or request was malformed
 * @COCO_ERROR_XML_MALFORMED: the input is not well-formed XML
 * @COCO_ERROR_XML_NAMESPACE: an element is not in the expected namespace
 * @COCO_ERROR_XML_UNKNOWN: an unknown element or attribute
 * @COCO_ERROR_XML_MISSING: a required element or attribute is missing
 * @COCO_ERROR_XML_DUPLICATE: an element or value that may appear once repeats
 * @COCO_ERROR_XML_ENUM: an attribute holds a value outside its enumeration
 * @COCO_ERROR_XML_NUMBER: a number is malformed or outside its range
 * @COCO_ERROR_XML_FORMAT: a value does not have the required form (hex, ...)
 * @COCO_ERROR_XML_SCHEMA: the RelaxNG grammar rejected the document
 * @COCO_ERROR_CONFIG_CONFLICT: the coco element contradicts the domain
 * @COCO_ERROR_NOT_CONFIGURED: the domain has no confidential-migration element
 * @COCO_ERROR_XML_ORDER: an element appears out of its required order
 * @COCO_ERROR_FW_STATE: firmware call not legal in the current state (-EPERM)
 * @COCO_ERROR_FW_INTEGRITY: bundle format or MAC check failed (-EBADMSG)
 * @COCO_ERROR_FW_SEQUENCE: replay, drop or reorder detected (-EPROTO)
 * @COCO_ERROR_FW_BUSY: firmware busy, vCPUs still running (-EBUSY)
 * @COCO_ERROR_FW_NOT_READY: agent key not installed yet (-EAGAIN)
 * @COCO_ERROR_FW_EXISTS: the object was already exported/imported (-EEXIST)
 * @COCO_ERROR_FW_INVALID: malformed firmware arguments (-EINVAL)
 * @COCO_ERROR_FW_BUFFER: the buffer is too small; the needed size is reported
 * @COCO_ERROR_FW_FATAL: the destination VM failed for good and can only be torn down
 * @COCO_ERROR_FW_POLICY: the peer is not accepted by the migration policy
 * @COCO_ERROR_FW_KEY: the session keys do not match (wrong key)
 * @COCO_ERROR_TRANSFER_IO: a transfer stream failed
 * @COCO_ERROR_TRANSFER_PROTOCOL: the peer violated the stream protocol
 * @COCO_ERROR_VFIO_KERNEL: the kernel refused a VFIO/iommufd request
 * @COCO_ERROR_VFIO_RANGE: an IOVA range is malformed or overflows
 * @COCO_ERROR_VFIO_LEAK: a DMA mapping could not be removed (named in the message)
 * @COCO_ERROR_VFIO_CAPS: the IOMMU capability chain is malformed
 * @COCO_ERROR_VFIO_UNSAFE: host kernel and vIOMMU combination is unsafe
 * @COCO_ERROR_MIGRATION_PHASE: a migration phase arrived out of order
 * @COCO_ERROR_MIGRATION_ABORTED: the migration was aborted
 * @COCO_ERROR_MIGRATION_SOURCE_FROZEN: the source is paused and can never resume
 * @COCO_ERROR_MIGRATION_UNSEALED: libvirt migrated the guest, but its memory
 *   did not move sealed through the agents (Since: 0.1.0)
 * @COCO_ERROR_ACCESS_DENIED: the caller is not authorised (polkit)
 * @COCO_ERROR_AGENT_PROTOCOL: a relay, client or peer agent sent a malformed message
 * @COCO_ERROR_PEER_AUTH: the peer agent could not be authenticated
 * @COCO_ERROR_AGENT_LIMIT: a resource limit of the agent was reached
 * @COCO_ERROR_PEER_TIMEOUT: the peer agent stopped answering within its deadline
 * @COCO_ERROR_QMP_PROTOCOL: a QMP peer sent something the relay cannot handle
 * @COCO_ERROR_QMP_AGENT: the host agent is unreachable or broke its protocol
 * @COCO_ERROR_LAST: one more than the largest code; not an error
 */
typedef enum {
    /* 1..99: general */
    COCO_ERROR_INTERNAL = 1,
    COCO_ERROR_INVALID_ARG = 2,
    COCO_ERROR_NOT_SUPPORTED = 3,
    COCO_ERROR_SYSTEM = 4,
    COCO_ERROR_LIBVIRT = 5,
    COCO_ERROR_USAGE = 6,

    /* 100..199: configuration XML (src/conf) */
    COCO_ERROR_XML_MALFORMED = 100,
    COCO_ERROR_XML_NAMESPACE = 101,
    COCO_ERROR_XML_UNKNOWN = 102,
    COCO_ERROR_XML_MISSING = 103,
    COCO_ERROR_XML_DUPLICATE = 104,
    COCO_ERROR_XML_ENUM = 105,
    COCO_ERROR_XML_NUMBER = 106,
    COCO_ERROR_XML_FORMAT = 107,
    COCO_ERROR_XML_SCHEMA = 108,
    COCO_ERROR_CONFIG_CONFLICT = 109,
    COCO_ERROR_NOT_CONFIGURED = 110,
    COCO_ERROR_XML_ORDER = 111,

    /* 200..299: firmware (src/firmware) */
    COCO_ERROR_FW_STATE = 200,
    COCO_ERROR_FW_INTEGRITY = 201,
    COCO_ERROR_FW_SEQUENCE = 202,
    COCO_ERROR_FW_BUSY = 203,
    COCO_ERROR_FW_NOT_READY = 204,
    COCO_ERROR_FW_EXISTS = 205,
    COCO_ERROR_FW_INVALID = 206,
    COCO_ERROR_FW_BUFFER = 207,
    COCO_ERROR_FW_FATAL = 208,
    COCO_ERROR_FW_POLICY = 209,
    COCO_ERROR_FW_KEY = 210,

    /* 300..399: transfer engine (src/transfer) */
    COCO_ERROR_TRANSFER_IO = 300,
    COCO_ERROR_TRANSFER_PROTOCOL = 301,

    /* 400..499: VFIO (src/vfio) */
    COCO_ERROR_VFIO_KERNEL = 400,
    COCO_ERROR_VFIO_RANGE = 401,
    COCO_ERROR_VFIO_LEAK = 402,
    COCO_ERROR_VFIO_CAPS = 403,
    COCO_ERROR_VFIO_UNSAFE = 404,

    /* 500..599: migration phases (src/migration) */
    COCO_ERROR_MIGRATION_PHASE = 500,
    COCO_ERROR_MIGRATION_ABORTED = 501,
    COCO_ERROR_MIGRATION_SOURCE_FROZEN = 502,
    COCO_ERROR_MIGRATION_UNSEALED = 503,

    /* 600..699: daemon and D-Bus (src/daemon) */
    COCO_ERROR_ACCESS_DENIED = 600,
    COCO_ERROR_AGENT_PROTOCOL = 601,
    COCO_ERROR_PEER_AUTH = 602,
    COCO_ERROR_AGENT_LIMIT = 603,
    COCO_ERROR_PEER_TIMEOUT = 604,

    /* 700..799: QMP relay (src/qmp) */
    COCO_ERROR_QMP_PROTOCOL = 700,
    COCO_ERROR_QMP_AGENT = 701,

    COCO_ERROR_LAST /* not an error; keep last */
} CocoErrorCode;

/**
 * cocoErrorQuark:
 *
 * Returns: the #GQuark of the %COCO_ERROR domain. (Since: 0.1.0)
 */
GQuark cocoErrorQuark(void);

/**
 * cocoErrorCodeToString:
 * @code: a #CocoErrorCode
 *
 * Returns: the stable nick of @code (e.g. "xml-missing"), used in JSON
 * output and D-Bus error names, or %NULL for an unknown code. (Since: 0.1.0)
 */
const char *cocoErrorCodeToString(int code);

/**
 * cocoErrorCodeFromString:
 * @nick: a nick as returned by cocoErrorCodeToString()
 *
 * Returns: the code whose nick is @nick, or -1. (Since: 0.1.0)
 */
int cocoErrorCodeFromString(const char *nick);

/**
 * cocoErrorGetLibvirtCode:
 * @error: a #GError of code %COCO_ERROR_LIBVIRT
 *
 * Errors mapped from libvirt keep libvirt's own virErrorNumber and
 * virErrorDomain. They are stored with the error and read back here.
 *
 * Returns: libvirt's virErrorNumber for @error, or 0 when @error did not
 * come from libvirt. (Since: 0.1.0)
 */
int cocoErrorGetLibvirtCode(const GError *error);

/**
 * cocoErrorGetLibvirtDomain:
 * @error: a #GError of code %COCO_ERROR_LIBVIRT
 *
 * Returns: libvirt's virErrorDomain for @error, or 0. (Since: 0.1.0)
 */
int cocoErrorGetLibvirtDomain(const GError *error);

G_END_DECLS
