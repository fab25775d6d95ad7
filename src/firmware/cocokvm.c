/*
 * cocokvm.c: the "kvm" firmware backend (the RFC ioctls on a VM fd)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "firmware/cocokvm.h"
#include "firmware/cocokvmuapi.h"

#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>

/* The initial size of a backend-owned buffer; grown to what the kernel asks
 * for and remembered per sub-command. */
#define COCO_KVM_BUF_HINT 4096

typedef struct {
    CocoKvmConfig cfg;
    CocoKvmOps ops;
    int vm_fd;
    int *vcpu_fds;
    unsigned int nvcpus;
    bool use_ext;
    GMutex hint_lock; /* protects the two hints below */
    size_t cmd_hint[COCO_MIGRATE_CMD_LAST];
    size_t vcpu_hint;
} CocoKvmPriv;

static size_t
cocoKvmHintGet(CocoKvmPriv *priv, size_t *hint)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&priv->hint_lock);

    return *hint;
}

static void
cocoKvmHintSet(CocoKvmPriv *priv, size_t *hint, size_t val)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&priv->hint_lock);

    *hint = MAX(*hint, val);
}

static int
cocoKvmSystemIoctl(void *opaque G_GNUC_UNUSED, int fd, unsigned long request,
                   void *arg)
{
    int ret = ioctl(fd, request, arg);

    return ret < 0 ? -errno : ret;
}

static void
cocoKvmSystemSleep(void *opaque G_GNUC_UNUSED, unsigned int usec)
{
    g_usleep(usec);
}

static const CocoKvmOps cocoKvmSystemOpsData = {
    .ioctl = cocoKvmSystemIoctl,
    .sleep = cocoKvmSystemSleep,
    .opaque = NULL,
};

const CocoKvmOps *
cocoKvmSystemOps(void)
{
    return &cocoKvmSystemOpsData;
}

static CocoKvmPriv *
cocoKvmPriv(CocoFirmware *fw)
{
    return fw->priv;
}

bool
cocoKvmFirmwareUsesExt(CocoFirmware *fw)
{
    return cocoKvmPriv(fw)->use_ext;
}

/* KVM_CHECK_EXTENSION on the VM fd: 1 present, 0 absent, <0 -errno. A
 * kernel that knows no VM-scope KVM_CHECK_EXTENSION (-ENOTTY, -EINVAL)
 * has no migration capability either. */
static int
cocoKvmCheckExtension(const CocoKvmOps *ops, int vm_fd, unsigned int cap)
{
    int ret;

    do {
        ret = ops->ioctl(ops->opaque, vm_fd, KVM_CHECK_EXTENSION,
                         (void *)(uintptr_t)cap);
    } while (ret == -EINTR);
    if (ret == -ENOTTY || ret == -EINVAL)
        return 0;
    if (ret < 0)
        return ret;
    return ret > 0 ? 1 : 0;
}

/*
 * KVM answers EIO to every VM and vCPU ioctl whose caller is not the
 * process that created the VM (kvm_vm_ioctl(): kvm->mm != current->mm),
 * and to every ioctl of a VM it marked dead. A descriptor duplicated into
 * another process (pidfd_getfd(), SCM_RIGHTS, fork) is unusable there.
 */
static int
cocoKvmForeignError(int vm_fd, const char *what, GError **error)
{
    if (what)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'%1$s' failed: VM file descriptor '%2$d' belongs to another process (KVM answers EIO to every VM and vCPU ioctl not issued by the process that created the VM, or of a VM it marked dead); the RFC's calls must be issued from the VMM's own process"),
            what, vm_fd);
    return cocoErrorSet(
        error, COCO_ERROR_INVALID_ARG,
        _("VM file descriptor '%1$d' belongs to another process (KVM answers EIO to every VM and vCPU ioctl not issued by the process that created the VM, or of a VM it marked dead); the RFC's calls must be issued from the VMM's own process"),
        vm_fd);
}

/* After an EIO: whether the VM descriptor is unusable from this process
 * altogether (a harmless query fails the same way), rather than the
 * firmware having failed. */
static bool
cocoKvmIsForeign(const CocoKvmOps *ops, int vm_fd)
{
    return ops->ioctl(ops->opaque, vm_fd, KVM_CHECK_EXTENSION,
                      (void *)(uintptr_t)KVM_CAP_USER_MEMORY) == -EIO;
}

