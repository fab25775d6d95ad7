/*
 * cocoemu.c: the "emulated" firmware backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A software migration firmware that follows the TDX module's rules as
 * summarised in research/coco.md §2: per-VM operation states, per-page
 * export states, epochs and tokens, per-stream counters, AES-256-GCM
 * bundles, an agent key exchange in PREPARE, and the abort-token rule that
 * keeps source and destination from ever both running.
 */

#include "firmware/cocoemu.h"
#include "firmware/cococrypto.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"
#include "util/cocopagehash.h"
#include "util/cocowritelog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <gnutls/gnutls.h>

#ifndef MADV_POPULATE_WRITE
# define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

COCO_ENUM_IMPL(cocoEmuOpState, COCO_EMU_OP_LAST, "uninit", "init", "runnable",
               "live-export", "paused-export", "post-export", "memory-import",
               "state-import", "post-import", "live-import", "failed-import",
               "teardown");

/* Per-page state; the source uses MAPPED, EXPORTED, EXPORTED_DIRTY and
 * ABSENT, the destination MAPPED and IMPORTED. */
enum {
    COCO_EMU_PAGE_MAPPED = 0, /* never exported / never imported */
    COCO_EMU_PAGE_EXPORTED, /* exported, clean */
    COCO_EMU_PAGE_EXPORTED_DIRTY, /* exported, then written */
    COCO_EMU_PAGE_IMPORTED,
    /* Not in the secure EPT: the guest never touched it (a hole in the
     * RAM file). Never read, never exported; a touch makes it MAPPED. */
    COCO_EMU_PAGE_ABSENT,
};
#define COCO_EMU_PAGE_MARK 0x80 /* transient: seen in the current call */

/* Per-page flags (pflags), beside the state. */
#define COCO_EMU_FLAG_VERIFIED 0x01 /* source: checked since the blackout */
#define COCO_EMU_FLAG_RESERVED 0x02 /* destination: backing reserved */
#define COCO_EMU_FLAG_LOGGED 0x04 /* source: VERIFIED by the write log */
/* source: exported straight from guest memory while the write log held,
 * without a hash: only the log can tell whether it changed since */
#define COCO_EMU_FLAG_UNHASHED 0x08
/* cocoEmuGroupUnwritten() sets flags eight at a time by multiplying. */
G_STATIC_ASSERT(COCO_EMU_FLAG_VERIFIED == 0x01);

/* Pages one dirty-log step handles between two takes of the VM lock. */
#define COCO_EMU_SCAN_CHUNK 512
/* Absent pages in a row the write log's page-table walk skips: fewer cost
 * less to walk than a separate walk of the pages after them. */
#define COCO_EMU_LOG_GAP 1024
/* statfs(2)'s f_type of hugetlbfs (linux/magic.h), whose files take no
 * write(2). */
#define COCO_HUGETLBFS_MAGIC 0x958458f6UL

/* The IV's stream field for the backward (abort token) stream. */
#define COCO_EMU_BACKWARD_STREAM 0xFFFF

#define COCO_EMU_GFN_ENTRY 8
#define COCO_EMU_MAC_ENTRY 16

/* A VM identity (CocoFirmwareVm): its UUID, then the digest of its
 * immutable configuration (cocoEmuVmIdentity()). */
#define COCO_EMU_VM_ID_LEN (COCO_FIRMWARE_UUID_LEN + COCO_CRYPTO_SHA256_LEN)

/* PREPARE messages (docs/firmware-emulated.rst, "Keys and PREPARE"). */
#define COCO_EMU_PREP_MAGIC "CEMP"
#define COCO_EMU_PREP_VERSION 2
#define COCO_EMU_PREP_HELLO_INIT 1
#define COCO_EMU_PREP_HELLO_RESP 2
#define COCO_EMU_PREP_CONFIRM 3
#define COCO_EMU_PREP_HDR 8
#define COCO_EMU_PREP_LABEL 32 /* context label of a signature, NUL padded */
/* The binding every message carries: the VM the sender serves, then the
 * VM the session is for (the same guest on both ends of a migration). */
#define COCO_EMU_PREP_BINDING_LEN (2 * COCO_EMU_VM_ID_LEN)
/* The hello's binding, after header, identity key, ephemeral key, nonce,
 * SVNs and agent hash. */
#define COCO_EMU_PREP_HELLO_BINDING                                            \
 (COCO_EMU_PREP_HDR + 3 * 32 + 2 * COCO_TCB_COMPONENT_LAST +                   \
  COCO_AGENT_HASH_LEN)
#define COCO_EMU_PREP_HELLO_LEN                                                \
 (COCO_EMU_PREP_HELLO_BINDING + COCO_EMU_PREP_BINDING_LEN)
#define COCO_EMU_PREP_RESP_LEN                                                 \
 (COCO_EMU_PREP_HELLO_LEN + COCO_CRYPTO_ED25519_SIG_LEN)
#define COCO_EMU_PREP_CONFIRM_LEN                                              \
 (COCO_EMU_PREP_HDR + COCO_EMU_PREP_BINDING_LEN + COCO_CRYPTO_ED25519_SIG_LEN)
/* What the initiator signs: label, M1, M2 and its confirmation's binding. */
#define COCO_EMU_PREP_TBS_MAX                                                  \
 (COCO_EMU_PREP_LABEL + COCO_EMU_PREP_HELLO_LEN + COCO_EMU_PREP_RESP_LEN +     \
  COCO_EMU_PREP_BINDING_LEN)
G_STATIC_ASSERT(COCO_EMU_PREP_RESP_LEN <= COCO_EMU_PREPARE_MSG_MAX);

typedef enum {
    COCO_EMU_HS_IDLE = 0,
    COCO_EMU_HS_SENT_HELLO, /* initiator: waiting for the response */
    COCO_EMU_HS_SENT_RESP, /* responder: waiting for the confirmation */
} CocoEmuHandshake;

/* A peer's hello, parsed. */
typedef struct {
    uint8_t identity[COCO_CRYPTO_ED25519_KEY_LEN];
    uint8_t eph[COCO_CRYPTO_X25519_LEN];
    unsigned int svn[COCO_TCB_COMPONENT_LAST];
    uint8_t agent_hash[COCO_AGENT_HASH_LEN];
    const uint8_t *binding; /* COCO_EMU_PREP_BINDING_LEN bytes in the hello */
} CocoEmuHello;

/* Per forward stream: what one in-flight memory call uses outside the
 * VM lock. */
typedef struct {
    bool busy; /* a memory call on this stream is in flight */
    CocoCryptoKey enc; /* own handles on the session keys */
    CocoCryptoKey dec;
    uint8_t *page; /* export: the private page snapshot */
    uint64_t *hashes; /* export: the snapshots' hashes */
    uint8_t *bounce; /* import: decrypted pages (bounce_pages of them) */
    uint32_t bounce_pages;
} CocoEmuStream;

typedef struct {
    GMutex lock;
    GCond cond; /* inflight, quiescing, stream busy or page MARK changed */
    unsigned int inflight; /* memory calls between steps 1 and 3 */
    unsigned int quiescing; /* calls waiting for inflight == 0 */
    CocoEmuPlatform *pf;

    /* the VM this firmware serves (CocoFirmwareVm): UUID and configuration
     * digest, to which every session is bound */
    uint8_t vm_id[COCO_EMU_VM_ID_LEN];
    uint64_t vm_memory;

    /* policy, copied from the CocoMigrationDef */
    bool has_agent;
    uint8_t agent_hash[COCO_AGENT_HASH_LEN];
    bool has_agent_min_svn;
    unsigned int agent_min_svn;
    uint8_t (*allowed)[COCO_PLATFORM_ID_LEN];
    size_t nallowed;
    CocoMinTcb *min_tcbs;
    size_t nmin_tcbs;

    CocoEmuOpState op;
    char *failed_why; /* FAILED_IMPORT: the import failure that caused it */
    CocoFirmwareRole role;
    unsigned int nvcpus;
    unsigned int nstreams; /* forward streams */

    /* guest memory and per-page state */
    uint8_t *mem;
    size_t memsize;
    bool mem_mapped; /* we mmap'ed it */
    int fd; /* the RAM file (a dup), -1 for a caller's region */
    uint64_t fd_offset;
    bool fd_nowrite; /* the file takes no pwrite() at an offset (hugetlbfs,
                        O_APPEND): imports write through the mapping */
    char *path; /* the RAM file's name, for messages */
    uint64_t npages;
    uint8_t *pstate;
    uint8_t *pflags;
    uint32_t *pepoch;
    /* cocoPageHash() of each page's exported copy under hash_key, a random
     * key drawn at SETUP (see docs/firmware-emulated.rst) */
    uint64_t *phash;
    uint64_t hash_key;
    uint64_t dirty_count;
    /* Source: the VMM's writes to the RAM file (cocowritelog.h), the
     * emulation's TDX write blocking: the dirty log reads it instead of
     * hashing every exported page, and exports seal straight from guest
     * memory without a hash (COCO_EMU_FLAG_UNHASHED). wlog_lost (set once,
     * under the lock): why it was dropped; such pages then become dirty
     * and the dirty log hashes, which is sound at any point since the
     * other hashes are those of the exported copies. */
    CocoWriteLog *wlog;
    char *wlog_lost;

    /* private state */
    uint8_t **vcpu_state;
    size_t *vcpu_len;
    bool *vcpu_done; /* exported (source) / imported (destination) */
    unsigned int nvcpus_done;
    bool *vcpu_in;
    unsigned int nvcpus_in;
    uint8_t td_state[COCO_EMU_TD_STATE_LEN];
    bool has_td_state;

    /* keys: installed by PREPARE, latched at SETUP */
    CocoCryptoKey mig_enc;
    CocoCryptoKey mig_dec;
    bool key_set;
    CocoCryptoKey enc;
    CocoCryptoKey dec;

    /* PREPARE handshake */
    CocoEmuHandshake hs;
    uint8_t hs_priv[COCO_CRYPTO_X25519_LEN];
    uint8_t hs_hello[COCO_EMU_PREP_HELLO_LEN]; /* initiator's hello */
    uint8_t hs_resp[COCO_EMU_PREP_RESP_LEN]; /* responder's hello+sig */

    /* session */
    uint32_t epoch;
    uint64_t total; /* bundles emitted (source) / received (destination) */
    uint32_t *counter;
    uint64_t *iv; /* per forward stream, never reset */
    uint64_t iv_backward;
    CocoEmuStream *streams; /* nstreams */
} CocoEmu;

static const CocoFirmwareDriver cocoEmuDriver;

static CocoEmu *
cocoEmuGet(CocoFirmware *fw)
{
    g_assert(fw->driver == &cocoEmuDriver);
    return fw->priv;
}

/* ---- in-flight memory calls ----------------------------------------- */

/* Lock held: wait until no memory call is between its reservation and its
 * commit; memory calls do not start meanwhile. */
static void
cocoEmuQuiesce(CocoEmu *emu)
{
    emu->quiescing++;
    while (emu->inflight)
        g_cond_wait(&emu->cond, &emu->lock);
    emu->quiescing--;
    g_cond_broadcast(&emu->cond);
}

/* Lock held: drop the working keys and every stream's handles on them,
 * once no call uses them outside the lock. */
static void
cocoEmuKeysClear(CocoEmu *emu)
{
    unsigned int i;

    cocoEmuQuiesce(emu);
    cocoCryptoKeyClear(&emu->enc);
    cocoCryptoKeyClear(&emu->dec);
    for (i = 0; i < emu->nstreams; i++) {
        cocoCryptoKeyClear(&emu->streams[i].enc);
        cocoCryptoKeyClear(&emu->streams[i].dec);
    }
}

/* ---- errors ---------------------------------------------------------- */

typedef enum {
    COCO_EMU_FAIL_PLAIN = 0,
    COCO_EMU_FAIL_IMPORT, /* an import failed: fatal, or ends live import */
} CocoEmuFailMode;

static int cocoEmuFailV(CocoEmu *emu, CocoFirmwareStatus *status,
                        CocoEmuFailMode mode, int err, CocoEmuStatusClass cls,
                        GError **error, const char *fmt, va_list ap)
    G_GNUC_PRINTF(7, 0);

static int
cocoEmuFailV(CocoEmu *emu, CocoFirmwareStatus *status, CocoEmuFailMode mode,
             int err, CocoEmuStatusClass cls, GError **error, const char *fmt,
             va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    CocoErrorCode code = cocoFirmwareErrnoToCode(err);
    uint64_t fw_status = COCO_EMU_STATUS(cls);

    if (cls == COCO_EMU_ST_BUFFER_TOO_SMALL)
        code = COCO_ERROR_FW_BUFFER;

    if (mode == COCO_EMU_FAIL_IMPORT && emu->op == COCO_EMU_OP_LIVE_IMPORT) {
        /* After commit an import error only ends the session. */
        emu->op = COCO_EMU_OP_RUNNABLE;
        cocoEmuKeysClear(emu);
        cocoErrorSet(error, code,
                     _("the import session ended, the VM keeps running: %1$s"),
                     msg);
    } else if (mode == COCO_EMU_FAIL_IMPORT) {
        emu->op = COCO_EMU_OP_FAILED_IMPORT;
        g_free(emu->failed_why);
        emu->failed_why = g_strdup(msg);
        fw_status |= COCO_EMU_STATUS_FATAL;
        cocoErrorSet(
            error, code,
            _("the destination VM failed for good and can only be torn down: %1$s"),
            msg);
    } else {
        cocoErrorSet(error, code, "%s", msg);
    }
    if (status) {
        status->err = err;
        status->fw_status = fw_status;
    }
    return err;
}

static int cocoEmuFail(CocoEmu *emu, CocoFirmwareStatus *status, int err,
                       CocoEmuStatusClass cls, GError **error, const char *fmt,
                       ...) G_GNUC_PRINTF(6, 7);

static int
cocoEmuFail(CocoEmu *emu, CocoFirmwareStatus *status, int err,
            CocoEmuStatusClass cls, GError **error, const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = cocoEmuFailV(emu, status, COCO_EMU_FAIL_PLAIN, err, cls, error, fmt,
                       ap);
    va_end(ap);
    return ret;
}

static int cocoEmuImportFail(CocoEmu *emu, CocoFirmwareStatus *status, int err,
                             CocoEmuStatusClass cls, GError **error,
                             const char *fmt, ...) G_GNUC_PRINTF(6, 7);

static int
cocoEmuImportFail(CocoEmu *emu, CocoFirmwareStatus *status, int err,
                  CocoEmuStatusClass cls, GError **error, const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = cocoEmuFailV(emu, status, COCO_EMU_FAIL_IMPORT, err, cls, error, fmt,
                       ap);
    va_end(ap);
    return ret;
}

static int
cocoEmuStateFail(CocoEmu *emu, CocoFirmwareStatus *status, const char *what,
                 GError **error)
{
    /* Another stream's next call after an import failure: it names that
     * failure too, whichever of the two reaches the session first. */
    if (emu->op == COCO_EMU_OP_FAILED_IMPORT && emu->failed_why)
        return cocoEmuFail(
            emu, status, -EIO, COCO_EMU_ST_IMPORT_FAILED, error,
            _("'%1$s' refused: the destination VM failed for good and can only be torn down: %2$s"),
            what, emu->failed_why);
    if (emu->op == COCO_EMU_OP_FAILED_IMPORT)
        return cocoEmuFail(
            emu, status, -EIO, COCO_EMU_ST_IMPORT_FAILED, error,
            _("'%1$s' refused: the destination VM failed for good and can only be torn down"),
            what);
    return cocoEmuFail(emu, status, -EPERM, COCO_EMU_ST_OP_STATE_INCORRECT,
                       error,
                       _("'%1$s' is not allowed in firmware state '%2$s'"),
                       what, cocoEmuOpStateTypeToString(emu->op));
}

static int
cocoEmuShortBuffer(CocoEmu *emu, CocoFirmwareStatus *status, const char *what,
                   size_t have, size_t needed, GError **error)
{
    if (status)
        status->needed = needed;
    return cocoEmuFail(
        emu, status, -ENOBUFS, COCO_EMU_ST_BUFFER_TOO_SMALL, error,
        _("buffer for '%1$s' too small: %2$zu bytes, %3$zu needed"), what, have,
        needed);
}

static bool
cocoEmuIn(CocoEmuOpState op, int n, ...)
{
    va_list ap;
    bool found = false;

    va_start(ap, n);
    while (n-- > 0) {
        if ((CocoEmuOpState)va_arg(ap, int) == op)
            found = true;
    }
    va_end(ap);
    return found;
}

/* ---- bundle header --------------------------------------------------- */

static void
cocoEmuHeaderPack(const CocoEmuBundleHeader *h, uint8_t *out)
{
    CocoEmuBundleHeader le = *h;

    le.size = GUINT32_TO_LE(h->size);
    le.version = GUINT16_TO_LE(h->version);
    le.stream = GUINT16_TO_LE(h->stream);
    le.counter = GUINT32_TO_LE(h->counter);
    le.epoch = GUINT32_TO_LE(h->epoch);
    le.reserved1 = GUINT32_TO_LE(h->reserved1);
    le.iv_counter = GUINT64_TO_LE(h->iv_counter);
    le.specific = GUINT64_TO_LE(h->specific);
    memcpy(out, &le, sizeof(le));
}

static void
cocoEmuHeaderUnpack(const uint8_t *in, CocoEmuBundleHeader *h)
{
    memcpy(h, in, sizeof(*h));
    h->size = GUINT32_FROM_LE(h->size);
    h->version = GUINT16_FROM_LE(h->version);
    h->stream = GUINT16_FROM_LE(h->stream);
    h->counter = GUINT32_FROM_LE(h->counter);
    h->epoch = GUINT32_FROM_LE(h->epoch);
    h->reserved1 = GUINT32_FROM_LE(h->reserved1);
    h->iv_counter = GUINT64_FROM_LE(h->iv_counter);
    h->specific = GUINT64_FROM_LE(h->specific);
}

static bool
cocoEmuHeaderReservedZero(const CocoEmuBundleHeader *h)
{
    return h->reserved0[0] == 0 && h->reserved0[1] == 0 &&
           h->reserved0[2] == 0 && h->reserved1 == 0;
}

static void
cocoEmuIv(uint64_t counter, uint16_t stream, uint16_t sub, uint8_t *iv)
{
    uint64_t c = GUINT64_TO_LE(counter);
    uint16_t s = GUINT16_TO_LE(stream);
    uint16_t u = GUINT16_TO_LE(sub);

    memcpy(iv, &c, 8);
    memcpy(iv + 8, &s, 2);
    memcpy(iv + 10, &u, 2);
}

/* The bytes the header MAC covers: stream, IV counter and MAC zeroed. */
static void
cocoEmuHeaderAad(const CocoEmuBundleHeader *h, uint8_t *aad)
{
    CocoEmuBundleHeader z = *h;

    z.stream = 0;
    z.iv_counter = 0;
    memset(z.mac, 0, sizeof(z.mac));
    cocoEmuHeaderPack(&z, aad);
}

/* Compute h->mac (with h->key_id filled in) and pack the header. */
static int
cocoEmuHeaderSeal(CocoCryptoKey *key, CocoEmuBundleHeader *h,
                  uint16_t iv_stream, const void *extra, size_t extralen,
                  uint8_t *out)
{
    uint8_t aad[COCO_EMU_HEADER_SIZE];
    uint8_t iv[COCO_CRYPTO_IV_LEN];

    memcpy(h->key_id, key->id, sizeof(h->key_id));
    cocoEmuHeaderAad(h, aad);
    cocoEmuIv(h->iv_counter, iv_stream, 0, iv);
    if (cocoCryptoSeal(key, iv, aad, sizeof(aad), extra, extralen, NULL, 0,
                       h->mac) < 0)
        return -1;
    cocoEmuHeaderPack(h, out);
    return 0;
}

