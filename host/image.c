/*
 * image.c -- plugin image files before dlopen: that a file is a whole ELF
 * shared object for this machine (a truncated, still-growing or foreign file
 * handed to dlopen can kill the host with SIGBUS when the loader touches a
 * page past the end), the image's identity (its GNU build id, or a SHA-256
 * of the file when it has none), the private copy hot reload opens, and the
 * removal of copies a crashed host left behind.
 * Not here: dlopen, the descriptor and ABI checks (instance.c).
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

#if defined(__x86_64__)
#define ARBH_EM EM_X86_64
#elif defined(__aarch64__)
#define ARBH_EM EM_AARCH64
#elif defined(__i386__)
#define ARBH_EM EM_386
#elif defined(__riscv)
#define ARBH_EM EM_RISCV
#else
#error "unknown machine: add its EM_ constant"
#endif

#if UINTPTR_MAX == 0xffffffffffffffffu
typedef Elf64_Ehdr ehdr_t;
typedef Elf64_Phdr phdr_t;
typedef Elf64_Shdr shdr_t;
typedef Elf64_Nhdr nhdr_t;
typedef Elf64_Dyn dyn_t;
#define ARBH_ELFCLASS ELFCLASS64
#else
typedef Elf32_Ehdr ehdr_t;
typedef Elf32_Phdr phdr_t;
typedef Elf32_Shdr shdr_t;
typedef Elf32_Nhdr nhdr_t;
typedef Elf32_Dyn dyn_t;
#define ARBH_ELFCLASS ELFCLASS32
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARBH_ELFDATA ELFDATA2LSB
#else
#define ARBH_ELFDATA ELFDATA2MSB
#endif

/* True if [off, off+len) lies inside a file of `size` bytes. */
static bool inside(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

static void hex(const uint8_t *b, size_t len, char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t k = 0;
    for (size_t i = 0; i < len && k + 2 < n; i++) {
        out[k++] = digits[b[i] >> 4];
        out[k++] = digits[b[i] & 15];
    }
    out[k] = 0;
}

/* The NT_GNU_BUILD_ID note of the PT_NOTE segments, as hex; false if none. */
static bool gnu_build_id(const uint8_t *f, size_t size, const ehdr_t *eh, char *out, size_t n)
{
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        phdr_t ph;
        memcpy(&ph, f + eh->e_phoff + (size_t)i * eh->e_phentsize, sizeof ph);
        if (ph.p_type != PT_NOTE || !inside(ph.p_offset, ph.p_filesz, size))
            continue;
        size_t at = (size_t)ph.p_offset, end = at + (size_t)ph.p_filesz;
        while (end - at >= sizeof(nhdr_t)) {
            nhdr_t nh;
            memcpy(&nh, f + at, sizeof nh);
            size_t name = (nh.n_namesz + 3u) & ~3u, desc = (nh.n_descsz + 3u) & ~3u;
            size_t body = at + sizeof nh;
            if (name > end - body || desc > end - body - name)
                break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && !memcmp(f + body, "GNU", 4) &&
                nh.n_descsz > 0) {
                hex(f + body + name, nh.n_descsz, out, n);
                return true;
            }
            at = body + name + desc;
        }
    }
    return false;
}

static int sha256_id(const uint8_t *f, size_t size, char *out, size_t n)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!EVP_Digest(f, size, md, &len, EVP_sha256(), NULL))
        return ARB_ERROR;
    char h[2 * EVP_MAX_MD_SIZE + 1];
    hex(md, len, h, sizeof h);
    snprintf(out, n, "sha256:%s", h);
    return ARB_OK;
}