int
cocoKvmProbe(int vm_fd, const CocoKvmOps *ops, const CocoKvmConfig *cfg,
             CocoFirmwareCaps *caps, bool *fw_status, GError **error)
{
    CocoKvmConfig loaded;
    int ret;

    memset(caps, 0, sizeof(*caps));
    if (fw_status)
        *fw_status = false;
    if (!ops)
        ops = cocoKvmSystemOps();
    if (!cfg) {
        if (cocoKvmConfigLoad(&loaded, error) < 0)
            return -1;
        cfg = &loaded;
    }
    if (vm_fd < 0)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("invalid VM file descriptor '%1$d'"), vm_fd);

    if ((ret = cocoKvmCheckExtension(ops, vm_fd, cfg->cap_migration)) == -EIO)
        return cocoKvmForeignError(vm_fd, NULL, error);
    if (ret < 0)
        return cocoErrorSetSystem(
            error, -ret,
            _("cannot probe capability KVM_CAP_MIGRATION (%1$u) on VM file descriptor '%2$d'"),
            cfg->cap_migration, vm_fd);
    caps->migration = ret == 1;
    caps->max_streams = cfg->max_streams;
    caps->max_gfns = cfg->max_gfns;
    caps->mig_version = cfg->mig_version;
    if (!caps->migration || !fw_status || !cfg->fw_status_ext)
        return 0;

    if ((ret = cocoKvmCheckExtension(ops, vm_fd, cfg->cap_fw_status)) < 0)
        return cocoErrorSetSystem(
            error, -ret,
            _("cannot probe the firmware-status extension capability (%1$u) on VM file descriptor '%2$d'"),
            cfg->cap_fw_status, vm_fd);
    *fw_status = ret == 1;
    return 0;
}

/* Whether @ret with buf.size now @newsize (was @given) means "buffer too
 * small". -E2BIG always does; -EINVAL and -ENOSPC do when the kernel wrote
 * a larger size back. */
static bool
cocoKvmIsShortBuffer(int ret, size_t given, size_t newsize)
{
    if (ret == -E2BIG)
        return true;
    return (ret == -EINVAL || ret == -ENOSPC) && newsize > given;
}

/*
 * Issue one ioctl with the retry policy. @arg is the RFC structure with the
 * extension trailer @ext right behind it (the *_ext structures); @argsize
 * is the size of the *_ext structure. Before every re-issue @arg is
 * restored, so a retry always repeats identical arguments.
 */
static int
cocoKvmIssue(CocoKvmPriv *priv, CocoKvmIoctl which, int fd, bool poll_eagain,
             void *arg, size_t argsize, struct coco_kvm_fw_status *ext)
{
    unsigned long request =
        cocoKvmConfigRequest(&priv->cfg, which, priv->use_ext);
    unsigned char saved[64];
    unsigned int eintr = 0;
    unsigned int eagain = 0;
    unsigned int backoff = priv->cfg.eagain_backoff_us;
    int ret;

    g_assert(argsize <= sizeof(saved));
    memcpy(saved, arg, argsize);
    for (;;) {
        ext->fw_status = 0;
        ret = priv->ops.ioctl(priv->ops.opaque, fd, request, arg);
        if (ret >= 0)
            return ret;
        if (ret == -EINTR && eintr < priv->cfg.eintr_retries) {
            eintr++;
        } else if (ret == -EAGAIN && !poll_eagain &&
                   eagain < priv->cfg.eagain_retries) {
            eagain++;
            if (priv->ops.sleep && backoff)
                priv->ops.sleep(priv->ops.opaque, backoff);
            if (backoff <= G_MAXUINT / 2)
                backoff *= 2;
        } else {
            return ret;
        }
        memcpy(arg, saved, argsize);
    }
}

/*
 * Turn a failed call into the errno returned to the seam and a translated
 * message naming @what (the ioctl and sub-command) and the meaning.
 */