static bool
cocoEmuHeaderMacOk(CocoCryptoKey *key, const CocoEmuBundleHeader *h,
                   uint16_t iv_stream, const void *extra, size_t extralen)
{
    uint8_t aad[COCO_EMU_HEADER_SIZE];
    uint8_t iv[COCO_CRYPTO_IV_LEN];

    cocoEmuHeaderAad(h, aad);
    cocoEmuIv(h->iv_counter, iv_stream, 0, iv);
    return cocoCryptoOpen(key, iv, aad, sizeof(aad), extra, extralen, NULL, 0,
                          h->mac) == 0;
}

size_t
cocoEmuMemoryBundleSize(uint32_t ngfns)
{
    return COCO_EMU_HEADER_SIZE +
           (size_t)ngfns *
               (COCO_EMU_GFN_ENTRY + COCO_EMU_MAC_ENTRY + COCO_EMU_PAGE_SIZE);
}

/* Common checks of a received bundle's header: format, then key, then MAC.
 * @extra is what the MAC covers after the header. */
static int
cocoEmuCheckHeader(CocoEmu *emu, CocoFirmwareStatus *status, CocoCryptoKey *key,
                   uint16_t iv_stream, const CocoEmuBundleHeader *h,
                   size_t buflen, CocoEmuBundleType type, const void *extra,
                   size_t extralen, bool import, GError **error)
{
    int (*fail)(CocoEmu *, CocoFirmwareStatus *, int, CocoEmuStatusClass,
                GError **, const char *, ...) =
        import ? cocoEmuImportFail : cocoEmuFail;

    if (h->size != buflen || h->version != COCO_EMU_BUNDLE_VERSION ||
        h->type != type || !cocoEmuHeaderReservedZero(h))
        return fail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD, error,
            _("malformed bundle header: size %1$u of %2$zu bytes, version %3$u, type %4$u (expected %5$u), or reserved bits set"),
            h->size, buflen, h->version, h->type, type);
    if (!cocoCryptoEqual(h->key_id, key->id, sizeof(h->key_id)))
        return fail(
            emu, status, -EKEYREJECTED, COCO_EMU_ST_KEY_MISMATCH, error,
            _("bundle of type %1$u was sealed with another key than this session's"),
            h->type);
    if (!cocoEmuHeaderMacOk(key, h, iv_stream, extra, extralen))
        return fail(
            emu, status, -EBADMSG, COCO_EMU_ST_INCORRECT_MBMD_MAC, error,
            _("bundle header MAC of type %1$u on stream %2$u does not verify (tampered)"),
            h->type, h->stream);
    return 0;
}

/* In-order sequence check of a forward-stream bundle on the destination. */
static int
cocoEmuCheckSequence(CocoEmu *emu, CocoFirmwareStatus *status,
                     const CocoEmuBundleHeader *h, GError **error)
{
    uint32_t expected = emu->counter[h->stream];

    if (h->epoch != emu->epoch)
        return cocoEmuImportFail(
            emu, status, -EPROTO, COCO_EMU_ST_EPOCH_MISMATCH, error,
            _("bundle of epoch %1$u arrived in epoch %2$u (reordered across an epoch token)"),
            h->epoch, emu->epoch);
    if (h->counter < expected)
        return cocoEmuImportFail(
            emu, status, -EPROTO, COCO_EMU_ST_BUNDLE_REPLAYED, error,
            _("bundle %1$u on stream %2$u was already received (replay); expected %3$u"),
            h->counter, h->stream, expected);
    if (h->counter > expected)
        return cocoEmuImportFail(
            emu, status, -EPROTO, COCO_EMU_ST_BUNDLE_MISSING, error,
            _("bundle %1$u on stream %2$u arrived but %3$u is missing (dropped or reordered)"),
            h->counter, h->stream, expected);
    return 0;
}

/* ---- PREPARE: the emulated agent key exchange ------------------------ */

static void
cocoEmuHandshakeReset(CocoEmu *emu)
{
    emu->hs = COCO_EMU_HS_IDLE;
    gnutls_memset(emu->hs_priv, 0, sizeof(emu->hs_priv));
    memset(emu->hs_hello, 0, sizeof(emu->hs_hello));
    memset(emu->hs_resp, 0, sizeof(emu->hs_resp));
}

static void
cocoEmuPrepHeader(uint8_t *out, uint8_t type)
{
    memcpy(out, COCO_EMU_PREP_MAGIC, 4);
    out[4] = COCO_EMU_PREP_VERSION;
    out[5] = type;
    out[6] = 0;
    out[7] = 0;
}

static bool
cocoEmuPrepHeaderOk(const uint8_t *in, size_t len, size_t want, uint8_t type)
{
    return len == want && memcmp(in, COCO_EMU_PREP_MAGIC, 4) == 0 &&
           in[4] == COCO_EMU_PREP_VERSION && in[5] == type && in[6] == 0 &&
           in[7] == 0;
}

/* The binding this VM's messages carry: it speaks for its own VM, and the
 * session is for the same guest (a migration keeps the UUID and the
 * configuration), so both identities are this VM's. */
static void
cocoEmuBindingBuild(CocoEmu *emu, uint8_t *out)
{
    memcpy(out, emu->vm_id, COCO_EMU_VM_ID_LEN);
    memcpy(out + COCO_EMU_VM_ID_LEN, emu->vm_id, COCO_EMU_VM_ID_LEN);
}

/* Write our hello (with a fresh ephemeral key) into @out. */
static int
cocoEmuHelloBuild(CocoEmu *emu, uint8_t type, uint8_t *out, GError **error)
{
    uint8_t *p = out;
    size_t i;

    cocoEmuPrepHeader(p, type);
    p += COCO_EMU_PREP_HDR;
    memcpy(p, cocoEmuPlatformGetPublicKey(emu->pf), 32);
    p += 32;
    if (cocoCryptoX25519Generate(emu->hs_priv, p, error) < 0)
        return -1;
    p += 32;
    if (cocoCryptoRandom(p, 32, error) < 0) /* nonce */
        return -1;
    p += 32;
    for (i = 0; i < COCO_TCB_COMPONENT_LAST; i++) {
        uint16_t v = GUINT16_TO_LE(cocoEmuPlatformGetSvn(emu->pf, i));

        memcpy(p, &v, 2);
        p += 2;
    }
    memcpy(p, cocoEmuPlatformGetAgentHash(emu->pf), COCO_AGENT_HASH_LEN);
    cocoEmuBindingBuild(emu, out + COCO_EMU_PREP_HELLO_BINDING);
    return 0;
}

static void
cocoEmuHelloParse(const uint8_t *in, CocoEmuHello *h)
{
    const uint8_t *p = in + COCO_EMU_PREP_HDR;
    size_t i;

    memcpy(h->identity, p, 32);
    memcpy(h->eph, p + 32, 32);
    p += 96;
    for (i = 0; i < COCO_TCB_COMPONENT_LAST; i++) {
        uint16_t v;

        memcpy(&v, p, 2);
        h->svn[i] = GUINT16_FROM_LE(v);
        p += 2;
    }
    memcpy(h->agent_hash, p, COCO_AGENT_HASH_LEN);
    h->binding = in + COCO_EMU_PREP_HELLO_BINDING;
}

static char *
cocoEmuHex(const uint8_t *data, size_t len)
{
    char *s = g_malloc0(len * 2 + 1);
    size_t i;

    for (i = 0; i < len; i++)
        g_snprintf(s + 2 * i, 3, "%02x", data[i]);
    return s;
}

/* The peer's message must be for this VM: the VM the session is for and
 * the VM the peer serves are both this guest, same UUID and configuration.
 * Checked before anything else of the message, so that a session spliced
 * between two migrations is named as such. */
static int
cocoEmuBindingCheck(CocoEmu *emu, CocoFirmwareStatus *status,
                    const uint8_t *binding, GError **error)
{
    const uint8_t *target = binding + COCO_EMU_VM_ID_LEN;
    const uint8_t *sender = binding;
    char own[COCO_FIRMWARE_UUID_STRLEN];
    char peer[COCO_FIRMWARE_UUID_STRLEN];
    g_autofree char *owncfg = NULL;
    g_autofree char *peercfg = NULL;

    cocoFirmwareVmFormatUuid(emu->vm_id, own);
    if (!cocoCryptoEqual(target, emu->vm_id, COCO_FIRMWARE_UUID_LEN)) {
        cocoFirmwareVmFormatUuid(target, peer);
        return cocoEmuFail(
            emu, status, -EACCES, COCO_EMU_ST_VM_MISMATCH, error,
            _("the peer's migration session is for guest '%1$s', not this guest '%2$s'"),
            peer, own);
    }
    if (!cocoCryptoEqual(sender, emu->vm_id, COCO_FIRMWARE_UUID_LEN)) {
        cocoFirmwareVmFormatUuid(sender, peer);
        return cocoEmuFail(
            emu, status, -EACCES, COCO_EMU_ST_VM_MISMATCH, error,
            _("the peer's migration session comes from guest '%1$s', not from this guest '%2$s'"),
            peer, own);
    }
    if (cocoCryptoEqual(target, emu->vm_id, COCO_EMU_VM_ID_LEN) &&
        cocoCryptoEqual(sender, emu->vm_id, COCO_EMU_VM_ID_LEN))
        return 0;
    if (cocoCryptoEqual(target, emu->vm_id, COCO_EMU_VM_ID_LEN))
        target = sender;
    owncfg =
        cocoEmuHex(emu->vm_id + COCO_FIRMWARE_UUID_LEN, COCO_CRYPTO_SHA256_LEN);
    peercfg =
        cocoEmuHex(target + COCO_FIRMWARE_UUID_LEN, COCO_CRYPTO_SHA256_LEN);
    return cocoEmuFail(
        emu, status, -EACCES, COCO_EMU_ST_VM_MISMATCH, error,
        _("the peer's guest '%1$s' has configuration '%2$s', this one '%3$s': the vCPU count, memory size or technology differ"),
        own, peercfg, owncfg);
}

/* This platform must run the agent the VM is bound to. */
static int
cocoEmuCheckLocalAgent(CocoEmu *emu, CocoFirmwareStatus *status, GError **error)
{
    g_autofree char *hex = NULL;

    if (!emu->has_agent || memcmp(cocoEmuPlatformGetAgentHash(emu->pf),
                                  emu->agent_hash, COCO_AGENT_HASH_LEN) == 0)
        return 0;
    hex = cocoEmuHex(cocoEmuPlatformGetAgentHash(emu->pf), COCO_AGENT_HASH_LEN);
    return cocoEmuFail(
        emu, status, -EACCES, COCO_EMU_ST_POLICY_REFUSED, error,
        _("this platform runs migration agent '%1$s', not the agent the VM is bound to"),
        hex);
}

int
cocoEmuCheckDestination(const uint8_t (*allowed)[COCO_PLATFORM_ID_LEN],
                        size_t nallowed, const CocoMinTcb *min_tcbs,
                        size_t nmin_tcbs, const uint8_t *id,
                        const unsigned int *svn, GError **error)
{
    g_autofree char *idhex = cocoEmuHex(id, COCO_PLATFORM_ID_LEN);
    size_t i;

    if (nallowed > 0) {
        bool found = false;

        for (i = 0; i < nallowed; i++) {
            if (memcmp(allowed[i], id, COCO_PLATFORM_ID_LEN) == 0)
                found = true;
        }
        if (!found)
            return cocoErrorSet(
                error, COCO_ERROR_FW_POLICY,
                _("destination platform '%1$s' is not in the VM's list of allowed destinations"),
                idhex);
    }
    for (i = 0; i < nmin_tcbs; i++) {
        unsigned int c = min_tcbs[i].component;

        if (c < COCO_TCB_COMPONENT_LAST && svn[c] < min_tcbs[i].svn)
            return cocoErrorSet(
                error, COCO_ERROR_FW_POLICY,
                _("destination platform '%1$s' has TCB component %2$u at SVN %3$u, below the minimum %4$u"),
                idhex, c, svn[c], min_tcbs[i].svn);
    }
    return 0;
}

/* The peer against the VM's policy. The destination list and minimum TCBs
 * apply to a destination peer; the agent rules to both. */
static int
cocoEmuCheckPeer(CocoEmu *emu, CocoFirmwareStatus *status,
                 const CocoEmuHello *peer, bool peer_is_destination,
                 GError **error)
{
    uint8_t id[COCO_PLATFORM_ID_LEN];
    g_autofree char *idhex = NULL;
    g_autoptr(GError) policy = NULL;

    if (cocoCryptoSha256(peer->identity, sizeof(peer->identity), id) < 0)
        return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                           error, _("cannot hash the peer's identity key"));
    idhex = cocoEmuHex(id, sizeof(id));

    if (emu->has_agent &&
        memcmp(peer->agent_hash, emu->agent_hash, COCO_AGENT_HASH_LEN) != 0) {
        g_autofree char *hex =
            cocoEmuHex(peer->agent_hash, COCO_AGENT_HASH_LEN);

        return cocoEmuFail(
            emu, status, -EACCES, COCO_EMU_ST_POLICY_REFUSED, error,
            _("peer platform '%1$s' runs migration agent '%2$s', not the agent the VM is bound to"),
            idhex, hex);
    }
    if (emu->has_agent_min_svn &&
        peer->svn[COCO_TCB_COMPONENT_AGENT] < emu->agent_min_svn)
        return cocoEmuFail(
            emu, status, -EACCES, COCO_EMU_ST_POLICY_REFUSED, error,
            _("peer platform '%1$s' runs agent SVN %2$u, below the minimum %3$u"),
            idhex, peer->svn[COCO_TCB_COMPONENT_AGENT], emu->agent_min_svn);
    if (!peer_is_destination)
        return 0;

    if (cocoEmuCheckDestination(
            (const uint8_t(*)[COCO_PLATFORM_ID_LEN])emu->allowed, emu->nallowed,
            emu->min_tcbs, emu->nmin_tcbs, id, peer->svn, &policy) < 0)
        return cocoEmuFail(emu, status, -EACCES, COCO_EMU_ST_POLICY_REFUSED,
                           error, "%s", policy->message);
    return 0;
}

/* One session key: HKDF-SHA-256(salt = @sid, ikm = @shared, info = @label
 * (COCO_EMU_PREP_LABEL bytes, NUL padded) || the rest of @info). */
static int
cocoEmuDeriveKey(const uint8_t *sid, const uint8_t *shared, uint8_t *info,
                 size_t infolen, const char *label, uint8_t *out)
{
    memset(info, 0, COCO_EMU_PREP_LABEL);
    g_strlcpy((char *)info, label, COCO_EMU_PREP_LABEL);
    return cocoCryptoHkdf(sid, COCO_CRYPTO_SHA256_LEN, shared,
                          COCO_CRYPTO_X25519_LEN, info, infolen, out,
                          COCO_CRYPTO_KEY_LEN);
}

/* Derive both session keys and install them crosswise: the initiator
 * encrypts with the forward key, the responder decrypts with it; the
 * backward key the other way round. The session id is the SHA-256 of the
 * transcript (both hellos, so both nonces, ephemeral keys and bindings,
 * and the responder's signature); each key is HKDF-SHA-256(salt = session
 * id, ikm = X25519 secret, info = label || source VM || destination VM ||
 * session id). Each side fills in the VMs from what it knows itself, not
 * from the peer's messages: the source is its VM and the destination the
 * VM it named; the destination is its VM and the source the VM it agreed
 * to import (both this VM). So two ends serving different guests never
 * derive the same keys, even if the binding checks were bypassed. */
static int
cocoEmuHandshakeKeys(CocoEmu *emu, const uint8_t *peer_eph, bool initiator,
                     CocoFirmwareStatus *status, GError **error)
{
    uint8_t shared[COCO_CRYPTO_X25519_LEN];
    uint8_t transcript[COCO_EMU_PREP_LABEL + COCO_EMU_PREP_HELLO_LEN +
                       COCO_EMU_PREP_RESP_LEN];
    /* info: label, source VM, destination VM, session id */
    uint8_t info[COCO_EMU_PREP_LABEL + 2 * COCO_EMU_VM_ID_LEN +
                 COCO_CRYPTO_SHA256_LEN];
    uint8_t *sid = info + COCO_EMU_PREP_LABEL + 2 * COCO_EMU_VM_ID_LEN;
    uint8_t fwd[COCO_CRYPTO_KEY_LEN];
    uint8_t bwd[COCO_CRYPTO_KEY_LEN];
    uint8_t *p;
    int ret = -1;

    memset(transcript, 0, COCO_EMU_PREP_LABEL);
    g_strlcpy((char *)transcript, "coco-emu v2 session id",
              COCO_EMU_PREP_LABEL);
    p = transcript + COCO_EMU_PREP_LABEL;
    memcpy(p, emu->hs_hello, COCO_EMU_PREP_HELLO_LEN);
    memcpy(p + COCO_EMU_PREP_HELLO_LEN, emu->hs_resp, COCO_EMU_PREP_RESP_LEN);
    /* source VM, destination VM: this guest at both ends */
    p = info + COCO_EMU_PREP_LABEL;
    memcpy(p, emu->vm_id, COCO_EMU_VM_ID_LEN);
    memcpy(p + COCO_EMU_VM_ID_LEN, emu->vm_id, COCO_EMU_VM_ID_LEN);
    if (cocoCryptoX25519(emu->hs_priv, peer_eph, shared) < 0) {
        ret = cocoEmuFail(emu, status, -EBADMSG, COCO_EMU_ST_SIGNATURE_INVALID,
                          error,
                          _("the peer's ephemeral key is a low-order point"));
        goto cleanup;
    }
    if (cocoCryptoSha256(transcript, sizeof(transcript), sid) < 0 ||
        cocoEmuDeriveKey(sid, shared, info, sizeof(info),
                         "coco-emu v2 forward key", fwd) < 0 ||
        cocoEmuDeriveKey(sid, shared, info, sizeof(info),
                         "coco-emu v2 backward key", bwd) < 0) {
        ret = cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                          error, _("cannot derive the session keys"));
        goto cleanup;
    }
    if (cocoCryptoKeySet(&emu->mig_enc, initiator ? fwd : bwd, error) < 0 ||
        cocoCryptoKeySet(&emu->mig_dec, initiator ? bwd : fwd, error) < 0) {
        ret = -EINVAL;
        goto cleanup;
    }
    emu->key_set = true;
    ret = 0;

cleanup:
    gnutls_memset(shared, 0, sizeof(shared));
    gnutls_memset(fwd, 0, sizeof(fwd));
    gnutls_memset(bwd, 0, sizeof(bwd));
    cocoEmuHandshakeReset(emu);
    return ret;
}

/* What a PREPARE signature covers into @tbs (COCO_EMU_PREP_TBS_MAX
 * bytes): a label naming the signer's role, then the transcript so far
 * (@a, @b and @c; @c may be empty). Returns its length. */