/* The checks on the bytes themselves: what dlopen would map and read. */
static int check_elf(const uint8_t *f, size_t size, const char *shown, char *id, size_t idn,
                     char *err, size_t n)
{
    if (size == 0) {
        snprintf(err, n, "%s is empty (0 bytes): not a plugin (is the build still writing it?)",
                 shown);
        return ARB_EINVAL;
    }
    if (size < EI_NIDENT || memcmp(f, ELFMAG, SELFMAG)) {
        snprintf(err, n, "%s is not an ELF file (%zu bytes): not a plugin", shown, size);
        return ARB_EINVAL;
    }
    if (size < sizeof(ehdr_t)) {
        snprintf(err, n, "%s is truncated: %zu bytes, shorter than its ELF header", shown, size);
        return ARB_EINVAL;
    }
    ehdr_t eh;
    memcpy(&eh, f, sizeof eh);
    if (eh.e_ident[EI_CLASS] != ARBH_ELFCLASS || eh.e_ident[EI_DATA] != ARBH_ELFDATA ||
        eh.e_machine != ARBH_EM) {
        snprintf(err, n,
                 "%s was built for another machine (ELF class %u, data %u, machine %u; this host "
                 "needs class %u, data %u, machine %u)",
                 shown, eh.e_ident[EI_CLASS], eh.e_ident[EI_DATA], eh.e_machine, ARBH_ELFCLASS,
                 ARBH_ELFDATA, ARBH_EM);
        return ARB_EINVAL;
    }
    if (eh.e_type != ET_DYN) {
        snprintf(err, n, "%s is not a shared object (ELF type %u; build it with -shared)", shown,
                 eh.e_type);
        return ARB_EINVAL;
    }
    if (eh.e_phnum == 0 || eh.e_phentsize != sizeof(phdr_t) ||
        !inside(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(phdr_t), size)) {
        snprintf(err, n,
                 "%s is truncated or damaged: its program headers (%u at offset %llu) are not "
                 "inside its %zu bytes",
                 shown, eh.e_phnum, (unsigned long long)eh.e_phoff, size);
        return ARB_EINVAL;
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        phdr_t ph;
        memcpy(&ph, f + eh.e_phoff + (size_t)i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_NULL && !inside(ph.p_offset, ph.p_filesz, size)) {
            snprintf(err, n,
                     "%s is truncated: segment %u ends at byte %llu, the file has %zu "
                     "(is the build still writing it?)",
                     shown, i, (unsigned long long)(ph.p_offset + ph.p_filesz), size);
            return ARB_EINVAL;
        }
    }
    if (eh.e_shnum && (eh.e_shentsize != sizeof(shdr_t) ||
                       !inside(eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(shdr_t), size))) {
        snprintf(err, n,
                 "%s is truncated: its section headers (%u at offset %llu) are not inside its %zu "
                 "bytes (is the build still writing it?)",
                 shown, eh.e_shnum, (unsigned long long)eh.e_shoff, size);
        return ARB_EINVAL;
    }
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        shdr_t sh;
        memcpy(&sh, f + eh.e_shoff + (size_t)i * sizeof sh, sizeof sh);
        if (sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL &&
            !inside(sh.sh_offset, sh.sh_size, size)) {
            snprintf(err, n, "%s is truncated: section %u ends at byte %llu, the file has %zu",
                     shown, i, (unsigned long long)(sh.sh_offset + sh.sh_size), size);
            return ARB_EINVAL;
        }
    }
    /* A linker that writes through a mapping sizes the file first and fills
     * it after: every header can be inside the file and still be zeros. The
     * section name table and the dynamic array are written last and must be
     * real, or dlopen would relocate garbage. */
    shdr_t names = {0};
    if (eh.e_shnum && eh.e_shstrndx < eh.e_shnum)
        memcpy(&names, f + eh.e_shoff + (size_t)eh.e_shstrndx * sizeof names, sizeof names);
    if (!eh.e_shnum || names.sh_type != SHT_STRTAB || names.sh_size == 0) {
        snprintf(err, n, "%s is incomplete: no section name table (is the build still writing it?)",
                 shown);
        return ARB_EINVAL;
    }
    bool dynamic_ok = false;
    for (unsigned i = 0; i < eh.e_phnum && !dynamic_ok; i++) {
        phdr_t ph;
        memcpy(&ph, f + eh.e_phoff + (size_t)i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_DYNAMIC)
            continue;
        bool strtab = false, symtab = false, end = false;
        for (size_t at = (size_t)ph.p_offset;
             !end && at + sizeof(dyn_t) <= (size_t)(ph.p_offset + ph.p_filesz);
             at += sizeof(dyn_t)) {
            dyn_t d;
            memcpy(&d, f + at, sizeof d);
            strtab |= d.d_tag == DT_STRTAB;
            symtab |= d.d_tag == DT_SYMTAB;
            end = d.d_tag == DT_NULL;
        }
        dynamic_ok = strtab && symtab && end;
    }
    if (!dynamic_ok) {
        snprintf(err, n,
                 "%s is incomplete: no dynamic symbol table (is the build still writing it?)",
                 shown);
        return ARB_EINVAL;
    }
    if (!gnu_build_id(f, size, &eh, id, idn) && sha256_id(f, size, id, idn) != ARB_OK) {
        snprintf(err, n, "%s: cannot compute its SHA-256", shown);
        return ARB_ERROR;
    }
    return ARB_OK;
}