static int
cocoKvmReport(CocoKvmPriv *priv, CocoKvmIoctl which, const char *what, int ret,
              const struct coco_kvm_fw_status *ext, size_t given,
              size_t newsize, CocoFirmwareStatus *status, GError **error)
{
    unsigned long long fw = priv->use_ext ? ext->fw_status : 0;
    int err = ret;

    if (status)
        status->fw_status = fw;

    if (cocoKvmIsShortBuffer(ret, given, newsize)) {
        err = -ENOBUFS;
        if (status)
            status->needed = newsize > given ? newsize : 0;
        if (newsize > given)
            cocoErrorSet(
                error, cocoFirmwareErrnoToCode(err),
                _("'%1$s' failed: the buffer of %2$zu bytes is too small, the kernel needs %3$zu bytes"),
                what, given, newsize);
        else
            cocoErrorSet(
                error, cocoFirmwareErrnoToCode(err),
                _("'%1$s' failed: the buffer of %2$zu bytes is too small and the kernel did not say how large it must be"),
                what, given);
        if (status)
            status->err = err;
        return err;
    }

    if (status)
        status->err = err;
    switch (-ret) {
    case EPERM:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the call is not legal in the VM's current migration state or comes out of order (EPERM, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case EBADMSG:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the firmware rejected the data, its format or integrity check (MAC) failed (EBADMSG, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case EPROTO:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the firmware detected a replayed, dropped or reordered bundle (EPROTO, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case EBUSY:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the firmware is busy or vCPUs are still running (EBUSY, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case EAGAIN:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' is not ready yet: the migration agent has not installed the session keys or the firmware stayed busy; try again (EAGAIN, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case EEXIST:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: this state was already exported or imported (EEXIST, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case EINVAL:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the kernel rejected the arguments as malformed (EINVAL, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case EKEYREJECTED:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the session keys of source and destination do not match (EKEYREJECTED, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case EACCES:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the migration policy does not accept the peer (EACCES, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case EIO:
        if (cocoKvmIsForeign(&priv->ops, priv->vm_fd)) {
            cocoKvmForeignError(priv->vm_fd, what, error);
            break;
        }
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the firmware failed for good, the VM can only be torn down (EIO, firmware status 0x%2$016llx)"),
            what, fw);
        break;
    case ENOTTY:
    case EOPNOTSUPP:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' is not supported by this kernel: it does not know the ioctl number 0x%2$lx (see the [ioctl] keys of kvm.conf)"),
            what, cocoKvmConfigRequest(&priv->cfg, which, priv->use_ext));
        break;
    case EBADF:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the VM or vCPU file descriptor is not open (EBADF)"),
            what);
        break;
    case EFAULT:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: the kernel could not access a buffer (EFAULT)"),
            what);
        break;
    case EINTR:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: interrupted %2$u times in a row (EINTR)"), what,
            priv->cfg.eintr_retries + 1);
        break;
    case ENOMEM:
        cocoErrorSet(error, cocoFirmwareErrnoToCode(ret),
                     _("'%1$s' failed: the kernel is out of memory (ENOMEM)"),
                     what);
        break;
    default:
        cocoErrorSet(
            error, cocoFirmwareErrnoToCode(ret),
            _("'%1$s' failed: %2$s (errno %3$d, firmware status 0x%4$016llx)"),
            what, g_strerror(-ret), -ret, fw);
        break;
    }
    return err;
}

/* A buffer length for the RFC's __u32 size field. */
static int
cocoKvmCheckLen(const char *what, size_t len, GError **error)
{
    if (len > UINT32_MAX) {
        cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("'%1$s': the buffer of %2$zu bytes exceeds the 4 GiB limit of the kernel interface"),
            what, len);
        return -EINVAL;
    }
    return 0;
}

static int
cocoKvmMigrateCmdIssue(CocoKvmPriv *priv, CocoMigrateCmd cmd, uint32_t flags,
                       void *buf, size_t *buflen, CocoFirmwareStatus *status,
                       GError **error)
{
    struct coco_kvm_migrate_cmd_ext arg;
    g_autofree char *what =
        g_strdup_printf("KVM_MIGRATE_CMD %s", cocoMigrateCmdTypeToString(cmd));
    size_t given = buflen ? *buflen : 0;
    int ret;

    if ((ret = cocoKvmCheckLen(what, given, error)) < 0)
        return ret;
    if (flags > G_MAXUINT16) {
        cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("'%1$s': flags '0x%2$x' do not fit the 16-bit flags field"), what,
            flags);
        return -EINVAL;
    }

    memset(&arg, 0, sizeof(arg));
    arg.cmd.command = cmd;
    arg.cmd.flags = flags;
    arg.cmd.buf.address = given ? (uintptr_t)buf : 0;
    arg.cmd.buf.size = given;

    ret = cocoKvmIssue(priv, COCO_KVM_IOCTL_MIGRATE_CMD, priv->vm_fd,
                       cmd == COCO_MIGRATE_CMD_PREPARE, &arg, sizeof(arg),
                       &arg.ext);
    if (ret < 0)
        return cocoKvmReport(priv, COCO_KVM_IOCTL_MIGRATE_CMD, what, ret,
                             &arg.ext, given, arg.cmd.buf.size, status, error);
    if (status)
        status->fw_status = priv->use_ext ? arg.ext.fw_status : 0;
    if (buflen)
        *buflen = MIN(given, (size_t)arg.cmd.buf.size);
    return 0;
}