static size_t
cocoEmuPrepTbs(uint8_t *tbs, const char *label, const uint8_t *a, size_t alen,
               const uint8_t *b, size_t blen, const uint8_t *c, size_t clen)
{
    memset(tbs, 0, COCO_EMU_PREP_LABEL);
    g_strlcpy((char *)tbs, label, COCO_EMU_PREP_LABEL);
    memcpy(tbs + COCO_EMU_PREP_LABEL, a, alen);
    memcpy(tbs + COCO_EMU_PREP_LABEL + alen, b, blen);
    if (clen)
        memcpy(tbs + COCO_EMU_PREP_LABEL + alen + blen, c, clen);
    return COCO_EMU_PREP_LABEL + alen + blen + clen;
}

#define COCO_EMU_PREP_SIGNED_RESPONDER "coco-emu prepare v2 responder"
#define COCO_EMU_PREP_SIGNED_INITIATOR "coco-emu prepare v2 initiator"

static int
cocoEmuPrepare(CocoEmu *emu, const uint8_t *in, size_t inlen, uint8_t *out,
               size_t *outlen, CocoFirmwareStatus *status, GError **error)
{
    bool initiator;
    /* *outlen holds the peer's message length: the reply room is fixed. */
    size_t cap = out ? COCO_EMU_PREPARE_MSG_MAX : 0;
    CocoEmuHello peer;
    uint8_t tbs[COCO_EMU_PREP_TBS_MAX];
    size_t tbslen;
    int ret;

    G_STATIC_ASSERT(COCO_EMU_PREP_LABEL + 2 * COCO_EMU_PREP_HELLO_LEN <=
                    COCO_EMU_PREP_TBS_MAX);

    *outlen = 0;
    if (cocoEmuIn(emu->op, 2, COCO_EMU_OP_RUNNABLE, COCO_EMU_OP_LIVE_IMPORT))
        initiator = true;
    else if (emu->op == COCO_EMU_OP_UNINIT)
        initiator = false;
    else
        return cocoEmuStateFail(emu, status, "prepare", error);

    if (inlen == 0) {
        /* (Re)start. The initiator speaks first. */
        cocoEmuHandshakeReset(emu);
        if ((ret = cocoEmuCheckLocalAgent(emu, status, error)) < 0)
            return ret;
        if (initiator) {
            if (cap < COCO_EMU_PREP_HELLO_LEN)
                return cocoEmuShortBuffer(emu, status, "prepare", cap,
                                          COCO_EMU_PREP_HELLO_LEN, error);
            if (cocoEmuHelloBuild(emu, COCO_EMU_PREP_HELLO_INIT, emu->hs_hello,
                                  error) < 0)
                return -EINVAL;
            memcpy(out, emu->hs_hello, COCO_EMU_PREP_HELLO_LEN);
            *outlen = COCO_EMU_PREP_HELLO_LEN;
            emu->hs = COCO_EMU_HS_SENT_HELLO;
        }
        return cocoEmuFail(
            emu, status, -EAGAIN, COCO_EMU_ST_KEY_NOT_SET, error,
            _("agent key exchange in progress: carry the message to the peer"));
    }

    if (!initiator && emu->hs == COCO_EMU_HS_IDLE &&
        cocoEmuPrepHeaderOk(in, inlen, COCO_EMU_PREP_HELLO_LEN,
                            COCO_EMU_PREP_HELLO_INIT)) {
        /* Responder: answer a hello for this VM with ours, signed over
         * both. */
        if ((ret = cocoEmuCheckLocalAgent(emu, status, error)) < 0)
            return ret;
        cocoEmuHelloParse(in, &peer);
        if ((ret = cocoEmuBindingCheck(emu, status, peer.binding, error)) < 0)
            return ret;
        if (cap < COCO_EMU_PREP_RESP_LEN)
            return cocoEmuShortBuffer(emu, status, "prepare", cap,
                                      COCO_EMU_PREP_RESP_LEN, error);
        memcpy(emu->hs_hello, in, COCO_EMU_PREP_HELLO_LEN);
        if (cocoEmuHelloBuild(emu, COCO_EMU_PREP_HELLO_RESP, emu->hs_resp,
                              error) < 0)
            return -EINVAL;
        tbslen = cocoEmuPrepTbs(tbs, COCO_EMU_PREP_SIGNED_RESPONDER,
                                emu->hs_hello, COCO_EMU_PREP_HELLO_LEN,
                                emu->hs_resp, COCO_EMU_PREP_HELLO_LEN, NULL, 0);
        if (cocoEmuPlatformSign(emu->pf, tbs, tbslen,
                                emu->hs_resp + COCO_EMU_PREP_HELLO_LEN,
                                error) < 0)
            return -EINVAL;
        memcpy(out, emu->hs_resp, COCO_EMU_PREP_RESP_LEN);
        *outlen = COCO_EMU_PREP_RESP_LEN;
        emu->hs = COCO_EMU_HS_SENT_RESP;
        return cocoEmuFail(
            emu, status, -EAGAIN, COCO_EMU_ST_KEY_NOT_SET, error,
            _("agent key exchange in progress: carry the message to the peer"));
    }

    if (initiator && emu->hs == COCO_EMU_HS_SENT_HELLO &&
        cocoEmuPrepHeaderOk(in, inlen, COCO_EMU_PREP_RESP_LEN,
                            COCO_EMU_PREP_HELLO_RESP)) {
        /* Initiator: check the responder answers for this VM and is who
         * it claims, confirm, install the keys. */
        cocoEmuHelloParse(in, &peer);
        if ((ret = cocoEmuBindingCheck(emu, status, peer.binding, error)) < 0)
            return ret;
        tbslen = cocoEmuPrepTbs(tbs, COCO_EMU_PREP_SIGNED_RESPONDER,
                                emu->hs_hello, COCO_EMU_PREP_HELLO_LEN, in,
                                COCO_EMU_PREP_HELLO_LEN, NULL, 0);
        if (cocoCryptoEd25519Verify(peer.identity, tbs, tbslen,
                                    in + COCO_EMU_PREP_HELLO_LEN) < 0)
            return cocoEmuFail(
                emu, status, -EBADMSG, COCO_EMU_ST_SIGNATURE_INVALID, error,
                _("the peer agent's key-exchange message is not signed by its platform identity"));
        if ((ret = cocoEmuCheckPeer(emu, status, &peer, true, error)) < 0)
            return ret;
        if (cap < COCO_EMU_PREP_CONFIRM_LEN)
            return cocoEmuShortBuffer(emu, status, "prepare", cap,
                                      COCO_EMU_PREP_CONFIRM_LEN, error);
        memcpy(emu->hs_resp, in, COCO_EMU_PREP_RESP_LEN);
        cocoEmuPrepHeader(out, COCO_EMU_PREP_CONFIRM);
        cocoEmuBindingBuild(emu, out + COCO_EMU_PREP_HDR);
        tbslen = cocoEmuPrepTbs(
            tbs, COCO_EMU_PREP_SIGNED_INITIATOR, emu->hs_hello,
            COCO_EMU_PREP_HELLO_LEN, emu->hs_resp, COCO_EMU_PREP_RESP_LEN,
            out + COCO_EMU_PREP_HDR, COCO_EMU_PREP_BINDING_LEN);
        if (cocoEmuPlatformSign(
                emu->pf, tbs, tbslen,
                out + COCO_EMU_PREP_HDR + COCO_EMU_PREP_BINDING_LEN, error) < 0)
            return -EINVAL;
        if ((ret = cocoEmuHandshakeKeys(emu, peer.eph, true, status, error)) <
            0)
            return ret;
        *outlen = COCO_EMU_PREP_CONFIRM_LEN;
        return 0;
    }

    if (!initiator && emu->hs == COCO_EMU_HS_SENT_RESP &&
        cocoEmuPrepHeaderOk(in, inlen, COCO_EMU_PREP_CONFIRM_LEN,
                            COCO_EMU_PREP_CONFIRM)) {
        /* Responder: check the initiator confirms this VM's session,
         * install the keys. */
        if ((ret = cocoEmuBindingCheck(emu, status, in + COCO_EMU_PREP_HDR,
                                       error)) < 0)
            return ret;
        cocoEmuHelloParse(emu->hs_hello, &peer);
        tbslen = cocoEmuPrepTbs(
            tbs, COCO_EMU_PREP_SIGNED_INITIATOR, emu->hs_hello,
            COCO_EMU_PREP_HELLO_LEN, emu->hs_resp, COCO_EMU_PREP_RESP_LEN,
            in + COCO_EMU_PREP_HDR, COCO_EMU_PREP_BINDING_LEN);
        if (cocoCryptoEd25519Verify(peer.identity, tbs, tbslen,
                                    in + COCO_EMU_PREP_HDR +
                                        COCO_EMU_PREP_BINDING_LEN) < 0)
            return cocoEmuFail(
                emu, status, -EBADMSG, COCO_EMU_ST_SIGNATURE_INVALID, error,
                _("the peer agent's key-exchange message is not signed by its platform identity"));
        if ((ret = cocoEmuCheckPeer(emu, status, &peer, false, error)) < 0)
            return ret;
        return cocoEmuHandshakeKeys(emu, peer.eph, false, status, error);
    }

    return cocoEmuFail(
        emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND, error,
        _("unexpected or malformed key-exchange message of %1$zu bytes"),
        inlen);
}

/* ---- pages ------------------------------------------------------------ */

/* Eight page states or flags at once, and a byte repeated in each. */
#define COCO_EMU_BYTES8(b) (0x0101010101010101ULL * (uint8_t)(b))

static inline uint64_t
cocoEmuLoad8(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* Whether one of the eight bytes of @v is @b. */
static inline bool
cocoEmuHasByte8(uint64_t v, uint8_t b)
{
    uint64_t x = v ^ COCO_EMU_BYTES8(b);

    return ((x - COCO_EMU_BYTES8(0x01)) & ~x & COCO_EMU_BYTES8(0x80)) != 0;
}

/* Called for each run of @n present pages from @gfn. */
typedef void (*CocoEmuRunFunc)(CocoEmu *emu, uint64_t gfn, uint64_t n,
                               void *opaque);

/*
 * The emulation's secure EPT: the pages of [@first, @first + @n) the guest
 * has touched are the data of the RAM file, found with SEEK_DATA and
 * SEEK_HOLE, so nothing is read and nothing allocated (a read fault on a
 * hole of a shared file mapping would allocate the page). A caller's
 * region has no holes. Needs no lock: it reads no firmware state.
 */
static int
cocoEmuPresentRuns(CocoEmu *emu, uint64_t first, uint64_t n, CocoEmuRunFunc fn,
                   void *opaque, GError **error)
{
    off_t base = (off_t)emu->fd_offset;
    off_t pos = base + (off_t)(first * COCO_EMU_PAGE_SIZE);
    off_t end = base + (off_t)((first + n) * COCO_EMU_PAGE_SIZE);

    if (emu->fd < 0) {
        if (n)
            fn(emu, first, n, opaque);
        return 0;
    }
    while (pos < end) {
        off_t data = lseek(emu->fd, pos, SEEK_DATA);
        off_t hole;
        uint64_t g0;
        uint64_t g1;

        if (data < 0 && errno == ENXIO)
            break;
        if (data < 0 ||
            (data < end && (hole = lseek(emu->fd, data, SEEK_HOLE)) < 0))
            return cocoErrorSetSystem(
                error, errno,
                _("cannot find the pages the guest uses in its RAM file '%1$s'"),
                emu->path);
        if (data >= end)
            break;
        hole = MIN(hole, end);
        g0 = (uint64_t)(data - base) / COCO_EMU_PAGE_SIZE;
        g1 = ((uint64_t)(hole - base) + COCO_EMU_PAGE_SIZE - 1) /
             COCO_EMU_PAGE_SIZE;
        fn(emu, g0, g1 - g0, opaque);
        pos = base + (off_t)(g1 * COCO_EMU_PAGE_SIZE);
    }
    return 0;
}

/* Whether page @gfn is present (one SEEK_DATA). */
static bool
cocoEmuPagePresent(CocoEmu *emu, uint64_t gfn)
{
    off_t off = (off_t)(emu->fd_offset + gfn * COCO_EMU_PAGE_SIZE);

    return emu->fd < 0 || lseek(emu->fd, off, SEEK_DATA) == off;
}

static void
cocoEmuRunMapped(CocoEmu *emu, uint64_t gfn, uint64_t n,
                 void *opaque G_GNUC_UNUSED)
{
    memset(emu->pstate + gfn, COCO_EMU_PAGE_MAPPED, n);
}

static void
cocoEmuPagesReset(CocoEmu *emu)
{
    if (!emu->pstate)
        return;
    memset(emu->pstate, COCO_EMU_PAGE_MAPPED, emu->npages);
    memset(emu->pflags, 0, emu->npages);
    memset(emu->pepoch, 0, emu->npages * sizeof(*emu->pepoch));
    if (emu->phash)
        memset(emu->phash, 0, emu->npages * sizeof(*emu->phash));
    emu->dirty_count = 0;
}

/* Source, at SETUP: pages the guest never touched are ABSENT. */
static int
cocoEmuPagesPresence(CocoEmu *emu, GError **error)
{
    if (emu->fd < 0)
        return 0;
    memset(emu->pstate, COCO_EMU_PAGE_ABSENT, emu->npages);
    return cocoEmuPresentRuns(emu, 0, emu->npages, cocoEmuRunMapped, NULL,
                              error);
}

/* Under the VM lock: stop using the write log, saying @why (the first
 * reason stays). It stays attached until the memory is dropped: a
 * concurrent dirty log may still be reading it. Every page exported
 * without a hash that may have changed since (not exported with the VM
 * stopped) becomes dirty: nothing can tell any more whether it did. An
 * export in flight makes its pages dirty at its commit. */
static void
cocoEmuWriteLogLose(CocoEmu *emu, const char *why)
{
    uint64_t g;

    if (emu->wlog_lost)
        return;
    __atomic_store_n(&emu->wlog_lost, g_strdup(why), __ATOMIC_RELEASE);
    for (g = 0; g < emu->npages; g++) {
        uint8_t f = emu->pflags[g];

        if (g % 8 == 0 && g + 8 <= emu->npages &&
            !(cocoEmuLoad8(emu->pflags + g) &
              COCO_EMU_BYTES8(COCO_EMU_FLAG_UNHASHED))) {
            g += 7;
            continue;
        }
        if (!(f & COCO_EMU_FLAG_UNHASHED))
            continue;
        emu->pflags[g] = f & ~COCO_EMU_FLAG_UNHASHED;
        if (emu->pstate[g] != COCO_EMU_PAGE_EXPORTED ||
            (f & COCO_EMU_FLAG_VERIFIED && !(f & COCO_EMU_FLAG_LOGGED)))
            continue;
        emu->pstate[g] = COCO_EMU_PAGE_EXPORTED_DIRTY;
        emu->dirty_count++;
    }
}

/* Whether exported page @gfn still holds what was exported: known when it
 * was verified since the blackout without the log (exported, or hashed,
 * with the VM stopped: final), else by its hash (@hash, read from phash);
 * a page exported without a hash cannot tell and counts as changed. */
static bool
cocoEmuPageSame(CocoEmu *emu, uint64_t gfn, uint64_t hash)
{
    uint8_t f = __atomic_load_n(&emu->pflags[gfn], __ATOMIC_RELAXED);

    if ((f & (COCO_EMU_FLAG_VERIFIED | COCO_EMU_FLAG_LOGGED)) ==
        COCO_EMU_FLAG_VERIFIED)
        return true;
    return !(f & COCO_EMU_FLAG_UNHASHED) &&
           cocoPageHash(emu->mem + gfn * COCO_EMU_PAGE_SIZE, emu->hash_key) ==
               hash;
}

/* The first page from @g on (before @end) that is not absent, or @end;
 * eight pages at a time where it can. Unlocked: a page leaves ABSENT only
 * in the dirty log. */
static uint64_t
cocoEmuAbsentEnd(CocoEmu *emu, uint64_t g, uint64_t end)
{
    for (; g < end; g++) {
        if (g % 8 == 0 && g + 8 <= end &&
            cocoEmuLoad8(emu->pstate + g) ==
                COCO_EMU_BYTES8(COCO_EMU_PAGE_ABSENT)) {
            g += 7;
            continue;
        }
        if (__atomic_load_n(&emu->pstate[g], __ATOMIC_RELAXED) !=
            COCO_EMU_PAGE_ABSENT)
            break;
    }
    return g;
}

/* Whether the @n pages from @g are all absent. */
static bool
cocoEmuAllAbsent(CocoEmu *emu, uint64_t g, uint64_t n)
{
    return cocoEmuAbsentEnd(emu, g, g + n) == g + n;
}

/* The end of the run of 64-page groups from @g (whose first group is not
 * all absent) up to @end: it stops before COCO_EMU_LOG_GAP absent pages
 * in a row. */
static uint64_t
cocoEmuUsedRunEnd(CocoEmu *emu, uint64_t g, uint64_t end)
{
    uint64_t used_end = g;
    uint64_t gap = 0;

    while (g < end && gap < COCO_EMU_LOG_GAP) {
        uint64_t n = MIN(64, end - g);

        if (cocoEmuAllAbsent(emu, g, n)) {
            gap += n;
        } else {
            gap = 0;
            used_end = g + n;
        }
        g += n;
    }
    return used_end;
}

/* Unlocked: the pages of [@first, @first + @npages) the VMM wrote since
 * the previous read (bit p - @first), NULL without a write log (none, or
 * dropped now or before): the caller hashes. The page tables are walked
 * where the guest's pages are, in runs of 64-page groups: long runs of
 * absent pages are skipped (a page the guest touches there is found by
 * SEEK_DATA; a write the skip leaves in the log makes the page dirty at a
 * later read, once, never lost). */
static uint64_t *
cocoEmuWriteLogRead(CocoEmu *emu, uint64_t first, uint64_t npages)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint64_t *bits = NULL;
    uint64_t end = first + npages;
    uint64_t g = first;

    if (!emu->wlog || __atomic_load_n(&emu->wlog_lost, __ATOMIC_ACQUIRE))
        return NULL;
    bits = g_new0(uint64_t, (npages + 63) / 64);
    while (g < end) {
        uint64_t run;

        if (cocoEmuAllAbsent(emu, g, MIN(64, end - g))) {
            g += MIN(64, end - g);
            continue;
        }
        run = cocoEmuUsedRunEnd(emu, g, end);
        if (cocoWriteLogCollect(emu->wlog, g, run - g, bits + (g - first) / 64,
                                &err) < 0) {
            g_mutex_lock(&emu->lock);
            cocoEmuWriteLogLose(emu, err->message);
            g_mutex_unlock(&emu->lock);
            return NULL;
        }
        g = run;
    }
    return g_steal_pointer(&bits);
}

/* Under the VM lock: whether the pages the write log VERIFIED can stay
 * so (the start token): the VMM still maps the RAM as when the log was
 * attached. */
static bool
cocoEmuWriteLogTrusted(CocoEmu *emu)
{
    g_autoptr(GError) err = NULL;

    if (!emu->wlog || emu->wlog_lost)
        return false;
    if (cocoWriteLogCheck(emu->wlog, &err) < 0) {
        cocoEmuWriteLogLose(emu, err->message);
        return false;
    }
    return true;
}

/* Under the VM lock: whether the start token need not look at any of the
 * pages [@gfn, @gfn + 8): none is exported and clean, or each such page is
 * verified since the blackout, by the write log only if it is trusted. */