/* Reads a whole regular file; the size is checked against fstat before and
 * after, so a file still being written is refused rather than half read. */
static int read_stable(const char *path, const char *shown, uint8_t **out, size_t *len, char *err,
                       size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, n, "cannot open %s: %s", shown, strerror(errno));
        return ARB_ERROR;
    }
    struct stat before, after;
    if (fstat(fd, &before) || !S_ISREG(before.st_mode)) {
        snprintf(err, n, "%s is not a regular file", shown);
        close(fd);
        return ARB_EINVAL;
    }
    size_t cap = (size_t)before.st_size, got = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        snprintf(err, n, "out of memory reading %s", shown);
        return ARB_ENOMEM;
    }
    /* One byte more than fstat said: reading it means the file grew. */
    for (;;) {
        ssize_t k = read(fd, buf + got, cap + 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(err, n, "cannot read %s: %s", shown, strerror(errno));
            free(buf);
            close(fd);
            return ARB_ERROR;
        }
        got += (size_t)k;
        if (k == 0 || got == cap + 1)
            break;
    }
    int rc = fstat(fd, &after);
    close(fd);
    if (rc || got != cap || after.st_size != before.st_size ||
        after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != before.st_mtim.tv_nsec) {
        snprintf(err, n,
                 "%s changed while it was read (%lld bytes, then %lld): is the build still writing "
                 "it? Reload once it is finished",
                 shown, (long long)before.st_size, (long long)after.st_size);
        free(buf);
        return ARB_EINVAL;
    }
    *out = buf;
    *len = got;
    return ARB_OK;
}

int arbh_image_check(const char *path, char *id, size_t idn, char *err, size_t n)
{
    uint8_t *f;
    size_t size;
    int rc = read_stable(path, path, &f, &size, err, n);
    if (rc != ARB_OK)
        return rc;
    rc = check_elf(f, size, path, id, idn, err, n);
    free(f);
    return rc;
}

/* The copies are named after this process, so the next start can tell a
 * crashed host's leftovers from a running host's copy in progress. */
static const char *tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

int arbh_image_copy(const char *path, const char *instance, char *copy, size_t cn, char *id,
                    size_t idn, char *err, size_t n)
{
    uint8_t *f;
    size_t size;
    int rc = read_stable(path, path, &f, &size, err, n);
    if (rc != ARB_OK)
        return rc;
    if ((rc = check_elf(f, size, path, id, idn, err, n)) != ARB_OK) {
        free(f);
        return rc;
    }
    snprintf(copy, cn, "%s/arb-reload-%ld-%s-XXXXXX.so", tmp_dir(), (long)getpid(), instance);
    int dst = mkstemps(copy, 3);
    if (dst < 0) {
        snprintf(err, n, "cannot create a private copy of %s in %s: %s", path, tmp_dir(),
                 strerror(errno));
        free(f);
        copy[0] = 0;
        return ARB_ERROR;
    }
    arbh_crash_note_copy(copy);
    size_t off = 0;
    while (off < size) {
        ssize_t k = write(dst, f + off, size - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    free(f);
    if (close(dst) != 0 || off != size) {
        snprintf(err, n, "cannot write a private copy of %s in %s: %s", path, tmp_dir(),
                 strerror(errno ? errno : EIO));
        arbh_image_unlink(copy);
        return ARB_ERROR;
    }
    return ARB_OK;
}

void arbh_image_unlink(char *copy)
{
    if (copy[0])
        unlink(copy);
    copy[0] = 0;
    arbh_crash_note_copy(NULL);
}

int arbh_image_sweep(void)
{
    DIR *d = opendir(tmp_dir());
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid;
        int used = 0;
        if (sscanf(e->d_name, "arb-reload-%ld-%n", &pid, &used) != 1 || used == 0 || pid <= 0)
            continue;
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 3, ".so"))
            continue;
        /* Only copies whose host is gone: another host may be mid-reload. */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", tmp_dir(), e->d_name);
        removed += unlink(path) == 0;
    }
    closedir(d);
    return removed;
}