static int
cocoKvmMigrateCmd(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags,
                  void *buf, size_t *buflen, CocoFirmwareStatus *status,
                  GError **error)
{
    return cocoKvmMigrateCmdIssue(cocoKvmPriv(fw), cmd, flags, buf, buflen,
                                  status, error);
}

static int
cocoKvmMemory(CocoKvmPriv *priv, CocoKvmIoctl which, uint32_t stream,
              const uint64_t *gfns, uint32_t ngfns, uint8_t *gfn_status,
              void *buf, size_t *buflen, CocoFirmwareStatus *status,
              GError **error)
{
    struct coco_kvm_memory_transfer_ext arg;
    const char *what = cocoKvmIoctlName(which);
    size_t given = *buflen;
    int ret;

    if ((ret = cocoKvmCheckLen(what, given, error)) < 0)
        return ret;
    if (stream > G_MAXUINT16 || stream >= priv->cfg.max_streams) {
        cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("'%1$s': stream '%2$u' is out of range (at most %3$u streams)"),
            what, stream, priv->cfg.max_streams);
        return -EINVAL;
    }
    if (ngfns > priv->cfg.max_gfns || (ngfns && !gfns)) {
        cocoErrorSet(error, COCO_ERROR_FW_INVALID,
                     _("'%1$s': '%2$u' pages given, from 1 to %3$u allowed"),
                     what, ngfns, priv->cfg.max_gfns);
        return -EINVAL;
    }

    memset(&arg, 0, sizeof(arg));
    arg.xfer.gfns = (uintptr_t)gfns;
    arg.xfer.nr_gfns = ngfns;
    arg.xfer.id = stream;
    arg.xfer.buf.address = given ? (uintptr_t)buf : 0;
    arg.xfer.buf.size = given;
    if (priv->use_ext && gfn_status)
        arg.ext.gfn_status = (uintptr_t)gfn_status;

    ret = cocoKvmIssue(priv, which, priv->vm_fd, false, &arg, sizeof(arg),
                       &arg.ext);
    if (ret < 0) {
        if (gfn_status && !priv->use_ext)
            memset(gfn_status, COCO_KVM_GFN_STATUS_UNKNOWN, ngfns);
        return cocoKvmReport(priv, which, what, ret, &arg.ext, given,
                             arg.xfer.buf.size, status, error);
    }
    if (gfn_status && !priv->use_ext)
        memset(gfn_status, 0, ngfns);
    if (status)
        status->fw_status = priv->use_ext ? arg.ext.fw_status : 0;
    *buflen = MIN(given, (size_t)arg.xfer.buf.size);
    return 0;
}

static int
cocoKvmExportMemory(CocoFirmware *fw, uint32_t stream, const uint64_t *gfns,
                    uint32_t ngfns, uint8_t *gfn_status, void *buf,
                    size_t *buflen, CocoFirmwareStatus *status, GError **error)
{
    return cocoKvmMemory(cocoKvmPriv(fw), COCO_KVM_IOCTL_EXPORT_MEMORY, stream,
                         gfns, ngfns, gfn_status, buf, buflen, status, error);
}

static int
cocoKvmImportMemory(CocoFirmware *fw, uint32_t stream, const void *buf,
                    size_t buflen, CocoFirmwareStatus *status, GError **error)
{
    size_t len = buflen;

    /* The kernel only reads an import buffer; the RFC struct is in/out. */
    return cocoKvmMemory(cocoKvmPriv(fw), COCO_KVM_IOCTL_IMPORT_MEMORY, stream,
                         NULL, 0, NULL, (void *)buf, &len, status, error);
}