static bool
cocoEmuGroupVerified(CocoEmu *emu, uint64_t gfn, bool log_trusted)
{
    uint64_t st = cocoEmuLoad8(emu->pstate + gfn);
    uint64_t f;

    if (!cocoEmuHasByte8(st, COCO_EMU_PAGE_EXPORTED))
        return true;
    if (st != COCO_EMU_BYTES8(COCO_EMU_PAGE_EXPORTED))
        return false;
    f = cocoEmuLoad8(emu->pflags + gfn);
    return (f & COCO_EMU_BYTES8(COCO_EMU_FLAG_VERIFIED)) ==
               COCO_EMU_BYTES8(COCO_EMU_FLAG_VERIFIED) &&
           (log_trusted || !(f & COCO_EMU_BYTES8(COCO_EMU_FLAG_LOGGED)));
}

/* Every exported, clean page must still hold what was exported. A page
 * that changed without being reported dirty is marked dirty now (as
 * UNBLOCKW would have done) and the call is refused. Pages checked since
 * SOURCE_BLACKOUT (by the dirty log, or exported since) cannot have
 * changed and are skipped: after the blackout the VM does not run. */
static int
cocoEmuVerifyExported(CocoEmu *emu, CocoFirmwareStatus *status,
                      const char *what, GError **error)
{
    uint64_t changed = 0;
    uint64_t first = 0;
    bool log_trusted = cocoEmuWriteLogTrusted(emu);
    uint64_t gfn;

    for (gfn = 0; gfn < emu->npages; gfn++) {
        uint8_t f;

        /* Eight pages at a time where none needs a look. */
        if (gfn % 8 == 0 && gfn + 8 <= emu->npages &&
            cocoEmuGroupVerified(emu, gfn, log_trusted)) {
            gfn += 7;
            continue;
        }
        f = emu->pflags[gfn];
        if (emu->pstate[gfn] != COCO_EMU_PAGE_EXPORTED ||
            (f & COCO_EMU_FLAG_VERIFIED &&
             (!(f & COCO_EMU_FLAG_LOGGED) || log_trusted)))
            continue;
        if (cocoEmuPageSame(emu, gfn, emu->phash[gfn]))
            continue;
        if (changed++ == 0)
            first = gfn;
        emu->pstate[gfn] = COCO_EMU_PAGE_EXPORTED_DIRTY;
        emu->dirty_count++;
    }
    if (changed)
        return cocoEmuFail(
            emu, status, -EPERM, COCO_EMU_ST_EXPORTED_PAGES_CHANGED, error,
            _("'%1$s' refused: %2$llu exported pages changed without being reported dirty (first gfn %3$llu); they are marked dirty now and must be exported again"),
            what, (unsigned long long)changed, (unsigned long long)first);
    return 0;
}

int
cocoEmuMarkDirty(CocoFirmware *fw, uint64_t gfn, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    if (!cocoEmuIn(emu->op, 4, COCO_EMU_OP_RUNNABLE, COCO_EMU_OP_LIVE_EXPORT,
                   COCO_EMU_OP_PAUSED_EXPORT, COCO_EMU_OP_POST_EXPORT))
        return cocoErrorSet(error, COCO_ERROR_FW_STATE,
                            _("'%1$s' is not allowed in firmware state '%2$s'"),
                            "unblockw", cocoEmuOpStateTypeToString(emu->op));
    /* A write to a page being exported lands after that export. */
    while (gfn < emu->npages && emu->pstate[gfn] & COCO_EMU_PAGE_MARK)
        g_cond_wait(&emu->cond, &emu->lock);
    if (gfn >= emu->npages)
        return cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("gfn '%1$llu' is outside guest memory of %2$llu pages"),
            (unsigned long long)gfn, (unsigned long long)emu->npages);
    if (emu->pstate[gfn] == COCO_EMU_PAGE_EXPORTED) {
        emu->pstate[gfn] = COCO_EMU_PAGE_EXPORTED_DIRTY;
        emu->dirty_count++;
    }
    return 0;
}

int
cocoEmuGetDirty(CocoFirmware *fw, bool scan, uint64_t **gfns, size_t *ngfns,
                GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);
    g_autoptr(GArray) out = g_array_new(false, false, sizeof(uint64_t));
    uint64_t gfn;

    cocoEmuQuiesce(emu);
    *gfns = NULL;
    *ngfns = 0;
    if (!cocoEmuIn(emu->op, 3, COCO_EMU_OP_LIVE_EXPORT,
                   COCO_EMU_OP_PAUSED_EXPORT, COCO_EMU_OP_POST_EXPORT))
        return cocoErrorSet(error, COCO_ERROR_FW_STATE,
                            _("'%1$s' is not allowed in firmware state '%2$s'"),
                            "dirty log", cocoEmuOpStateTypeToString(emu->op));
    for (gfn = 0; gfn < emu->npages; gfn++) {
        if (scan && emu->pstate[gfn] == COCO_EMU_PAGE_EXPORTED) {
            if (!cocoEmuPageSame(emu, gfn, emu->phash[gfn])) {
                emu->pstate[gfn] = COCO_EMU_PAGE_EXPORTED_DIRTY;
                emu->dirty_count++;
            }
        }
        if (emu->pstate[gfn] == COCO_EMU_PAGE_EXPORTED_DIRTY)
            g_array_append_val(out, gfn);
    }
    *ngfns = out->len;
    *gfns = (uint64_t *)(void *)g_array_free(g_steal_pointer(&out), false);
    return 0;
}

/* Forget the guest memory: unmap it, close the file, drop the page
 * states. */
static void
cocoEmuMemoryDrop(CocoEmu *emu)
{
    if (emu->mem_mapped && emu->mem)
        munmap(emu->mem, emu->memsize);
    if (emu->fd >= 0)
        close(emu->fd);
    emu->fd = -1;
    g_clear_pointer(&emu->path, g_free);
    g_clear_pointer(&emu->wlog, cocoWriteLogFree);
    g_clear_pointer(&emu->wlog_lost, g_free);
    emu->mem = NULL;
    emu->mem_mapped = false;
    g_clear_pointer(&emu->pstate, g_free);
    g_clear_pointer(&emu->pflags, g_free);
    g_clear_pointer(&emu->pepoch, g_free);
    g_clear_pointer(&emu->phash, g_free);
}

/* Under the VM lock, in the dirty log with the write log: whether the
 * pages [@gfn, @gfn + 8), none written since the previous read and none
 * newly touched, are done with at once: all absent (they stay so), or all
 * exported and clean (they stay so; paused, they are final). */
static bool
cocoEmuGroupUnwritten(CocoEmu *emu, uint64_t gfn, bool paused)
{
    uint64_t st = cocoEmuLoad8(emu->pstate + gfn);
    uint64_t f;

    if (st == COCO_EMU_BYTES8(COCO_EMU_PAGE_ABSENT))
        return true;
    if (st != COCO_EMU_BYTES8(COCO_EMU_PAGE_EXPORTED))
        return false;
    if (paused) {
        /* VERIFIED | LOGGED where not VERIFIED yet (by a stopped export,
         * which needs no log): a 0 or 1 per byte times the two flags. */
        f = cocoEmuLoad8(emu->pflags + gfn);
        f |= ((f & COCO_EMU_BYTES8(COCO_EMU_FLAG_VERIFIED)) ^
              COCO_EMU_BYTES8(COCO_EMU_FLAG_VERIFIED)) *
             (COCO_EMU_FLAG_VERIFIED | COCO_EMU_FLAG_LOGGED);
        memcpy(emu->pflags + gfn, &f, sizeof(f));
    }
    return true;
}

/* What the unlocked step of the dirty log found for a page. */
enum {
    COCO_EMU_SEEN_NOTHING = 0,
    COCO_EMU_SEEN_CHANGED, /* exported, its content differs now */
    COCO_EMU_SEEN_SAME, /* exported, its content is what was exported */
};

typedef struct {
    uint64_t first;
    uint64_t *bits;
} CocoEmuRunBits;

static void
cocoEmuRunSetBits(CocoEmu *emu G_GNUC_UNUSED, uint64_t gfn, uint64_t n,
                  void *opaque)
{
    CocoEmuRunBits *rb = opaque;
    uint64_t g;

    for (g = gfn - rb->first; g < gfn - rb->first + n; g++)
        rb->bits[g / 64] |= 1ULL << (g % 64);
}

/* Set the bits of @rb for the pages of [@first, @first + @n) that are
 * absent and that the guest touched since: a search of the RAM file's data
 * from each run of absent pages, which ends at once where the run ends in
 * a page in use (SEEK_HOLE over the pages in use would walk each of them).
 * Unlocked: a page leaves ABSENT only in the dirty log. */
static int
cocoEmuAbsentTouched(CocoEmu *emu, uint64_t first, uint64_t n,
                     CocoEmuRunBits *rb, GError **error)
{
    uint64_t end = first + n;
    uint64_t g = first;

    while (g < end) {
        const uint8_t *a =
            memchr(emu->pstate + g, COCO_EMU_PAGE_ABSENT, end - g);
        uint64_t run;

        if (!a)
            break;
        g = (uint64_t)(a - emu->pstate);
        run = cocoEmuAbsentEnd(emu, g, end);
        if (cocoEmuPresentRuns(emu, g, run - g, cocoEmuRunSetBits, rb, error) <
            0)
            return -1;
        g = run;
    }
    return 0;
}

/*
 * KVM_GET_DIRTY_LOG of the emulation (the driver's dirtyLog). Unlocked,
 * read the VMM's write log if there is one, and look up which absent pages
 * the guest touched since (SEEK_DATA from each run of them). Then in
 * chunks: without the log, unlocked, hash every exported clean page of the
 * chunk and compare it with the hash of the copy its export sealed; then,
 * under the lock, record what changed (exported pages become
 * exported-dirty, as TDX's write blocking and UNBLOCKW would have made
 * them; touched pages become mapped) and list the pages to export. A page
 * whose state or hash changed meanwhile is left alone: its new state is
 * the newer truth. In paused-export the pages found unchanged are known
 * final (the VM does not run), so the start token need not check them
 * again. Counts as an in-flight call, so nothing that changes the session
 * runs meanwhile.
 */
static int
cocoEmuDirtyLog(CocoFirmware *fw, uint64_t first, uint64_t npages,
                uint64_t *bitmap, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    uint64_t seen[COCO_EMU_SCAN_CHUNK];
    uint8_t what[COCO_EMU_SCAN_CHUNK];
    g_autofree uint64_t *written = NULL;
    g_autofree uint64_t *present = NULL;
    CocoEmuRunBits rb;
    uint64_t off;
    bool paused;
    int ret = 0;

    g_mutex_lock(&emu->lock);
    while (emu->quiescing)
        g_cond_wait(&emu->cond, &emu->lock);
    if (!cocoEmuIn(emu->op, 3, COCO_EMU_OP_LIVE_EXPORT,
                   COCO_EMU_OP_PAUSED_EXPORT, COCO_EMU_OP_POST_EXPORT)) {
        cocoErrorSet(error, COCO_ERROR_FW_STATE,
                     _("'%1$s' is not allowed in firmware state '%2$s'"),
                     "dirty log", cocoEmuOpStateTypeToString(emu->op));
        g_mutex_unlock(&emu->lock);
        return -EPERM;
    }
    if (first > emu->npages || npages > emu->npages - first) {
        cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("dirty log of pages %1$llu+%2$llu is outside guest memory of %3$llu pages"),
            (unsigned long long)first, (unsigned long long)npages,
            (unsigned long long)emu->npages);
        g_mutex_unlock(&emu->lock);
        return -EINVAL;
    }
    paused = emu->op != COCO_EMU_OP_LIVE_EXPORT;
    emu->inflight++;
    g_mutex_unlock(&emu->lock);

    /* The write log, read before the states: a write after it is in the
     * next read. With it, nothing is hashed or compared. */
    written = cocoEmuWriteLogRead(emu, first, npages);

    /* Which absent pages the guest touched since. */
    present = g_new0(uint64_t, (npages + 63) / 64);
    rb.first = first;
    rb.bits = present;
    if (cocoEmuAbsentTouched(emu, first, npages, &rb, error) < 0)
        ret = -EIO;

    for (off = 0; off < npages && ret == 0; off += COCO_EMU_SCAN_CHUNK) {
        uint64_t g0 = first + off;
        uint64_t n = MIN(COCO_EMU_SCAN_CHUNK, npages - off);
        uint64_t i;

        if (!written) {
            for (i = 0; i < n; i++) {
                uint8_t st =
                    __atomic_load_n(&emu->pstate[g0 + i], __ATOMIC_RELAXED);

                what[i] = COCO_EMU_SEEN_NOTHING;
                if (st == COCO_EMU_PAGE_EXPORTED) {
                    seen[i] =
                        __atomic_load_n(&emu->phash[g0 + i], __ATOMIC_RELAXED);
                    what[i] = cocoEmuPageSame(emu, g0 + i, seen[i])
                                  ? COCO_EMU_SEEN_SAME
                                  : COCO_EMU_SEEN_CHANGED;
                }
            }
        }

        g_mutex_lock(&emu->lock);
        for (i = 0; i < n; i++) {
            uint64_t g = g0 + i;
            bool wrote =
                written && written[(off + i) / 64] & (1ULL << ((off + i) % 64));
            uint8_t st;

            /* With the log, eight pages at a time where none was written,
             * touched or is anything but exported and clean, or absent. */
            if (written && i % 8 == 0 && i + 8 <= n &&
                !(written[(off + i) / 64] >> ((off + i) % 64) & 0xff) &&
                !(present[(off + i) / 64] >> ((off + i) % 64) & 0xff) &&
                cocoEmuGroupUnwritten(emu, g, paused)) {
                i += 7;
                continue;
            }

            /* A logged write is consumed by its read: whatever the page's
             * state, the write must not be lost. A page being exported
             * (MARK) may have been copied before it: wait for that export
             * and mark the copy dirty (what UNBLOCKW does). */
            if (wrote) {
                while (emu->pstate[g] & COCO_EMU_PAGE_MARK)
                    g_cond_wait(&emu->cond, &emu->lock);
                if (emu->pstate[g] == COCO_EMU_PAGE_EXPORTED) {
                    emu->pstate[g] = COCO_EMU_PAGE_EXPORTED_DIRTY;
                    emu->dirty_count++;
                }
            }
            st = emu->pstate[g];
            if (written) {
                /* Paused, an exported page the VMM did not write since
                 * the previous read is final: the VM cannot run. One
                 * exported stopped is so without the log. */
                if (!wrote && paused && st == COCO_EMU_PAGE_EXPORTED &&
                    !(emu->pflags[g] & COCO_EMU_FLAG_VERIFIED))
                    emu->pflags[g] |=
                        COCO_EMU_FLAG_VERIFIED | COCO_EMU_FLAG_LOGGED;
            } else if (what[i] == COCO_EMU_SEEN_CHANGED &&
                       st == COCO_EMU_PAGE_EXPORTED &&
                       emu->phash[g] == seen[i]) {
                st = COCO_EMU_PAGE_EXPORTED_DIRTY;
                emu->dirty_count++;
            } else if (what[i] == COCO_EMU_SEEN_SAME && paused &&
                       st == COCO_EMU_PAGE_EXPORTED &&
                       emu->phash[g] == seen[i]) {
                emu->pflags[g] |= COCO_EMU_FLAG_VERIFIED;
            }
            if (st == COCO_EMU_PAGE_ABSENT &&
                present[(off + i) / 64] & (1ULL << ((off + i) % 64)))
                st = COCO_EMU_PAGE_MAPPED;
            emu->pstate[g] = st;
            if (st == COCO_EMU_PAGE_MAPPED ||
                st == COCO_EMU_PAGE_EXPORTED_DIRTY)
                bitmap[(off + i) / 64] |= 1ULL << ((off + i) % 64);
        }
        g_mutex_unlock(&emu->lock);
    }

    g_mutex_lock(&emu->lock);
    emu->inflight--;
    g_cond_broadcast(&emu->cond);
    g_mutex_unlock(&emu->lock);
    return ret;
}

/* Destination: reserve the backing of the page ranges the source will
 * send (the driver's reserveMemory). */
static int
cocoEmuReserveMemory(CocoFirmware *fw, const uint64_t *ranges, size_t n,
                     GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);
    struct statvfs vfs;
    uint64_t prev = 0;
    uint64_t needed = 0;
    uint64_t avail;
    size_t i;

    cocoEmuQuiesce(emu);
    if (!emu->mem ||
        !cocoEmuIn(emu->op, 5, COCO_EMU_OP_UNINIT, COCO_EMU_OP_MEMORY_IMPORT,
                   COCO_EMU_OP_STATE_IMPORT, COCO_EMU_OP_POST_IMPORT,
                   COCO_EMU_OP_LIVE_IMPORT)) {
        cocoErrorSet(error, COCO_ERROR_FW_STATE,
                     _("'%1$s' is not allowed in firmware state '%2$s'"),
                     "reserve memory", cocoEmuOpStateTypeToString(emu->op));
        return -EPERM;
    }
    for (i = 0; i < n; i++) {
        uint64_t g = ranges[2 * i];
        uint64_t c = ranges[2 * i + 1];
        uint64_t k;

        if (c == 0 || g < prev || g > emu->npages || c > emu->npages - g) {
            cocoErrorSet(
                error, COCO_ERROR_FW_INVALID,
                _("page range %1$llu+%2$llu is empty, out of order or outside guest memory of %3$llu pages"),
                (unsigned long long)g, (unsigned long long)c,
                (unsigned long long)emu->npages);
            return -EINVAL;
        }
        prev = g + c;
        for (k = g; k < g + c; k++)
            needed += !(emu->pflags[k] & COCO_EMU_FLAG_RESERVED);
    }
    if (emu->fd >= 0) {
        needed *= COCO_EMU_PAGE_SIZE;
        if (fstatvfs(emu->fd, &vfs) < 0) {
            cocoErrorSetSystem(error, errno,
                               _("cannot find the free space for '%1$s'"),
                               emu->path);
            return -EIO;
        }
        /* No size (an unlimited tmpfs, memfd): fallocate decides. */
        avail =
            vfs.f_blocks ? (uint64_t)vfs.f_bavail * vfs.f_frsize : G_MAXUINT64;
        if (needed > avail) {
            cocoErrorSet(
                error, COCO_ERROR_SYSTEM,
                _("cannot reserve %1$llu MiB for the guest's memory in '%2$s': its file system has %3$llu MiB free"),
                (unsigned long long)(needed >> 20), emu->path,
                (unsigned long long)(avail >> 20));
            return -ENOSPC;
        }
        for (i = 0; i < n; i++) {
            off_t off =
                (off_t)(emu->fd_offset + ranges[2 * i] * COCO_EMU_PAGE_SIZE);
            off_t len = (off_t)(ranges[2 * i + 1] * COCO_EMU_PAGE_SIZE);

            if (fallocate(emu->fd, 0, off, len) < 0 && errno != EOPNOTSUPP) {
                int e = errno;

                if (fstatvfs(emu->fd, &vfs) == 0)
                    avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
                if (avail == G_MAXUINT64)
                    avail = 0;
                if (e == ENOSPC)
                    cocoErrorSet(
                        error, COCO_ERROR_SYSTEM,
                        _("cannot reserve %1$llu MiB for the guest's memory in '%2$s': its file system has %3$llu MiB free"),
                        (unsigned long long)(needed >> 20), emu->path,
                        (unsigned long long)(avail >> 20));
                else
                    cocoErrorSetSystem(
                        error, e,
                        _("cannot reserve the guest's memory in '%1$s'"),
                        emu->path);
                return -e;
            }
        }
    }
    for (i = 0; i < n; i++)
        memset(emu->pflags + ranges[2 * i], COCO_EMU_FLAG_RESERVED,
               ranges[2 * i + 1]);
    return 0;
}

int
cocoEmuCheckRamSpace(const char *path, uint64_t bytes, GError **error)
{
    struct statvfs vfs;
    struct stat st;
    uint64_t have = 0;
    uint64_t avail;

    /* What the file already holds needs no new room. */
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        have = (uint64_t)st.st_blocks * 512;
    if (statvfs(path, &vfs) < 0)
        return cocoErrorSetSystem(
            error, errno, _("cannot find the free space for '%1$s'"), path);
    avail = vfs.f_blocks ? (uint64_t)vfs.f_bavail * vfs.f_frsize : G_MAXUINT64;
    if (bytes > have && bytes - have > avail)
        return cocoErrorSet(
            error, COCO_ERROR_SYSTEM,
            _("the guest's memory needs %1$llu MiB more in '%2$s', its file system has %3$llu MiB free"),
            (unsigned long long)((bytes - have + (1 << 20) - 1) >> 20), path,
            (unsigned long long)(avail >> 20));
    return 0;
}

static int
cocoEmuMemorySet(CocoEmu *emu, uint8_t *mem, size_t size, bool mapped,
                 GError **error)
{
    if (!cocoEmuIn(emu->op, 2, COCO_EMU_OP_RUNNABLE, COCO_EMU_OP_UNINIT) ||
        emu->key_set || emu->hs != COCO_EMU_HS_IDLE)
        return cocoErrorSet(
            error, COCO_ERROR_FW_STATE,
            _("guest memory can only be attached outside a migration session, not in state '%1$s'"),
            cocoEmuOpStateTypeToString(emu->op));
    if (size == 0 || size % COCO_EMU_PAGE_SIZE != 0)
        return cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("guest memory size '%1$zu' is not a positive multiple of 4096"),
            size);
    if (size != emu->vm_memory)
        return cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("guest memory of %1$zu bytes attached to a VM created with %2$llu bytes"),
            size, (unsigned long long)emu->vm_memory);
    cocoEmuMemoryDrop(emu);
    emu->mem = mem;
    emu->memsize = size;
    emu->mem_mapped = mapped;
    emu->npages = size / COCO_EMU_PAGE_SIZE;
    emu->pstate = g_new0(uint8_t, emu->npages);
    emu->pflags = g_new0(uint8_t, emu->npages);
    emu->pepoch = g_new0(uint32_t, emu->npages);
    /* Only an export checks pages against their hash (SETUP allocates
     * them for a VM that came in and goes on). */
    if (emu->role == COCO_FIRMWARE_ROLE_SOURCE)
        emu->phash = g_new0(uint64_t, emu->npages);
    emu->dirty_count = 0;
    return 0;
}

int
cocoEmuAttachMemory(CocoFirmware *fw, void *mem, size_t size, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    cocoEmuQuiesce(emu);
    if (!mem)
        return cocoErrorSet(error, COCO_ERROR_FW_INVALID,
                            _("guest memory region is NULL"));
    return cocoEmuMemorySet(emu, mem, size, false, error);
}

int
cocoEmuAttachMemoryFd(CocoFirmware *fw, int fd, uint64_t offset, size_t size,
                      GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);
    g_autofree char *fdlink = NULL;
    void *mem;
    int dupfd;

    cocoEmuQuiesce(emu);

    if (size == 0 || size % COCO_EMU_PAGE_SIZE != 0 ||
        offset % COCO_EMU_PAGE_SIZE != 0 || offset > (uint64_t)G_MAXINT64)
        return cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("guest memory size '%1$zu' and offset '%2$llu' must be multiples of 4096"),
            size, (unsigned long long)offset);
    if (!cocoEmuIn(emu->op, 2, COCO_EMU_OP_RUNNABLE, COCO_EMU_OP_UNINIT))
        return cocoErrorSet(
            error, COCO_ERROR_FW_STATE,
            _("guest memory can only be attached outside a migration session, not in state '%1$s'"),
            cocoEmuOpStateTypeToString(emu->op));
    if ((dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
        return cocoErrorSetSystem(
            error, errno, _("cannot map guest memory from fd '%1$d'"), fd);
    mem =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
    if (mem == MAP_FAILED) {
        int e = errno;

        close(dupfd);
        return cocoErrorSetSystem(
            error, e, _("cannot map guest memory from fd '%1$d'"), fd);
    }
    if (cocoEmuMemorySet(emu, mem, size, true, error) < 0) {
        munmap(mem, size);
        close(dupfd);
        return -1;
    }
    /* The file itself, to find the pages the guest uses (holes are pages
     * it never touched) and to reserve the destination's pages. */
    emu->fd = dupfd;
    emu->fd_offset = offset;
    {
        struct statfs sfs;
        int fl = fcntl(dupfd, F_GETFL);

        emu->fd_nowrite = fl < 0 || (fl & O_APPEND) ||
                          (fstatfs(dupfd, &sfs) == 0 &&
                           (unsigned long)sfs.f_type == COCO_HUGETLBFS_MAGIC);
    }
    fdlink = g_strdup_printf("/proc/self/fd/%d", dupfd);
    if (!(emu->path = g_file_read_link(fdlink, NULL)))
        emu->path = g_strdup_printf("fd %d", fd);
    return 0;
}

int
cocoEmuLogWrites(CocoFirmware *fw, pid_t pid, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    cocoEmuQuiesce(emu);
    if (emu->role != COCO_FIRMWARE_ROLE_SOURCE || emu->fd < 0)
        return cocoErrorSet(
            error, COCO_ERROR_FW_STATE, "%s",
            _("only a source's guest memory in a file can have its writes logged"));
    /* Before the first export: every write after an export's copy must be
     * in the log. */
    if (emu->op != COCO_EMU_OP_RUNNABLE)
        return cocoErrorSet(
            error, COCO_ERROR_FW_STATE,
            _("writes can only be logged outside a migration session, not in state '%1$s'"),
            cocoEmuOpStateTypeToString(emu->op));
    g_clear_pointer(&emu->wlog, cocoWriteLogFree);
    g_clear_pointer(&emu->wlog_lost, g_free);
    if (!(emu->wlog = cocoWriteLogAttach(pid, emu->fd, emu->fd_offset,
                                         emu->memsize, error)))
        return -1;
    return 0;
}

const char *
cocoEmuWriteLogLost(CocoFirmware *fw)
{
    CocoEmu *emu = cocoEmuGet(fw);

    return __atomic_load_n(&emu->wlog_lost, __ATOMIC_ACQUIRE);
}

/* ---- vCPUs and running -------------------------------------------------- */

bool
cocoEmuCanRun(CocoFirmware *fw)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    return cocoEmuIn(emu->op, 3, COCO_EMU_OP_RUNNABLE, COCO_EMU_OP_LIVE_EXPORT,
                     COCO_EMU_OP_LIVE_IMPORT);
}

CocoEmuOpState
cocoEmuGetOpState(CocoFirmware *fw)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    return emu->op;
}

int
cocoEmuVcpuEnter(CocoFirmware *fw, unsigned int vcpu, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    if (vcpu >= emu->nvcpus)
        return cocoErrorSet(error, COCO_ERROR_FW_INVALID,
                            _("vCPU '%1$u' does not exist"), vcpu);
    if (!cocoEmuIn(emu->op, 3, COCO_EMU_OP_RUNNABLE, COCO_EMU_OP_LIVE_EXPORT,
                   COCO_EMU_OP_LIVE_IMPORT))
        return cocoErrorSet(
            error, COCO_ERROR_FW_STATE,
            _("vCPU '%1$u' cannot enter the VM in firmware state '%2$s'"), vcpu,
            cocoEmuOpStateTypeToString(emu->op));
    if (!emu->vcpu_in[vcpu]) {
        emu->vcpu_in[vcpu] = true;
        emu->nvcpus_in++;
    }
    return 0;
}

void
cocoEmuVcpuExit(CocoFirmware *fw, unsigned int vcpu)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    if (vcpu < emu->nvcpus && emu->vcpu_in[vcpu]) {
        emu->vcpu_in[vcpu] = false;
        emu->nvcpus_in--;
    }
}

int
cocoEmuSetVcpuState(CocoFirmware *fw, unsigned int vcpu, const void *data,
                    size_t len, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    cocoEmuQuiesce(emu);
    if (vcpu >= emu->nvcpus)
        return cocoErrorSet(error, COCO_ERROR_FW_INVALID,
                            _("vCPU '%1$u' does not exist"), vcpu);
    if (len == 0 || len > COCO_EMU_VCPU_STATE_MAX)
        return cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("vCPU state of %1$zu bytes is not within 1..65536"), len);
    if (emu->op != COCO_EMU_OP_RUNNABLE)
        return cocoErrorSet(
            error, COCO_ERROR_FW_STATE,
            _("vCPU state can only be set in state 'runnable', not '%1$s'"),
            cocoEmuOpStateTypeToString(emu->op));
    g_free(emu->vcpu_state[vcpu]);
    emu->vcpu_state[vcpu] = g_memdup2(data, len);
    emu->vcpu_len[vcpu] = len;
    return 0;
}

const uint8_t *
cocoEmuGetVcpuState(CocoFirmware *fw, unsigned int vcpu, size_t *len)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    *len = 0;
    if (vcpu >= emu->nvcpus || !emu->vcpu_state[vcpu])
        return NULL;
    *len = emu->vcpu_len[vcpu];
    return emu->vcpu_state[vcpu];
}

const uint8_t *
cocoEmuGetTdState(CocoFirmware *fw, size_t *len)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);

    *len = emu->has_td_state ? sizeof(emu->td_state) : 0;
    return emu->has_td_state ? emu->td_state : NULL;
}

/* ---- session start and end ------------------------------------------- */

static void
cocoEmuSessionReset(CocoEmu *emu)
{
    unsigned int i;

    emu->epoch = 0;
    emu->total = 0;
    memset(emu->counter, 0, emu->nstreams * sizeof(*emu->counter));
    for (i = 0; i < emu->nvcpus; i++)
        emu->vcpu_done[i] = false;
    emu->nvcpus_done = 0;
}

static void
cocoEmuLatchKeys(CocoEmu *emu)
{
    /* Latch the working keys; the agent must run a new exchange for the
     * next session. */
    cocoEmuKeysClear(emu);
    emu->enc = emu->mig_enc;
    emu->dec = emu->mig_dec;
    memset(&emu->mig_enc, 0, sizeof(emu->mig_enc));
    memset(&emu->mig_dec, 0, sizeof(emu->mig_dec));
    emu->key_set = false;
}

static void
cocoEmuSessionEnd(CocoEmu *emu, CocoEmuOpState op)
{
    emu->op = op;
    cocoEmuKeysClear(emu);
}

/* The immutable state (SETUP payload, COCO_EMU_IMMUTABLE_LEN bytes):
 * u32 nvcpus, u32 forward streams, u64 pages, agent hash (48), u8 has-agent,
 * 31 zero bytes, the source platform id (32). */
static void
cocoEmuImmutableBuild(CocoEmu *emu, uint8_t *out)
{
    uint32_t nv = GUINT32_TO_LE(emu->nvcpus);
    uint32_t ns = GUINT32_TO_LE(emu->nstreams);
    uint64_t np = GUINT64_TO_LE(emu->npages);

    memset(out, 0, COCO_EMU_IMMUTABLE_LEN);
    memcpy(out, &nv, 4);
    memcpy(out + 4, &ns, 4);
    memcpy(out + 8, &np, 8);
    memcpy(out + 16, emu->agent_hash, COCO_AGENT_HASH_LEN);
    out[64] = emu->has_agent;
    memcpy(out + 96, cocoEmuPlatformGetId(emu->pf), COCO_PLATFORM_ID_LEN);
}

static int
cocoEmuSetupExport(CocoEmu *emu, uint8_t *buf, size_t *buflen,
                   CocoFirmwareStatus *status, GError **error)
{
    CocoEmuBundleHeader h = {0};
    uint8_t iv[COCO_CRYPTO_IV_LEN];
    uint8_t *payload = buf + COCO_EMU_HEADER_SIZE;
    size_t cap = buf ? *buflen : 0;

    *buflen = 0;
    if (!cocoEmuIn(emu->op, 2, COCO_EMU_OP_RUNNABLE, COCO_EMU_OP_LIVE_IMPORT))
        return cocoEmuStateFail(emu, status, "setup", error);
    if (!emu->mem)
        return cocoEmuFail(emu, status, -EPERM, COCO_EMU_ST_NO_MEMORY, error,
                           _("no guest memory is attached"));
    if (!emu->key_set)
        return cocoEmuFail(
            emu, status, -EAGAIN, COCO_EMU_ST_KEY_NOT_SET, error,
            _("the migration agent has not installed the session keys yet (run PREPARE)"));
    if (cap < COCO_EMU_SETUP_BUNDLE_SIZE)
        return cocoEmuShortBuffer(emu, status, "setup", cap,
                                  COCO_EMU_SETUP_BUNDLE_SIZE, error);

    /* A fresh page hash key per session: the host cannot precompute page
     * contents that collide with an exported page's hash. */
    if (cocoCryptoRandom(&emu->hash_key, sizeof(emu->hash_key), NULL) < 0)
        return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                           error, _("cannot draw the page hash key"));
    cocoEmuLatchKeys(emu);
    cocoEmuSessionReset(emu);
    if (!emu->phash)
        emu->phash = g_new0(uint64_t, emu->npages);
    cocoEmuPagesReset(emu);
    if (cocoEmuPagesPresence(emu, error) < 0) {
        cocoEmuPagesReset(emu);
        if (status) {
            status->err = -EIO;
            status->fw_status = COCO_EMU_STATUS(COCO_EMU_ST_INVALID_OPERAND);
        }
        return -EIO;
    }

    h.size = COCO_EMU_SETUP_BUNDLE_SIZE;
    h.version = COCO_EMU_BUNDLE_VERSION;
    h.stream = 0;
    h.type = COCO_EMU_BUNDLE_IMMUTABLE;
    h.counter = emu->counter[0]++;
    h.epoch = 0;
    h.iv_counter = emu->iv[0]++;
    cocoEmuImmutableBuild(emu, payload);
    memcpy(h.key_id, emu->enc.id, sizeof(h.key_id));
    cocoEmuIv(h.iv_counter, 0, 1, iv);
    if (cocoCryptoSeal(&emu->enc, iv, NULL, 0, NULL, 0, payload,
                       COCO_EMU_IMMUTABLE_LEN,
                       payload + COCO_EMU_IMMUTABLE_LEN) < 0 ||
        cocoEmuHeaderSeal(&emu->enc, &h, 0, NULL, 0, buf) < 0)
        return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                           error, _("cannot seal the immutable-state bundle"));
    emu->total = 1;
    emu->op = COCO_EMU_OP_LIVE_EXPORT;
    *buflen = COCO_EMU_SETUP_BUNDLE_SIZE;
    return 0;
}

static int
cocoEmuSetupImport(CocoEmu *emu, const uint8_t *buf, size_t buflen,
                   CocoFirmwareStatus *status, GError **error)
{
    CocoEmuBundleHeader h;
    uint8_t iv[COCO_CRYPTO_IV_LEN];
    uint8_t imm[COCO_EMU_IMMUTABLE_LEN];
    uint32_t nv;
    uint32_t ns;
    uint64_t np;
    int ret;

    if (emu->op != COCO_EMU_OP_UNINIT)
        return cocoEmuStateFail(emu, status, "setup", error);
    if (!emu->mem)
        return cocoEmuFail(emu, status, -EPERM, COCO_EMU_ST_NO_MEMORY, error,
                           _("no guest memory is attached"));
    if (!emu->key_set)
        return cocoEmuFail(
            emu, status, -EAGAIN, COCO_EMU_ST_KEY_NOT_SET, error,
            _("the migration agent has not installed the session keys yet (run PREPARE)"));

    cocoEmuLatchKeys(emu);
    cocoEmuSessionReset(emu);
    cocoEmuPagesReset(emu);
    emu->op = COCO_EMU_OP_MEMORY_IMPORT; /* failures below are fatal */

    if (buflen < COCO_EMU_HEADER_SIZE)
        return cocoEmuImportFail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD, error,
            _("bundle of %1$zu bytes is shorter than its header"), buflen);
    cocoEmuHeaderUnpack(buf, &h);
    if ((ret = cocoEmuCheckHeader(emu, status, &emu->dec, h.stream, &h, buflen,
                                  COCO_EMU_BUNDLE_IMMUTABLE, NULL, 0, true,
                                  error)) < 0)
        return ret;
    if (buflen != COCO_EMU_SETUP_BUNDLE_SIZE || h.stream != 0 ||
        h.counter != 0 || h.epoch != 0 || h.specific != 0)
        return cocoEmuImportFail(emu, status, -EBADMSG,
                                 COCO_EMU_ST_INVALID_MBMD, error,
                                 _("malformed immutable-state bundle"));
    memcpy(imm, buf + COCO_EMU_HEADER_SIZE, sizeof(imm));
    cocoEmuIv(h.iv_counter, 0, 1, iv);
    if (cocoCryptoOpen(&emu->dec, iv, NULL, 0, NULL, 0, imm, sizeof(imm),
                       buf + COCO_EMU_HEADER_SIZE + sizeof(imm)) < 0)
        return cocoEmuImportFail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_PAGE_MAC, error,
            _("the immutable state does not verify (tampered)"));
    memcpy(&nv, imm, 4);
    memcpy(&ns, imm + 4, 4);
    memcpy(&np, imm + 8, 8);
    nv = GUINT32_FROM_LE(nv);
    ns = GUINT32_FROM_LE(ns);
    np = GUINT64_FROM_LE(np);
    if (nv != emu->nvcpus || np != emu->npages)
        return cocoEmuImportFail(
            emu, status, -EINVAL, COCO_EMU_ST_IMMUTABLE_MISMATCH, error,
            _("the source VM has %1$u vCPUs and %2$llu pages, this one %3$u vCPUs and %4$llu pages"),
            nv, (unsigned long long)np, emu->nvcpus,
            (unsigned long long)emu->npages);
    if (ns == 0 || ns > emu->nstreams)
        return cocoEmuImportFail(
            emu, status, -EINVAL, COCO_EMU_ST_IMMUTABLE_MISMATCH, error,
            _("the source uses %1$u forward streams, more than the %2$u created here"),
            ns, emu->nstreams);
    if (emu->has_agent && (!imm[64] || memcmp(imm + 16, emu->agent_hash,
                                              COCO_AGENT_HASH_LEN) != 0))
        return cocoEmuImportFail(
            emu, status, -EINVAL, COCO_EMU_ST_IMMUTABLE_MISMATCH, error,
            _("the source VM is bound to another migration agent than this one"));
    emu->counter[0] = 1;
    emu->total = 1;
    return 0;
}

/* ---- memory ----------------------------------------------------------- */

/*
 * EXPORT_MEMORY and IMPORT_MEMORY run in three steps so that streams
 * driven from several threads do their bulk cryptography in parallel:
 *   1. under the VM lock: every state, page and ordering check of the
 *      call, exactly as a serialised call would make them; then reserve
 *      the stream (one call per stream at a time) and the pages (MARK
 *      stays set on them until the commit), and count the call in flight;
 *   2. without the lock: snapshot+hash+encrypt (export) or decrypt+verify
 *      into the stream's bounce buffer (import), with the stream's own
 *      GCM handles (a GnuTLS handle is not shared between threads);
 *   3. under the lock: commit page states, counters and (import) the
 *      pages, or report the failure with today's semantics.
 * A call that finds one of its pages or its stream reserved waits and
 * checks again, so it sees what it would have seen after the other call.
 * Every other call that changes or inspects session state (tokens,
 * blackout, vCPUs, SETUP, abort, the dirty log, key changes) first waits
 * until nothing is in flight (cocoEmuQuiesce), and memory calls do not
 * start while such a call waits. The VM's operation state cannot change
 * under an in-flight call except by another import failing for good,
 * which the commit detects.
 */