static int
cocoKvmVcpu(CocoKvmPriv *priv, CocoKvmIoctl which, unsigned int vcpu, void *buf,
            size_t *buflen, CocoFirmwareStatus *status, GError **error)
{
    struct coco_kvm_vcpu_transfer_ext arg;
    g_autofree char *what = NULL;
    size_t given = *buflen;
    int ret;

    if (vcpu >= priv->nvcpus) {
        cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("'%1$s': vCPU '%2$u' does not exist, the VM has %3$u vCPUs"),
            cocoKvmIoctlName(which), vcpu, priv->nvcpus);
        return -EINVAL;
    }
    what = g_strdup_printf("%s vcpu %u", cocoKvmIoctlName(which), vcpu);
    if ((ret = cocoKvmCheckLen(what, given, error)) < 0)
        return ret;

    memset(&arg, 0, sizeof(arg));
    arg.xfer.buf.address = given ? (uintptr_t)buf : 0;
    arg.xfer.buf.size = given;

    ret = cocoKvmIssue(priv, which, priv->vcpu_fds[vcpu], false, &arg,
                       sizeof(arg), &arg.ext);
    if (ret < 0)
        return cocoKvmReport(priv, which, what, ret, &arg.ext, given,
                             arg.xfer.buf.size, status, error);
    if (status)
        status->fw_status = priv->use_ext ? arg.ext.fw_status : 0;
    *buflen = MIN(given, (size_t)arg.xfer.buf.size);
    return 0;
}

static int
cocoKvmExportVcpu(CocoFirmware *fw, unsigned int vcpu, void *buf,
                  size_t *buflen, CocoFirmwareStatus *status, GError **error)
{
    return cocoKvmVcpu(cocoKvmPriv(fw), COCO_KVM_IOCTL_EXPORT_VCPU, vcpu, buf,
                       buflen, status, error);
}

static int
cocoKvmImportVcpu(CocoFirmware *fw, unsigned int vcpu, const void *buf,
                  size_t buflen, CocoFirmwareStatus *status, GError **error)
{
    size_t len = buflen;

    return cocoKvmVcpu(cocoKvmPriv(fw), COCO_KVM_IOCTL_IMPORT_VCPU, vcpu,
                       (void *)buf, &len, status, error);
}

static int
cocoKvmGetCaps(CocoFirmware *fw, CocoFirmwareCaps *caps, GError **error)
{
    CocoKvmPriv *priv = cocoKvmPriv(fw);

    if (cocoKvmProbe(priv->vm_fd, &priv->ops, &priv->cfg, caps, NULL, error) <
        0)
        return -EIO;
    return 0;
}

static void
cocoKvmFree(CocoFirmware *fw)
{
    CocoKvmPriv *priv = fw->priv;

    if (!priv)
        return;
    g_free(priv->vcpu_fds);
    g_mutex_clear(&priv->hint_lock);
    g_free(priv);
    fw->priv = NULL;
}

const CocoFirmwareDriver cocoKvmFirmwareDriver = {
    .name = "kvm",
    .getCaps = cocoKvmGetCaps,
    .migrateCmd = cocoKvmMigrateCmd,
    .exportMemory = cocoKvmExportMemory,
    .importMemory = cocoKvmImportMemory,
    .exportVcpu = cocoKvmExportVcpu,
    .importVcpu = cocoKvmImportVcpu,
    .free = cocoKvmFree,
};

CocoFirmware *
cocoKvmFirmwareNew(CocoFirmwareRole role, int vm_fd, const int *vcpu_fds,
                   unsigned int nvcpus, const CocoKvmOps *ops,
                   const CocoKvmConfig *cfg, GError **error)
{
    g_autoptr(CocoFirmware) fw = NULL;
    CocoKvmPriv *priv;
    CocoFirmwareCaps caps;
    bool ext = false;
    unsigned int i;

    if (!cocoFirmwareRoleTypeToString(role)) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("invalid firmware role '%1$d'"), (int)role);
        return NULL;
    }
    if (nvcpus && !vcpu_fds) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'%1$u' vCPUs announced but no vCPU file descriptors given"),
            nvcpus);
        return NULL;
    }
    for (i = 0; i < nvcpus; i++) {
        if (vcpu_fds[i] < 0) {
            cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                         _("invalid file descriptor '%1$d' for vCPU '%2$u'"),
                         vcpu_fds[i], i);
            return NULL;
        }
    }

    fw = g_new0(CocoFirmware, 1);
    fw->driver = &cocoKvmFirmwareDriver;
    fw->role = role;
    fw->priv = priv = g_new0(CocoKvmPriv, 1);
    g_mutex_init(&priv->hint_lock);
    priv->vm_fd = vm_fd;
    priv->ops = ops ? *ops : *cocoKvmSystemOps();
    if (cfg) {
        if (cocoKvmConfigValidate(cfg, error) < 0)
            return NULL;
        priv->cfg = *cfg;
    } else if (cocoKvmConfigLoad(&priv->cfg, error) < 0) {
        return NULL;
    }
    priv->vcpu_fds = g_memdup2(vcpu_fds, sizeof(int) * (size_t)nvcpus);
    priv->nvcpus = nvcpus;
    for (i = 0; i < COCO_MIGRATE_CMD_LAST; i++)
        priv->cmd_hint[i] = COCO_KVM_BUF_HINT;
    priv->vcpu_hint = COCO_KVM_BUF_HINT;

    if (cocoKvmProbe(vm_fd, &priv->ops, &priv->cfg, &caps, &ext, error) < 0)
        return NULL;
    if (!caps.migration) {
        cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("this kernel does not implement KVM_CAP_MIGRATION (%1$u): KVM_CHECK_EXTENSION on VM file descriptor '%2$d' answered that it is absent (no kernel implements the confidential-migration RFC yet; the capability number is provisional, see kvm.conf)"),
            priv->cfg.cap_migration, vm_fd);
        return NULL;
    }
    priv->use_ext = ext;
    return g_steal_pointer(&fw);
}