/* Lock held. */
static bool
cocoEmuPagesBusy(CocoEmu *emu, const uint64_t *gfns, uint64_t n)
{
    uint64_t i;

    for (i = 0; i < n; i++) {
        if (gfns[i] < emu->npages && emu->pstate[gfns[i]] & COCO_EMU_PAGE_MARK)
            return true;
    }
    return false;
}

/* Lock held: the stream's own GCM handles, cloned from the session keys. */
static int
cocoEmuStreamKey(CocoEmu *emu, uint32_t stream, bool enc, CocoCryptoKey **key)
{
    CocoEmuStream *s = &emu->streams[stream];
    CocoCryptoKey *src = enc ? &emu->enc : &emu->dec;
    CocoCryptoKey *dst = enc ? &s->enc : &s->dec;

    if (!dst->set && (!src->set || cocoCryptoKeySet(dst, src->key, NULL) < 0))
        return -1;
    *key = dst;
    return 0;
}

/* Lock held: end a reservation taken in step 1. */
static void
cocoEmuStreamRelease(CocoEmu *emu, uint32_t stream)
{
    emu->streams[stream].busy = false;
    emu->inflight--;
    g_cond_broadcast(&emu->cond);
}

/*
 * Destination, unlocked, before pages are written: reserve the backing of
 * the runs of @gfns that have none yet (fallocate: the file system says
 * ENOSPC now instead of a SIGBUS at the first write) and map the runs in
 * one call each (MADV_POPULATE_WRITE: no page fault per page; it fails
 * with an error where a fault would raise SIGBUS). Returns 0 or an errno.
 */
static int
cocoEmuBackPages(CocoEmu *emu, const uint64_t *gfns, uint64_t n, bool populate)
{
    uint64_t i = 0;

    if (emu->fd < 0)
        return 0;
    while (i < n) {
        uint64_t j = i + 1;
        bool reserved =
            __atomic_load_n(&emu->pflags[gfns[i]], __ATOMIC_RELAXED) &
            COCO_EMU_FLAG_RESERVED;
        size_t len;
        uint8_t *addr = emu->mem + gfns[i] * COCO_EMU_PAGE_SIZE;

        while (j < n && gfns[j] == gfns[j - 1] + 1) {
            reserved &=
                !!(__atomic_load_n(&emu->pflags[gfns[j]], __ATOMIC_RELAXED) &
                   COCO_EMU_FLAG_RESERVED);
            j++;
        }
        len = (j - i) * COCO_EMU_PAGE_SIZE;
        if (!reserved &&
            fallocate(emu->fd, 0,
                      (off_t)(emu->fd_offset + gfns[i] * COCO_EMU_PAGE_SIZE),
                      (off_t)len) < 0 &&
            errno != EOPNOTSUPP)
            return errno;
        if (populate && madvise(addr, len, MADV_POPULATE_WRITE) < 0 &&
            errno != EINVAL)
            return errno;
        i = j;
    }
    return 0;
}

/*
 * Write @n decrypted pages (@pages, in the order of @gfns) into the RAM
 * file with pwrite(), one call per run of consecutive gfns: the kernel
 * copies them into the file's pages without faulting each one into this
 * process's mapping, which costs more than decrypting the page (a first
 * write through a shared mapping: 12 µs per page on the lab machine,
 * against 0.5 µs through pwrite; docs/performance.rst). Only for a file
 * that takes pwrite() at the pages' offsets (cocoEmuAttachMemoryFd() sets
 * fd_nowrite otherwise). Returns 0 or an errno.
 */
static int
cocoEmuWritePages(CocoEmu *emu, const uint64_t *gfns, uint64_t n,
                  const uint8_t *pages)
{
    uint64_t i = 0;

    while (i < n) {
        uint64_t j = i + 1;
        const uint8_t *from = pages + i * COCO_EMU_PAGE_SIZE;
        size_t len;
        off_t off;

        while (j < n && gfns[j] == gfns[j - 1] + 1)
            j++;
        len = (j - i) * COCO_EMU_PAGE_SIZE;
        off = (off_t)(emu->fd_offset + gfns[i] * COCO_EMU_PAGE_SIZE);
        while (len > 0) {
            ssize_t w = pwrite(emu->fd, from, len, off);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return w < 0 ? errno : EIO;
            from += w;
            off += w;
            len -= (size_t)w;
        }
        i = j;
    }
    return 0;
}

static int
cocoEmuExportMemory(CocoFirmware *fw, uint32_t stream, const uint64_t *gfns,
                    uint32_t ngfns, uint8_t *gfn_status, void *vbuf,
                    size_t *buflen, CocoFirmwareStatus *status, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    uint8_t *buf = vbuf;
    size_t cap = buf && buflen ? *buflen : 0;
    size_t needed = cocoEmuMemoryBundleSize(ngfns);
    bool post;
    CocoEmuBundleHeader h = {0};
    CocoEmuStream *s;
    CocoCryptoKey *key = NULL;
    uint8_t *gl;
    uint8_t *macs;
    uint8_t *pages;
    uint32_t i;
    uint32_t bad = 0;
    uint32_t failed = ngfns;
    bool hdrfail = false;
    bool direct;
    bool live;
    int err = 0;
    int ret = 0;
    CocoEmuStatusClass cls = COCO_EMU_ST_SUCCESS;
    uint64_t badgfn = 0;
    uint8_t badst = COCO_EMU_GFN_OK;

    g_mutex_lock(&emu->lock);
    if (buflen)
        *buflen = 0;
    while (emu->quiescing ||
           (stream < emu->nstreams && emu->streams[stream].busy) ||
           (gfns && ngfns <= COCO_EMU_MAX_GFNS && emu->pstate &&
            cocoEmuPagesBusy(emu, gfns, ngfns)))
        g_cond_wait(&emu->cond, &emu->lock);
    post = emu->op == COCO_EMU_OP_POST_EXPORT;
    if (!cocoEmuIn(emu->op, 3, COCO_EMU_OP_LIVE_EXPORT,
                   COCO_EMU_OP_PAUSED_EXPORT, COCO_EMU_OP_POST_EXPORT)) {
        ret = cocoEmuStateFail(emu, status, "export-memory", error);
        goto unlock;
    }
    if (stream >= emu->nstreams) {
        ret = cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                          error,
                          _("stream '%1$u' is not a forward stream (0..%2$u)"),
                          stream, emu->nstreams - 1);
        goto unlock;
    }
    if (ngfns == 0 || ngfns > COCO_EMU_MAX_GFNS || !gfns) {
        ret = cocoEmuFail(
            emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND, error,
            _("a memory bundle carries 1..512 pages, not %1$u"), ngfns);
        goto unlock;
    }
    if (cap < needed) {
        ret = cocoEmuShortBuffer(emu, status, "export-memory", cap, needed,
                                 error);
        goto unlock;
    }

    /* Check every page first: the call either exports all or none. */
    for (i = 0; i < ngfns; i++) {
        uint64_t g = gfns[i];
        uint8_t st = COCO_EMU_GFN_OK;

        if (g < emu->npages && emu->pstate[g] == COCO_EMU_PAGE_ABSENT &&
            cocoEmuPagePresent(emu, g))
            emu->pstate[g] = COCO_EMU_PAGE_MAPPED; /* touched since */
        if (g >= emu->npages) {
            st = COCO_EMU_GFN_OUT_OF_RANGE;
        } else if (emu->pstate[g] & COCO_EMU_PAGE_MARK) {
            st = COCO_EMU_GFN_DUPLICATE;
        } else if (emu->pstate[g] == COCO_EMU_PAGE_ABSENT) {
            st = COCO_EMU_GFN_NOT_MAPPED;
        } else if (emu->pstate[g] == COCO_EMU_PAGE_EXPORTED ||
                   (post && emu->pstate[g] != COCO_EMU_PAGE_MAPPED)) {
            st = COCO_EMU_GFN_STATE_INCORRECT;
        } else if (emu->pstate[g] == COCO_EMU_PAGE_EXPORTED_DIRTY &&
                   emu->pepoch[g] == emu->epoch) {
            st = COCO_EMU_GFN_MIGRATED_IN_CURRENT_EPOCH;
        }
        if (st == COCO_EMU_GFN_OK) {
            emu->pstate[g] |= COCO_EMU_PAGE_MARK;
        } else if (bad++ == 0) {
            badgfn = g;
            badst = st;
            switch (st) {
            case COCO_EMU_GFN_OUT_OF_RANGE:
            case COCO_EMU_GFN_DUPLICATE:
                err = -EINVAL;
                cls = COCO_EMU_ST_INVALID_OPERAND;
                break;
            case COCO_EMU_GFN_STATE_INCORRECT:
            case COCO_EMU_GFN_NOT_MAPPED:
                err = -EPERM;
                cls = COCO_EMU_ST_PAGE_STATE_INCORRECT;
                break;
            default:
                err = -EPERM;
                cls = COCO_EMU_ST_MIGRATED_IN_CURRENT_EPOCH;
                break;
            }
        }
        if (gfn_status)
            gfn_status[i] = st;
    }
    if (bad) {
        for (i = 0; i < ngfns; i++) {
            if (gfn_status && gfn_status[i] == COCO_EMU_GFN_OK)
                gfn_status[i] = COCO_EMU_GFN_SKIPPED;
            if (gfns[i] < emu->npages)
                emu->pstate[gfns[i]] &= ~COCO_EMU_PAGE_MARK;
        }
        if (badst == COCO_EMU_GFN_NOT_MAPPED)
            ret = cocoEmuFail(
                emu, status, err, cls, error,
                _("page '%1$llu' cannot be exported: the guest never used it (%2$u of %3$u pages refused)"),
                (unsigned long long)badgfn, bad, ngfns);
        else if (cls == COCO_EMU_ST_PAGE_STATE_INCORRECT)
            ret = cocoEmuFail(
                emu, status, err, cls, error,
                _("page '%1$llu' cannot be exported again: it is exported and not dirty (%2$u of %3$u pages refused)"),
                (unsigned long long)badgfn, bad, ngfns);
        else if (cls == COCO_EMU_ST_MIGRATED_IN_CURRENT_EPOCH)
            ret = cocoEmuFail(
                emu, status, err, cls, error,
                _("page '%1$llu' was already exported in epoch %2$u; a newer copy needs a later epoch (%3$u of %4$u pages refused)"),
                (unsigned long long)badgfn, emu->epoch, bad, ngfns);
        else
            ret = cocoEmuFail(
                emu, status, err, cls, error,
                _("gfn '%1$llu' is outside guest memory or listed twice (%2$u of %3$u pages refused)"),
                (unsigned long long)badgfn, bad, ngfns);
        goto unlock;
    }
    if (cocoEmuStreamKey(emu, stream, true, &key) < 0) {
        for (i = 0; i < ngfns; i++)
            emu->pstate[gfns[i]] &= ~COCO_EMU_PAGE_MARK;
        ret = cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                          error, _("cannot set up the cipher of stream '%1$u'"),
                          stream);
        goto unlock;
    }

    h.size = needed;
    h.version = COCO_EMU_BUNDLE_VERSION;
    h.stream = stream;
    h.type = COCO_EMU_BUNDLE_MEMORY;
    h.counter = post ? 0 : emu->counter[stream];
    h.epoch = emu->epoch;
    h.iv_counter = emu->iv[stream];
    h.specific = ngfns;
    /* While the write log holds, a write during the seal is in its next
     * read: the pages are sealed straight from guest memory, unhashed. */
    direct = emu->wlog && !emu->wlog_lost;
    s = &emu->streams[stream];
    s->busy = true;
    emu->inflight++;
    g_mutex_unlock(&emu->lock);

    /* Step 2, unlocked: the pages are ours (MARK) and so is the stream. */
    gl = buf + COCO_EMU_HEADER_SIZE;
    macs = gl + (size_t)ngfns * COCO_EMU_GFN_ENTRY;
    pages = macs + (size_t)ngfns * COCO_EMU_MAC_ENTRY;
    for (i = 0; i < ngfns; i++) {
        uint64_t le = GUINT64_TO_LE(gfns[i]);
        uint8_t iv[COCO_CRYPTO_IV_LEN];
        uint8_t *page = emu->mem + gfns[i] * COCO_EMU_PAGE_SIZE;
        size_t room = (size_t)(ngfns - i) * COCO_EMU_PAGE_SIZE;
        uint8_t *in = s->page;

        memcpy(gl + (size_t)i * COCO_EMU_GFN_ENTRY, &le, sizeof(le));
        /* Without the log, one private snapshot of the page (the guest may
         * write it meanwhile), hashed and encrypted alike. The last page
         * is sealed in place (no room for its tag), so never the guest's
         * own. The host's buffer only ever sees ciphertext. */
        if (!direct)
            s->hashes[i] = cocoPageHashCopy(s->page, page, emu->hash_key);
        else if (room < COCO_EMU_PAGE_SIZE + COCO_CRYPTO_TAG_LEN)
            memcpy(s->page, page, COCO_EMU_PAGE_SIZE);
        else
            in = page;
        cocoEmuIv(h.iv_counter, stream, (uint16_t)(i + 1), iv);
        /* Straight into the bundle; the tag lands at the start of the next
         * page's slot before that page overwrites it. */
        if (cocoCryptoSealTo(key, iv, &le, sizeof(le), in, COCO_EMU_PAGE_SIZE,
                             pages + (size_t)i * COCO_EMU_PAGE_SIZE, room,
                             macs + (size_t)i * COCO_EMU_MAC_ENTRY) < 0) {
            failed = i;
            break;
        }
    }
    gnutls_memset(s->page, 0, COCO_EMU_PAGE_SIZE);
    if (failed == ngfns &&
        cocoEmuHeaderSeal(key, &h, stream, gl,
                          (size_t)ngfns * COCO_EMU_GFN_ENTRY, buf) < 0)
        hdrfail = true;

    /* Step 3: commit. */
    g_mutex_lock(&emu->lock);
    cocoEmuStreamRelease(emu, stream);
    if (failed < ngfns || hdrfail) {
        for (i = 0; i < ngfns; i++)
            emu->pstate[gfns[i]] &= ~COCO_EMU_PAGE_MARK;
        if (hdrfail)
            ret = cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                              error, _("cannot seal the bundle header"));
        else
            ret = cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                              error, _("cannot seal page '%1$llu'"),
                              (unsigned long long)gfns[failed]);
        goto unlock;
    }
    live = emu->op == COCO_EMU_OP_LIVE_EXPORT;
    for (i = 0; i < ngfns; i++) {
        uint64_t g = gfns[i];

        if ((emu->pstate[g] & ~COCO_EMU_PAGE_MARK) ==
            COCO_EMU_PAGE_EXPORTED_DIRTY)
            emu->dirty_count--;
        emu->pepoch[g] = emu->epoch;
        /* Sealed unhashed, the log lost since: the seal may have missed a
         * write nothing recorded. The page goes again. */
        if (direct && live && emu->wlog_lost) {
            emu->pflags[g] = 0;
            __atomic_store_n(&emu->pstate[g], COCO_EMU_PAGE_EXPORTED_DIRTY,
                             __ATOMIC_RELAXED);
            emu->dirty_count++;
            continue;
        }
        if (!direct)
            __atomic_store_n(&emu->phash[g], s->hashes[i], __ATOMIC_RELAXED);
        __atomic_store_n(&emu->pstate[g], COCO_EMU_PAGE_EXPORTED,
                         __ATOMIC_RELAXED);
        /* Exported while the VM is stopped: the copy is the last one. */
        emu->pflags[g] = (live ? 0 : COCO_EMU_FLAG_VERIFIED) |
                         (direct ? COCO_EMU_FLAG_UNHASHED : 0);
    }
    emu->iv[stream]++;
    if (!post)
        emu->counter[stream]++;
    emu->total++;
    *buflen = needed;

unlock:
    g_mutex_unlock(&emu->lock);
    return ret;
}

static int
cocoEmuImportMemory(CocoFirmware *fw, uint32_t stream, const void *vbuf,
                    size_t buflen, CocoFirmwareStatus *status, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    const uint8_t *buf = vbuf;
    bool inorder;
    bool direct;
    CocoEmuOpState op;
    CocoEmuBundleHeader h;
    CocoEmuStream *s;
    CocoCryptoKey *key = NULL;
    const uint8_t *gl = NULL;
    const uint8_t *macs;
    const uint8_t *pages;
    uint64_t n = 0;
    uint64_t i;
    uint64_t checked;
    uint64_t failed;
    uint64_t *gfns = NULL;
    bool viafile;
    int backerr;
    int ret = 0;

    g_mutex_lock(&emu->lock);
    for (;;) {
        while (emu->quiescing ||
               (stream < emu->nstreams && emu->streams[stream].busy))
            g_cond_wait(&emu->cond, &emu->lock);
        /* Wait for another stream's in-flight import of one of our pages;
         * the header decides which pages those are. */
        if (!buf || buflen < COCO_EMU_HEADER_SIZE || !emu->pstate)
            break;
        cocoEmuHeaderUnpack(buf, &h);
        n = h.specific;
        if (n == 0 || n > COCO_EMU_MAX_GFNS ||
            buflen != cocoEmuMemoryBundleSize(n))
            break;
        gfns = g_renew(uint64_t, gfns, n);
        for (i = 0; i < n; i++) {
            uint64_t g;

            memcpy(&g, buf + COCO_EMU_HEADER_SIZE + i * COCO_EMU_GFN_ENTRY, 8);
            gfns[i] = GUINT64_FROM_LE(g);
        }
        if (!cocoEmuPagesBusy(emu, gfns, n))
            break;
        g_cond_wait(&emu->cond, &emu->lock);
    }
    inorder = cocoEmuIn(emu->op, 2, COCO_EMU_OP_MEMORY_IMPORT,
                        COCO_EMU_OP_STATE_IMPORT);
    op = emu->op;

    if (!inorder && !cocoEmuIn(emu->op, 2, COCO_EMU_OP_POST_IMPORT,
                               COCO_EMU_OP_LIVE_IMPORT)) {
        ret = cocoEmuStateFail(emu, status, "import-memory", error);
        goto cleanup;
    }
    if (stream >= emu->nstreams) {
        ret = cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                          error,
                          _("stream '%1$u' is not a forward stream (0..%2$u)"),
                          stream, emu->nstreams - 1);
        goto cleanup;
    }
    if (!buf || buflen < COCO_EMU_HEADER_SIZE) {
        ret = cocoEmuImportFail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD, error,
            _("bundle of %1$zu bytes is shorter than its header"), buflen);
        goto cleanup;
    }
    cocoEmuHeaderUnpack(buf, &h);
    n = h.specific;
    if (h.stream != stream || n == 0 || n > COCO_EMU_MAX_GFNS ||
        buflen != cocoEmuMemoryBundleSize(n)) {
        ret = cocoEmuImportFail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD, error,
            _("malformed memory bundle: stream %1$u (received on %2$u), %3$llu pages, %4$zu bytes"),
            h.stream, stream, (unsigned long long)n, buflen);
        goto cleanup;
    }
    gl = buf + COCO_EMU_HEADER_SIZE;
    macs = gl + n * COCO_EMU_GFN_ENTRY;
    pages = macs + n * COCO_EMU_MAC_ENTRY;
    if ((ret = cocoEmuCheckHeader(emu, status, &emu->dec, stream, &h, buflen,
                                  COCO_EMU_BUNDLE_MEMORY, gl,
                                  n * COCO_EMU_GFN_ENTRY, true, error)) < 0)
        goto cleanup;
    if (inorder) {
        if ((ret = cocoEmuCheckSequence(emu, status, &h, error)) < 0)
            goto cleanup;
    } else if (h.epoch != COCO_EMU_EPOCH_OUT_OF_ORDER) {
        ret = cocoEmuImportFail(
            emu, status, -EPROTO, COCO_EMU_ST_EPOCH_MISMATCH, error,
            _("bundle of epoch %1$u arrived after the start token (reordered across an epoch token)"),
            h.epoch);
        goto cleanup;
    }

    /* Page rules, then every page MAC, before anything is written. */
    gfns = g_renew(uint64_t, gfns, n);
    for (i = 0; i < n; i++) {
        uint64_t g;

        memcpy(&g, gl + i * COCO_EMU_GFN_ENTRY, 8);
        g = GUINT64_FROM_LE(g);
        gfns[i] = g;
        if (g >= emu->npages) {
            ret = cocoEmuImportFail(
                emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD, error,
                _("gfn '%1$llu' is outside guest memory of %2$llu pages"),
                (unsigned long long)g, (unsigned long long)emu->npages);
            break;
        }
        if (emu->pstate[g] & COCO_EMU_PAGE_MARK ||
            (inorder && emu->pstate[g] == COCO_EMU_PAGE_IMPORTED &&
             emu->pepoch[g] == emu->epoch)) {
            ret = cocoEmuImportFail(
                emu, status, -EPROTO, COCO_EMU_ST_MIGRATED_IN_CURRENT_EPOCH,
                error, _("page '%1$llu' was already imported in epoch %2$u"),
                (unsigned long long)g, h.epoch);
            break;
        }
        if (!inorder && emu->pstate[g] == COCO_EMU_PAGE_IMPORTED) {
            ret = cocoEmuImportFail(
                emu, status, -EPROTO, COCO_EMU_ST_PAGE_ALREADY_IMPORTED, error,
                _("page '%1$llu' was already imported; after the start token only missing pages may come"),
                (unsigned long long)g);
            break;
        }
        emu->pstate[g] |= COCO_EMU_PAGE_MARK;
    }
    if (ret == 0 && cocoEmuStreamKey(emu, stream, false, &key) < 0)
        ret = cocoEmuImportFail(
            emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND, error,
            _("cannot set up the cipher of stream '%1$u'"), stream);
    if (ret < 0) {
        for (checked = i, i = 0; i < checked && i < n; i++)
            emu->pstate[gfns[i]] &= ~COCO_EMU_PAGE_MARK;
        /* The failure may have waited for in-flight calls (key clearing)
         * with these marks set: wake whoever waits for these pages. */
        g_cond_broadcast(&emu->cond);
        goto cleanup;
    }
    s = &emu->streams[stream];
    s->busy = true;
    emu->inflight++;
    /* Before the commit (live-import) a failed import leaves the VM
     * running, so pages go through a bounce buffer and reach guest memory
     * only once all verified. Before it, any failure fails the VM for good
     * (only teardown remains, as with TDX), so pages are decrypted in place
     * in guest memory: the pages are reserved and the guest does not run
     * them before they are imported. */
    direct = op != COCO_EMU_OP_LIVE_IMPORT;
    /* With a RAM file, "in place" means through the file: the pages are
     * decrypted into the bounce buffer and written with pwrite()
     * (cocoEmuWritePages()). */
    viafile = direct && emu->fd >= 0 && !emu->fd_nowrite;
    if ((!direct || viafile) && s->bounce_pages < n) {
        g_free(s->bounce);
        s->bounce_pages = !direct ? COCO_EMU_MAX_GFNS : (uint32_t)n;
        s->bounce = g_malloc((size_t)s->bounce_pages * COCO_EMU_PAGE_SIZE);
    }
    g_mutex_unlock(&emu->lock);

    /* Step 2, unlocked: the pages' backing, then decrypt and verify page
     * by page, straight from the bundle into the guest page (or the
     * bounce buffer: before the commit, or on the way to the RAM file). */
    failed = n;
    backerr = cocoEmuBackPages(emu, gfns, n, !viafile);
    for (i = 0; backerr == 0 && i < n; i++) {
        uint8_t *to = direct && !viafile
                          ? emu->mem + gfns[i] * COCO_EMU_PAGE_SIZE
                          : s->bounce + i * COCO_EMU_PAGE_SIZE;
        uint8_t iv[COCO_CRYPTO_IV_LEN];

        cocoEmuIv(h.iv_counter, stream, (uint16_t)(i + 1), iv);
        /* The bundle's next bytes (the next page) serve as the tag's slot
         * and are restored: IMPORT_MEMORY may use its buffer as scratch. */
        if (cocoCryptoOpenTo(key, iv, gl + i * COCO_EMU_GFN_ENTRY,
                             COCO_EMU_GFN_ENTRY,
                             (uint8_t *)pages + i * COCO_EMU_PAGE_SIZE,
                             COCO_EMU_PAGE_SIZE, (n - i) * COCO_EMU_PAGE_SIZE,
                             to, macs + i * COCO_EMU_MAC_ENTRY) < 0) {
            failed = i;
            break;
        }
    }
    if (viafile && backerr == 0 && failed == n)
        backerr = cocoEmuWritePages(emu, gfns, n, s->bounce);

    /* Step 3: commit, unless another import failed the VM meanwhile. */
    g_mutex_lock(&emu->lock);
    cocoEmuStreamRelease(emu, stream);
    if (emu->op != op || failed < n || backerr) {
        for (i = 0; i < n; i++)
            emu->pstate[gfns[i]] &= ~COCO_EMU_PAGE_MARK;
        if (!direct || viafile)
            gnutls_memset(s->bounce, 0, n * COCO_EMU_PAGE_SIZE);
        if (emu->op != op)
            ret = cocoEmuStateFail(emu, status, "import-memory", error);
        else if (backerr)
            ret = cocoEmuImportFail(
                emu, status, -backerr, COCO_EMU_ST_NO_BACKING, error,
                _("no memory for the guest's pages in '%1$s' (gfn %2$llu..%3$llu): %4$s"),
                emu->path, (unsigned long long)gfns[0],
                (unsigned long long)gfns[n - 1], g_strerror(backerr));
        else
            ret = cocoEmuImportFail(
                emu, status, -EBADMSG, COCO_EMU_ST_INVALID_PAGE_MAC, error,
                _("page '%1$llu' does not verify (tampered)"),
                (unsigned long long)gfns[failed]);
        goto cleanup;
    }
    for (i = 0; i < n; i++) {
        if (!direct)
            memcpy(emu->mem + gfns[i] * COCO_EMU_PAGE_SIZE,
                   s->bounce + i * COCO_EMU_PAGE_SIZE, COCO_EMU_PAGE_SIZE);
        emu->pflags[gfns[i]] |= COCO_EMU_FLAG_RESERVED;
        emu->pstate[gfns[i]] = COCO_EMU_PAGE_IMPORTED;
        emu->pepoch[gfns[i]] = h.epoch;
    }
    if (inorder) {
        emu->counter[stream]++;
        emu->total++;
    }

cleanup:
    g_mutex_unlock(&emu->lock);
    g_free(gfns);
    return ret;
}

/* ---- tokens ------------------------------------------------------------ */

static int
cocoEmuTokenExport(CocoEmu *emu, uint32_t flags, uint8_t *buf, size_t *buflen,
                   CocoFirmwareStatus *status, GError **error)
{
    bool start = flags & COCO_MIGRATE_TOKEN_START;
    size_t cap = buf ? *buflen : 0;
    CocoEmuBundleHeader h = {0};
    int ret;

    *buflen = 0;
    if (start ? emu->op != COCO_EMU_OP_PAUSED_EXPORT
              : !cocoEmuIn(emu->op, 2, COCO_EMU_OP_LIVE_EXPORT,
                           COCO_EMU_OP_PAUSED_EXPORT))
        return cocoEmuStateFail(emu, status,
                                start ? "start token" : "epoch token", error);
    if (cap < COCO_EMU_TOKEN_SIZE)
        return cocoEmuShortBuffer(emu, status, "token", cap,
                                  COCO_EMU_TOKEN_SIZE, error);
    if (start) {
        if (emu->nvcpus_done != emu->nvcpus)
            return cocoEmuFail(
                emu, status, -EPERM, COCO_EMU_ST_SOME_VCPUS_NOT_MIGRATED, error,
                _("start token refused: %1$u of %2$u vCPUs exported"),
                emu->nvcpus_done, emu->nvcpus);
        /* The check of the exported pages first: it makes pages dirty when
         * the write log is found lost. */
        if ((ret = cocoEmuVerifyExported(emu, status, "start token", error)) <
            0)
            return ret;
        if (emu->dirty_count && emu->wlog_lost)
            return cocoEmuFail(
                emu, status, -EPERM, COCO_EMU_ST_EXPORTED_DIRTY_PAGES_REMAIN,
                error,
                _("start token refused: %1$llu dirty pages must be exported first (the write log was lost: %2$s)"),
                (unsigned long long)emu->dirty_count, emu->wlog_lost);
        if (emu->dirty_count)
            return cocoEmuFail(
                emu, status, -EPERM, COCO_EMU_ST_EXPORTED_DIRTY_PAGES_REMAIN,
                error,
                _("start token refused: %1$llu dirty pages must be exported first"),
                (unsigned long long)emu->dirty_count);
    } else if (emu->epoch >= COCO_EMU_EPOCH_MAX) {
        return cocoEmuFail(emu, status, -EPERM, COCO_EMU_ST_EPOCH_OVERFLOW,
                           error, _("epoch counter exhausted at %1$u"),
                           emu->epoch);
    }

    h.size = COCO_EMU_TOKEN_SIZE;
    h.version = COCO_EMU_BUNDLE_VERSION;
    h.type = COCO_EMU_BUNDLE_EPOCH_TOKEN;
    h.epoch = start ? COCO_EMU_EPOCH_OUT_OF_ORDER : emu->epoch + 1;
    h.iv_counter = emu->iv[0];
    h.specific = emu->total + 1;
    if (cocoEmuHeaderSeal(&emu->enc, &h, 0, NULL, 0, buf) < 0)
        return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                           error, _("cannot seal the token"));
    emu->iv[0]++;
    emu->total++;
    emu->epoch = h.epoch;
    if (start)
        emu->op = COCO_EMU_OP_POST_EXPORT;
    *buflen = COCO_EMU_TOKEN_SIZE;
    return 0;
}

static int
cocoEmuTokenImport(CocoEmu *emu, uint32_t flags, const uint8_t *buf,
                   size_t buflen, CocoFirmwareStatus *status, GError **error)
{
    bool start = flags & COCO_MIGRATE_TOKEN_START;
    CocoEmuBundleHeader h;
    int ret;

    if (!cocoEmuIn(emu->op, 2, COCO_EMU_OP_MEMORY_IMPORT,
                   COCO_EMU_OP_STATE_IMPORT))
        return cocoEmuStateFail(emu, status, "token", error);
    if (!buf || buflen != COCO_EMU_TOKEN_SIZE)
        return cocoEmuImportFail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD, error,
            _("a token is %1$d bytes, not %2$zu"), COCO_EMU_TOKEN_SIZE, buflen);
    cocoEmuHeaderUnpack(buf, &h);
    if ((ret = cocoEmuCheckHeader(emu, status, &emu->dec, h.stream, &h, buflen,
                                  COCO_EMU_BUNDLE_EPOCH_TOKEN, NULL, 0, true,
                                  error)) < 0)
        return ret;
    if (h.stream != 0 || h.counter != 0)
        return cocoEmuImportFail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD, error,
            _("malformed token: stream %1$u, counter %2$u"), h.stream,
            h.counter);
    if (start != (h.epoch == COCO_EMU_EPOCH_OUT_OF_ORDER))
        return cocoEmuFail(
            emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND, error,
            _("the token is for epoch %1$u but the start flag is '%2$s'"),
            h.epoch, start ? "set" : "clear");
    if (h.epoch <= emu->epoch)
        return cocoEmuImportFail(
            emu, status, -EPROTO, COCO_EMU_ST_EPOCH_NOT_INCREASING, error,
            _("token for epoch %1$u arrived in epoch %2$u (replayed or reordered)"),
            h.epoch, emu->epoch);
    if (start && (emu->op != COCO_EMU_OP_STATE_IMPORT ||
                  emu->nvcpus_done != emu->nvcpus))
        return cocoEmuImportFail(
            emu, status, -EPERM, COCO_EMU_ST_SOME_VCPUS_NOT_MIGRATED, error,
            _("start token before all vCPUs were imported (%1$u of %2$u)"),
            emu->nvcpus_done, emu->nvcpus);
    if (h.specific != emu->total + 1)
        return cocoEmuImportFail(
            emu, status, -EPROTO, COCO_EMU_ST_TOTAL_BUNDLES_MISMATCH, error,
            _("the token counts %1$llu bundles but %2$llu arrived (bundles were dropped)"),
            (unsigned long long)h.specific,
            (unsigned long long)(emu->total + 1));
    emu->total++;
    emu->epoch = h.epoch;
    if (start)
        emu->op = COCO_EMU_OP_POST_IMPORT;
    return 0;
}

/* ---- vCPUs -------------------------------------------------------------- */

/* vCPU bundle payload: u32 TD-state length, TD state (vCPU 0 only), u32
 * vCPU-state length, vCPU state; then its 16-byte tag. */
static int
cocoEmuExportVcpu(CocoFirmware *fw, unsigned int vcpu, void *vbuf,
                  size_t *buflen, CocoFirmwareStatus *status, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);
    uint8_t *buf = vbuf;
    size_t cap = buf && buflen ? *buflen : 0;
    size_t tdlen = vcpu == 0 ? COCO_EMU_TD_STATE_LEN : 0;
    size_t plen;
    size_t needed;
    CocoEmuBundleHeader h = {0};
    uint8_t iv[COCO_CRYPTO_IV_LEN];
    uint8_t *p;
    uint32_t le;
    bool sealed;

    cocoEmuQuiesce(emu);

    if (buflen)
        *buflen = 0;
    if (emu->op != COCO_EMU_OP_PAUSED_EXPORT)
        return cocoEmuStateFail(emu, status, "export-vcpu", error);
    if (vcpu >= emu->nvcpus)
        return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                           error, _("vCPU '%1$u' does not exist"), vcpu);
    if (emu->vcpu_done[vcpu])
        return cocoEmuFail(emu, status, -EEXIST,
                           COCO_EMU_ST_VCPU_ALREADY_EXPORTED, error,
                           _("vCPU '%1$u' was already exported"), vcpu);
    if (vcpu != 0 && !emu->vcpu_done[0])
        return cocoEmuFail(
            emu, status, -EPERM, COCO_EMU_ST_TD_STATE_FIRST, error,
            _("vCPU '%1$u' cannot go before vCPU 0, which carries the TD state"),
            vcpu);
    plen = 8 + tdlen + emu->vcpu_len[vcpu];
    needed = COCO_EMU_HEADER_SIZE + plen + COCO_EMU_TAG_SIZE;
    if (cap < needed)
        return cocoEmuShortBuffer(emu, status, "export-vcpu", cap, needed,
                                  error);

    /* Sealed in a private buffer: the host only sees ciphertext. */
    p = g_malloc(plen + COCO_EMU_TAG_SIZE);
    le = GUINT32_TO_LE(tdlen);
    memcpy(p, &le, 4);
    memcpy(p + 4, emu->td_state, tdlen);
    le = GUINT32_TO_LE(emu->vcpu_len[vcpu]);
    memcpy(p + 4 + tdlen, &le, 4);
    memcpy(p + 8 + tdlen, emu->vcpu_state[vcpu], emu->vcpu_len[vcpu]);

    h.size = needed;
    h.version = COCO_EMU_BUNDLE_VERSION;
    h.type = COCO_EMU_BUNDLE_VCPU;
    h.counter = emu->counter[0];
    h.epoch = emu->epoch;
    h.iv_counter = emu->iv[0];
    h.specific = vcpu;
    cocoEmuIv(h.iv_counter, 0, 1, iv);
    sealed = cocoCryptoSeal(&emu->enc, iv, NULL, 0, NULL, 0, p, plen,
                            p + plen) == 0 &&
             cocoEmuHeaderSeal(&emu->enc, &h, 0, NULL, 0, buf) == 0;
    if (sealed)
        memcpy(buf + COCO_EMU_HEADER_SIZE, p, plen + COCO_EMU_TAG_SIZE);
    gnutls_memset(p, 0, plen + COCO_EMU_TAG_SIZE);
    g_free(p);
    if (!sealed)
        return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                           error, _("cannot seal the state of vCPU '%1$u'"),
                           vcpu);
    emu->counter[0]++;
    emu->iv[0]++;
    emu->total++;
    emu->vcpu_done[vcpu] = true;
    emu->nvcpus_done++;
    *buflen = needed;
    return 0;
}

static int
cocoEmuImportVcpu(CocoFirmware *fw, unsigned int vcpu, const void *vbuf,
                  size_t buflen, CocoFirmwareStatus *status, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);
    const uint8_t *buf = vbuf;
    g_autofree uint8_t *p = NULL;
    CocoEmuBundleHeader h;
    uint8_t iv[COCO_CRYPTO_IV_LEN];
    size_t plen;
    uint32_t tdlen;
    uint32_t vlen;
    int ret;

    cocoEmuQuiesce(emu);

    if (!cocoEmuIn(emu->op, 2, COCO_EMU_OP_MEMORY_IMPORT,
                   COCO_EMU_OP_STATE_IMPORT))
        return cocoEmuStateFail(emu, status, "import-vcpu", error);
    if (vcpu >= emu->nvcpus)
        return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                           error, _("vCPU '%1$u' does not exist"), vcpu);
    if (emu->op == COCO_EMU_OP_MEMORY_IMPORT && vcpu != 0)
        return cocoEmuFail(
            emu, status, -EPERM, COCO_EMU_ST_TD_STATE_FIRST, error,
            _("vCPU '%1$u' cannot go before vCPU 0, which carries the TD state"),
            vcpu);
    if (!buf || buflen < COCO_EMU_HEADER_SIZE + 8 + COCO_EMU_TAG_SIZE)
        return cocoEmuImportFail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD, error,
            _("vCPU bundle of %1$zu bytes is too short"), buflen);
    cocoEmuHeaderUnpack(buf, &h);
    if ((ret = cocoEmuCheckHeader(emu, status, &emu->dec, h.stream, &h, buflen,
                                  COCO_EMU_BUNDLE_VCPU, NULL, 0, true, error)) <
        0)
        return ret;
    if (h.stream != 0 || h.specific != vcpu)
        return cocoEmuImportFail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD, error,
            _("vCPU bundle for vCPU %1$llu on stream %2$u given as vCPU %3$u"),
            (unsigned long long)h.specific, h.stream, vcpu);
    if ((ret = cocoEmuCheckSequence(emu, status, &h, error)) < 0)
        return ret;
    if (emu->vcpu_done[vcpu])
        return cocoEmuImportFail(emu, status, -EEXIST,
                                 COCO_EMU_ST_VCPU_ALREADY_IMPORTED, error,
                                 _("vCPU '%1$u' was already imported"), vcpu);

    plen = buflen - COCO_EMU_HEADER_SIZE - COCO_EMU_TAG_SIZE;
    p = g_memdup2(buf + COCO_EMU_HEADER_SIZE, plen);
    cocoEmuIv(h.iv_counter, 0, 1, iv);
    if (cocoCryptoOpen(&emu->dec, iv, NULL, 0, NULL, 0, p, plen,
                       buf + COCO_EMU_HEADER_SIZE + plen) < 0)
        return cocoEmuImportFail(
            emu, status, -EBADMSG, COCO_EMU_ST_INVALID_PAGE_MAC, error,
            _("the state of vCPU '%1$u' does not verify (tampered)"), vcpu);
    memcpy(&tdlen, p, 4);
    tdlen = GUINT32_FROM_LE(tdlen);
    vlen = 0;
    if (tdlen == (vcpu == 0 ? COCO_EMU_TD_STATE_LEN : 0) &&
        plen >= 8 + (size_t)tdlen) {
        memcpy(&vlen, p + 4 + tdlen, 4);
        vlen = GUINT32_FROM_LE(vlen);
    }
    if (vlen == 0 || vlen > COCO_EMU_VCPU_STATE_MAX ||
        plen != 8 + (size_t)tdlen + vlen)
        return cocoEmuImportFail(emu, status, -EBADMSG,
                                 COCO_EMU_ST_INVALID_MBMD, error,
                                 _("malformed state of vCPU '%1$u'"), vcpu);
    if (vcpu == 0) {
        memcpy(emu->td_state, p + 4, COCO_EMU_TD_STATE_LEN);
        emu->has_td_state = true;
        emu->op = COCO_EMU_OP_STATE_IMPORT;
    }
    g_free(emu->vcpu_state[vcpu]);
    emu->vcpu_state[vcpu] = g_memdup2(p + 8 + tdlen, vlen);
    emu->vcpu_len[vcpu] = vlen;
    emu->vcpu_done[vcpu] = true;
    emu->nvcpus_done++;
    emu->counter[0]++;
    emu->total++;
    return 0;
}