/* Grow @*bufp (capacity @*cap) to @needed bytes, keeping its content. */
static void
cocoKvmGrow(guint8 **bufp, size_t *cap, size_t needed)
{
    *bufp = g_realloc(*bufp, needed);
    memset(*bufp + *cap, 0, needed - *cap);
    *cap = needed;
}

int
cocoKvmMigrateCmdAlloc(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags,
                       const void *in, size_t inlen, GBytes **out,
                       CocoFirmwareStatus *status, GError **error)
{
    CocoKvmPriv *priv = cocoKvmPriv(fw);
    CocoFirmwareStatus st = {0};
    g_autofree guint8 *buf = NULL;
    g_autoptr(GError) first = NULL;
    size_t cap;
    size_t len;
    int ret;

    *out = NULL;
    if (!cocoMigrateCmdTypeToString(cmd)) {
        cocoErrorSet(error, COCO_ERROR_FW_INVALID,
                     _("unknown migration sub-command '%1$d'"), (int)cmd);
        ret = -EINVAL;
        goto cleanup;
    }
    cap = MAX(inlen, cocoKvmHintGet(priv, &priv->cmd_hint[cmd]));
    buf = g_malloc0(cap);
    if (inlen)
        memcpy(buf, in, inlen);
    len = cap;
    ret = cocoKvmMigrateCmdIssue(priv, cmd, flags, buf, &len, &st, &first);
    if (ret == -ENOBUFS && st.needed > cap) {
        /* Nothing happened: the same call again, with the size needed. */
        cocoKvmGrow(&buf, &cap, st.needed);
        cocoKvmHintSet(priv, &priv->cmd_hint[cmd], cap);
        len = cap;
        memset(&st, 0, sizeof(st));
        ret = cocoKvmMigrateCmdIssue(priv, cmd, flags, buf, &len, &st, error);
    } else if (ret < 0) {
        g_propagate_error(error, g_steal_pointer(&first));
    }
    if (ret == 0)
        *out = g_bytes_new(buf, len);

cleanup:
    st.err = ret < 0 ? ret : 0;
    if (status)
        *status = st;
    return ret;
}

int
cocoKvmExportVcpuAlloc(CocoFirmware *fw, unsigned int vcpu, GBytes **out,
                       CocoFirmwareStatus *status, GError **error)
{
    CocoKvmPriv *priv = cocoKvmPriv(fw);
    CocoFirmwareStatus st = {0};
    g_autofree guint8 *buf = NULL;
    g_autoptr(GError) first = NULL;
    size_t cap = cocoKvmHintGet(priv, &priv->vcpu_hint);
    size_t len = cap;
    int ret;

    *out = NULL;
    buf = g_malloc0(cap);
    ret = cocoKvmVcpu(priv, COCO_KVM_IOCTL_EXPORT_VCPU, vcpu, buf, &len, &st,
                      &first);
    if (ret == -ENOBUFS && st.needed > cap) {
        cocoKvmGrow(&buf, &cap, st.needed);
        cocoKvmHintSet(priv, &priv->vcpu_hint, cap);
        len = cap;
        memset(&st, 0, sizeof(st));
        ret = cocoKvmVcpu(priv, COCO_KVM_IOCTL_EXPORT_VCPU, vcpu, buf, &len,
                          &st, error);
    } else if (ret < 0) {
        g_propagate_error(error, g_steal_pointer(&first));
    }
    if (ret == 0)
        *out = g_bytes_new(buf, len);
    st.err = ret < 0 ? ret : 0;
    if (status)
        *status = st;
    return ret;
}