/* ---- blackout, abort, finish -------------------------------------------- */

static int
cocoEmuBlackout(CocoEmu *emu, CocoFirmwareStatus *status, GError **error)
{
    uint64_t g;

    if (emu->op != COCO_EMU_OP_LIVE_EXPORT)
        return cocoEmuStateFail(emu, status, "source-blackout", error);
    if (emu->nvcpus_in)
        return cocoEmuFail(emu, status, -EBUSY, COCO_EMU_ST_OPERAND_BUSY, error,
                           _("%1$u vCPUs are still inside the VM"),
                           emu->nvcpus_in);
    /* The VM stops here: no page is known unchanged since. The writes made
     * before are found by the dirty log (or at the start token), as TDX's
     * write blocking and UNBLOCKW would have recorded them. Which pages
     * were exported without a hash stays known. */
    for (g = 0; g < emu->npages; g++)
        emu->pflags[g] &= COCO_EMU_FLAG_UNHASHED;
    emu->op = COCO_EMU_OP_PAUSED_EXPORT;
    return 0;
}

static int
cocoEmuAbortSource(CocoEmu *emu, const uint8_t *buf, size_t buflen,
                   CocoFirmwareStatus *status, GError **error)
{
    CocoEmuBundleHeader h;
    int ret;

    if (cocoEmuIn(emu->op, 2, COCO_EMU_OP_LIVE_EXPORT,
                  COCO_EMU_OP_PAUSED_EXPORT)) {
        if (buflen != 0)
            return cocoEmuFail(
                emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND, error,
                _("no abort token may be given before the start token"));
    } else if (emu->op == COCO_EMU_OP_POST_EXPORT) {
        if (buflen == 0)
            return cocoEmuFail(
                emu, status, -EPERM, COCO_EMU_ST_ABORT_TOKEN_REQUIRED, error,
                _("the start token was sent: the source may resume only with the destination's abort token"));
        if (buflen != COCO_EMU_TOKEN_SIZE)
            return cocoEmuFail(emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD,
                               error, _("a token is %1$d bytes, not %2$zu"),
                               COCO_EMU_TOKEN_SIZE, buflen);
        cocoEmuHeaderUnpack(buf, &h);
        if ((ret = cocoEmuCheckHeader(
                 emu, status, &emu->dec, COCO_EMU_BACKWARD_STREAM, &h, buflen,
                 COCO_EMU_BUNDLE_ABORT_TOKEN, NULL, 0, false, error)) < 0)
            return ret;
        if (h.stream != 0 || h.counter != 0 || h.specific != 0)
            return cocoEmuFail(emu, status, -EBADMSG, COCO_EMU_ST_INVALID_MBMD,
                               error, _("malformed abort token"));
    } else {
        return cocoEmuStateFail(emu, status, "abort", error);
    }
    /* Back to RUNNABLE; the kernel's EXPORT.RESTORE of every page is done
     * here at once. */
    cocoEmuPagesReset(emu);
    cocoEmuSessionReset(emu);
    cocoEmuSessionEnd(emu, COCO_EMU_OP_RUNNABLE);
    return 0;
}

static int
cocoEmuAbortDestination(CocoEmu *emu, uint8_t *buf, size_t *buflen,
                        CocoFirmwareStatus *status, GError **error)
{
    size_t cap = buf ? *buflen : 0;
    CocoEmuBundleHeader h = {0};

    *buflen = 0;
    if (!cocoEmuIn(emu->op, 4, COCO_EMU_OP_MEMORY_IMPORT,
                   COCO_EMU_OP_STATE_IMPORT, COCO_EMU_OP_POST_IMPORT,
                   COCO_EMU_OP_FAILED_IMPORT))
        return cocoEmuFail(emu, status, -EPERM, COCO_EMU_ST_OP_STATE_INCORRECT,
                           error,
                           _("'%1$s' is not allowed in firmware state '%2$s'"),
                           "abort", cocoEmuOpStateTypeToString(emu->op));
    if (cap < COCO_EMU_TOKEN_SIZE)
        return cocoEmuShortBuffer(emu, status, "abort", cap,
                                  COCO_EMU_TOKEN_SIZE, error);
    h.size = COCO_EMU_TOKEN_SIZE;
    h.version = COCO_EMU_BUNDLE_VERSION;
    h.type = COCO_EMU_BUNDLE_ABORT_TOKEN;
    h.epoch = emu->epoch;
    h.iv_counter = emu->iv_backward;
    if (cocoEmuHeaderSeal(&emu->enc, &h, COCO_EMU_BACKWARD_STREAM, NULL, 0,
                          buf) < 0)
        return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                           error, _("cannot seal the abort token"));
    emu->iv_backward++;
    emu->op = COCO_EMU_OP_FAILED_IMPORT;
    if (status)
        status->fw_status = COCO_EMU_STATUS_FATAL;
    *buflen = COCO_EMU_TOKEN_SIZE;
    return 0;
}

static int
cocoEmuFinish(CocoEmu *emu, CocoFirmwareStatus *status, GError **error)
{
    switch (emu->op) {
    case COCO_EMU_OP_POST_EXPORT:
        /* The source's session is over: it can never run again. */
        cocoEmuSessionEnd(emu, COCO_EMU_OP_TEARDOWN);
        return 0;
    case COCO_EMU_OP_POST_IMPORT:
        /* IMPORT.COMMIT: the VM may run; no abort token from now on. */
        emu->op = COCO_EMU_OP_LIVE_IMPORT;
        return 0;
    case COCO_EMU_OP_LIVE_IMPORT:
        /* IMPORT.END: a normal VM again. */
        cocoEmuSessionEnd(emu, COCO_EMU_OP_RUNNABLE);
        return 0;
    case COCO_EMU_OP_UNINIT:
    case COCO_EMU_OP_INIT:
    case COCO_EMU_OP_RUNNABLE:
    case COCO_EMU_OP_LIVE_EXPORT:
    case COCO_EMU_OP_PAUSED_EXPORT:
    case COCO_EMU_OP_MEMORY_IMPORT:
    case COCO_EMU_OP_STATE_IMPORT:
    case COCO_EMU_OP_FAILED_IMPORT:
    case COCO_EMU_OP_TEARDOWN:
    case COCO_EMU_OP_LAST:
    default:
        break;
    }
    return cocoEmuStateFail(emu, status, "finish", error);
}

/* In an export session (TOKEN and ABORT act as the source's). */
static bool
cocoEmuExporting(CocoEmu *emu)
{
    return cocoEmuIn(emu->op, 3, COCO_EMU_OP_LIVE_EXPORT,
                     COCO_EMU_OP_PAUSED_EXPORT, COCO_EMU_OP_POST_EXPORT);
}

static int
cocoEmuMigrateCmd(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags,
                  void *buf, size_t *buflen, CocoFirmwareStatus *status,
                  GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&emu->lock);
    size_t zero = 0;
    size_t inlen;

    cocoEmuQuiesce(emu);

    if (!buflen)
        buflen = &zero;
    inlen = buf ? *buflen : 0;
    if (emu->op == COCO_EMU_OP_TEARDOWN ||
        (emu->op == COCO_EMU_OP_FAILED_IMPORT && cmd != COCO_MIGRATE_CMD_ABORT))
        return cocoEmuStateFail(emu, status, cocoMigrateCmdTypeToString(cmd),
                                error);
    if (cmd == COCO_MIGRATE_CMD_TOKEN ? (flags & ~COCO_MIGRATE_TOKEN_START)
                                      : flags != 0)
        return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND,
                           error, _("unknown flags '0x%1$x' for '%2$s'"), flags,
                           cocoMigrateCmdTypeToString(cmd));

    switch (cmd) {
    case COCO_MIGRATE_CMD_PREPARE: {
        g_autofree uint8_t *in = inlen ? g_memdup2(buf, inlen) : NULL;

        return cocoEmuPrepare(emu, in, inlen, buf, buflen, status, error);
    }
    case COCO_MIGRATE_CMD_SETUP:
        if (emu->op == COCO_EMU_OP_UNINIT)
            return cocoEmuSetupImport(emu, buf, inlen, status, error);
        return cocoEmuSetupExport(emu, buf, buflen, status, error);
    case COCO_MIGRATE_CMD_TOKEN:
        if (cocoEmuExporting(emu))
            return cocoEmuTokenExport(emu, flags, buf, buflen, status, error);
        return cocoEmuTokenImport(emu, flags, buf, inlen, status, error);
    case COCO_MIGRATE_CMD_SOURCE_BLACKOUT:
        *buflen = 0;
        return cocoEmuBlackout(emu, status, error);
    case COCO_MIGRATE_CMD_ABORT:
        if (cocoEmuExporting(emu))
            return cocoEmuAbortSource(emu, buf, inlen, status, error);
        return cocoEmuAbortDestination(emu, buf, buflen, status, error);
    case COCO_MIGRATE_CMD_FINISH:
        *buflen = 0;
        return cocoEmuFinish(emu, status, error);
    case COCO_MIGRATE_CMD_LAST:
    default:
        break;
    }
    return cocoEmuFail(emu, status, -EINVAL, COCO_EMU_ST_INVALID_OPERAND, error,
                       _("unknown migration sub-command '%1$d'"), (int)cmd);
}

/* ---- object ------------------------------------------------------------ */

static int
cocoEmuGetCaps(CocoFirmware *fw, CocoFirmwareCaps *caps, GError **error)
{
    CocoEmu *emu = cocoEmuGet(fw);

    caps->migration = true;
    caps->max_streams = emu->nstreams + 1;
    caps->max_gfns = COCO_EMU_MAX_GFNS;
    caps->mig_version = COCO_EMU_BUNDLE_VERSION;
    return 0;
}

static void
cocoEmuFree(CocoFirmware *fw)
{
    CocoEmu *emu = fw->priv;
    unsigned int i;

    if (!emu)
        return;
    cocoEmuMemoryDrop(emu);
    for (i = 0; i < emu->nvcpus; i++) {
        if (emu->vcpu_state[i])
            gnutls_memset(emu->vcpu_state[i], 0, emu->vcpu_len[i]);
        g_free(emu->vcpu_state[i]);
    }
    g_free(emu->vcpu_state);
    g_free(emu->vcpu_len);
    g_free(emu->vcpu_done);
    g_free(emu->vcpu_in);
    g_free(emu->counter);
    g_free(emu->iv);
    for (i = 0; i < emu->nstreams; i++) {
        cocoCryptoKeyClear(&emu->streams[i].enc);
        cocoCryptoKeyClear(&emu->streams[i].dec);
        g_free(emu->streams[i].page);
        g_free(emu->streams[i].hashes);
        g_free(emu->streams[i].bounce);
    }
    g_free(emu->streams);
    g_free(emu->failed_why);
    g_free(emu->allowed);
    g_free(emu->min_tcbs);
    cocoCryptoKeyClear(&emu->mig_enc);
    cocoCryptoKeyClear(&emu->mig_dec);
    cocoCryptoKeyClear(&emu->enc);
    cocoCryptoKeyClear(&emu->dec);
    cocoEmuHandshakeReset(emu);
    cocoEmuPlatformUnref(emu->pf);
    g_cond_clear(&emu->cond);
    g_mutex_clear(&emu->lock);
    g_free(emu);
    fw->priv = NULL;
}

static const CocoFirmwareDriver cocoEmuDriver = {
    .name = "emulated",
    .getCaps = cocoEmuGetCaps,
    .migrateCmd = cocoEmuMigrateCmd,
    .exportMemory = cocoEmuExportMemory,
    .importMemory = cocoEmuImportMemory,
    .exportVcpu = cocoEmuExportVcpu,
    .importVcpu = cocoEmuImportVcpu,
    .dirtyLog = cocoEmuDirtyLog,
    .reserveMemory = cocoEmuReserveMemory,
    .free = cocoEmuFree,
};

/* The VM's identity (COCO_EMU_VM_ID_LEN bytes into @out): its UUID, then
 * the SHA-256 of its immutable configuration as a destination VM must
 * share it: a label, u32 technology, u32 vCPUs, u64 pages (little
 * endian). */
static int
cocoEmuVmIdentity(const CocoMigrationDef *def, const CocoFirmwareVm *vm,
                  uint8_t *out)
{
    uint8_t cfg[COCO_EMU_PREP_LABEL + 16] = {0};
    uint32_t tech = GUINT32_TO_LE((uint32_t)def->technology);
    uint32_t nv = GUINT32_TO_LE(vm->nvcpus);
    uint64_t np = GUINT64_TO_LE(vm->memory / COCO_EMU_PAGE_SIZE);

    g_strlcpy((char *)cfg, "coco-emu vm configuration v1", COCO_EMU_PREP_LABEL);
    memcpy(cfg + COCO_EMU_PREP_LABEL, &tech, 4);
    memcpy(cfg + COCO_EMU_PREP_LABEL + 4, &nv, 4);
    memcpy(cfg + COCO_EMU_PREP_LABEL + 8, &np, 8);
    memcpy(out, vm->uuid, COCO_FIRMWARE_UUID_LEN);
    return cocoCryptoSha256(cfg, sizeof(cfg), out + COCO_FIRMWARE_UUID_LEN);
}

CocoFirmware *
cocoEmuNew(CocoFirmwareRole role, CocoEmuPlatform *pf,
           const CocoMigrationDef *def, const CocoFirmwareVm *vm,
           GError **error)
{
    g_autoptr(CocoFirmware) fw = NULL;
    CocoEmu *emu;
    unsigned int nvcpus;
    unsigned int i;

    if (!pf || !def) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("an emulated VM needs a platform and a migration definition"));
        return NULL;
    }
    if (cocoFirmwareVmValidate(vm, error) < 0)
        return NULL;
    nvcpus = vm->nvcpus;
    if (nvcpus > 4096) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("an emulated VM has 1..4096 vCPUs, not %1$u"), nvcpus);
        return NULL;
    }
    if ((unsigned int)role >= COCO_FIRMWARE_ROLE_LAST) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("unknown firmware role '%1$d'"), (int)role);
        return NULL;
    }
    if (def->has_streams && def->forward_streams > COCO_EMU_MAX_STREAMS) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("%1$u forward streams requested, at most 512 exist"),
                     def->forward_streams);
        return NULL;
    }

    fw = g_new0(CocoFirmware, 1);
    fw->driver = &cocoEmuDriver;
    fw->role = role;
    fw->priv = emu = g_new0(CocoEmu, 1);
    g_mutex_init(&emu->lock);
    g_cond_init(&emu->cond);
    emu->pf = cocoEmuPlatformRef(pf);
    if (cocoEmuVmIdentity(def, vm, emu->vm_id) < 0) {
        cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                     _("cannot hash the VM's configuration"));
        return NULL;
    }
    emu->vm_memory = vm->memory;
    emu->role = role;
    emu->fd = -1;

    emu->has_agent = def->has_agent;
    memcpy(emu->agent_hash, def->agent_hash, COCO_AGENT_HASH_LEN);
    emu->has_agent_min_svn = def->has_agent_min_svn;
    emu->agent_min_svn = def->agent_min_svn;
    if (def->has_destinations && def->nplatforms) {
        emu->nallowed = def->nplatforms;
        emu->allowed = g_malloc0_n(def->nplatforms, COCO_PLATFORM_ID_LEN);
        for (i = 0; i < def->nplatforms; i++)
            memcpy(emu->allowed[i], def->platforms[i].id, COCO_PLATFORM_ID_LEN);
    }
    if (def->has_destinations && def->nmin_tcbs) {
        emu->nmin_tcbs = def->nmin_tcbs;
        emu->min_tcbs =
            g_memdup2(def->min_tcbs, def->nmin_tcbs * sizeof(*def->min_tcbs));
    }

    emu->nvcpus = nvcpus;
    emu->nstreams =
        def->has_streams && def->forward_streams ? def->forward_streams : 1;
    emu->counter = g_new0(uint32_t, emu->nstreams);
    emu->iv = g_new0(uint64_t, emu->nstreams);
    emu->vcpu_state = g_new0(uint8_t *, nvcpus);
    emu->vcpu_len = g_new0(size_t, nvcpus);
    emu->vcpu_done = g_new0(bool, nvcpus);
    emu->vcpu_in = g_new0(bool, nvcpus);
    emu->streams = g_new0(CocoEmuStream, emu->nstreams);
    for (i = 0; i < emu->nstreams; i++) {
        emu->streams[i].page = g_malloc(COCO_EMU_PAGE_SIZE);
        emu->streams[i].hashes = g_new0(uint64_t, COCO_EMU_MAX_GFNS);
    }

    if (role == COCO_FIRMWARE_ROLE_SOURCE) {
        /* A launched TD: random private state the migration must carry. */
        emu->op = COCO_EMU_OP_RUNNABLE;
        if (cocoCryptoRandom(emu->td_state, sizeof(emu->td_state), error) < 0)
            return NULL;
        emu->has_td_state = true;
        for (i = 0; i < nvcpus; i++) {
            emu->vcpu_state[i] = g_malloc(COCO_EMU_VCPU_STATE_DEFAULT);
            emu->vcpu_len[i] = COCO_EMU_VCPU_STATE_DEFAULT;
            if (cocoCryptoRandom(emu->vcpu_state[i],
                                 COCO_EMU_VCPU_STATE_DEFAULT, error) < 0)
                return NULL;
        }
    } else {
        emu->op = COCO_EMU_OP_UNINIT;
    }
    return g_steal_pointer(&fw);
}
