//! The fault file system (`netsplit diskfs`): a FUSE pass-through mounted over a database's
//! data directory, onto that same directory beneath it, with its own cache of unsynced
//! writes and the disk faults of `nemesis::disk` (the pure part: the cache and the fault
//! decisions). This is the FUSE glue and the control socket.
//!
//! Beneath: before mounting, the directory is opened; every operation goes to
//! `/proc/self/fd/<that fd>/<path>`, which the kernel resolves in the directory *under* the
//! mount. So the data stays where the database keeps it: after an unmount (or a killed
//! harness's `netsplit heal`) the database finds its own files, with what was synced.
//!
//! Writes are held per inode ([`FileCache`]) and written beneath at fsync/fdatasync, on a
//! write through an `O_SYNC`/`O_DSYNC` descriptor, when the cache passes its limit (as the
//! kernel's writeback would), and on [`Command::Sync`]. [`Command::LoseUnsynced`] drops them.
//! Metadata operations go beneath at once.
//!
//! Control: a unix socket (`--control`), one JSON command a line, one JSON answer a line
//! (`{"ok": true, …}` or `{"ok": false, "error": …}`); `netsplit diskfs-ctl` is its client.

use super::disk::{Command, Faults, FileCache, IoOp};
use crate::generator::rng::Rng;
use anyhow::{anyhow, Context, Result};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, DirEntryExt, FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the kernel may keep attributes and entries.
const TTL: Duration = Duration::from_secs(1);

/// Held bytes past which everything held is written beneath (without a sync).
const CACHE_LIMIT: u64 = 256 << 20;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A FUSE reply that answers an operation's outcome: what the operation made, or its errno.
trait Answer<T> {
    fn answer(self, res: Result<T, Errno>);
}

/// `Reply: T => |reply, made| how;`: how `Reply` answers what an operation made.
macro_rules! answer {
    ($($reply:ty: $t:ty => |$r:ident, $made:pat_param| $ok:expr;)*) => {$(
        impl Answer<$t> for $reply {
            fn answer(self, res: Result<$t, Errno>) {
                let $r = self;
                match res {
                    Ok($made) => $ok,
                    Err(e) => $r.error(e),
                }
            }
        }
    )*};
}

answer! {
    ReplyEmpty: () => |r, ()| r.ok();
    ReplyEntry: FileAttr => |r, a| r.entry(&TTL, &a, Generation(0));
    ReplyAttr: FileAttr => |r, a| r.attr(&TTL, &a);
    ReplyData: Vec<u8> => |r, b| r.data(&b);
    ReplyWrite: u32 => |r, n| r.written(n);
    // A new file or directory handle.
    ReplyOpen: u64 => |r, fh| r.opened(FileHandle(fh), FopenFlags::empty());
    // A created file's attributes and its new handle.
    ReplyCreate: (FileAttr, u64) =>
        |r, (a, fh)| r.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty());
}

struct Handle {
    file: Arc<File>,
    ino: u64,
    /// Opened `O_SYNC` or `O_DSYNC`: every write is synced.
    sync: bool,
}

/// An open directory's entries: inode, kind, name.
type Listing = Vec<(u64, FileType, OsString)>;

struct Dirty {
    cache: FileCache,
    /// A descriptor of the file beneath, open for writing.
    file: Arc<File>,
    path: String,
}

/// The shared state: the FUSE handlers and the control socket both act on it.
pub struct Inner {
    /// The directory beneath, opened before the mount hid it.
    _root: File,
    /// `/proc/self/fd/<root fd>`.
    base: PathBuf,
    /// FUSE inode → path under the root ("" is the root).
    paths: Mutex<HashMap<u64, PathBuf>>,
    root_ino: u64,
    handles: Mutex<HashMap<u64, Handle>>,
    dirs: Mutex<HashMap<u64, Listing>>,
    next_fh: AtomicU64,
    dirty: Mutex<HashMap<u64, Dirty>>,
    held: AtomicU64,
    faults: Mutex<Faults>,
    rng: Mutex<Rng>,
}

impl Inner {
    /// Opens `dir` (before it is mounted over).
    pub fn open(dir: &Path, seed: u64) -> Result<Inner> {
        let root = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
        let md = root.metadata()?;
        if !md.is_dir() {
            return Err(anyhow!("{} is not a directory", dir.display()));
        }
        let base = PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd()));
        let mut paths = HashMap::new();
        paths.insert(1, PathBuf::new());
        Ok(Inner {
            _root: root,
            base,
            paths: Mutex::new(paths),
            root_ino: md.ino(),
            handles: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            dirty: Mutex::new(HashMap::new()),
            held: AtomicU64::new(0),
            faults: Mutex::new(Faults::default()),
            rng: Mutex::new(Rng::new(seed)),
        })
    }

    fn ino_of(&self, lower: u64) -> u64 {
        if lower == self.root_ino {
            1
        } else {
            lower
        }
    }

    fn rel(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        lock(&self.paths).get(&ino.0).cloned().ok_or(Errno::ESTALE)
    }

    fn lower(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.base.clone()
        } else {
            self.base.join(rel)
        }
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.rel(parent)?.join(name))
    }

    /// Waits and fails as the faults in force say, for `op` on `rel`.
    fn gate(&self, op: IoOp, rel: &Path, grows: bool) -> Result<(), Errno> {
        let (delay, fail) = {
            let f = lock(&self.faults);
            if !f.any() {
                return Ok(());
            }
            let p = format!("/{}", rel.display());
            (f.delay(op), f.fails(op, &p, grows, &mut lock(&self.rng)))
        };
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        match fail {
            Some(e) => Err(Errno::from_i32(e)),
            None => Ok(()),
        }
    }

    fn attr_of(&self, md: &std::fs::Metadata) -> FileAttr {
        let ino = self.ino_of(md.ino());
        let held_end = lock(&self.dirty).get(&ino).map_or(0, |d| d.cache.end());
        let kind = FileType::from_std(md.file_type()).unwrap_or(FileType::RegularFile);
        let t = |s: i64, ns: i64| {
            if s >= 0 {
                UNIX_EPOCH + Duration::new(s as u64, ns as u32)
            } else {
                UNIX_EPOCH
            }
        };
        FileAttr {
            ino: INodeNo(ino),
            size: md.size().max(held_end),
            blocks: md.blocks(),
            atime: t(md.atime(), md.atime_nsec()),
            mtime: t(md.mtime(), md.mtime_nsec()),
            ctime: t(md.ctime(), md.ctime_nsec()),
            crtime: t(md.ctime(), md.ctime_nsec()),
            kind,
            perm: (md.mode() & 0o7777) as u16,
            nlink: md.nlink() as u32,
            uid: md.uid(),
            gid: md.gid(),
            rdev: md.rdev() as u32,
            blksize: md.blksize() as u32,
            flags: 0,
        }
    }

    /// Looks `rel` up beneath, remembers its inode, and answers its attributes.
    fn entry(&self, rel: PathBuf) -> Result<FileAttr, Errno> {
        // The root is the magic link /proc/self/fd/N itself: followed, not read as a link.
        let md = if rel.as_os_str().is_empty() {
            std::fs::metadata(&self.base)
        } else {
            std::fs::symlink_metadata(self.lower(&rel))
        }
        .map_err(|e| errno(&e))?;
        let attr = self.attr_of(&md);
        lock(&self.paths).insert(attr.ino.0, rel);
        Ok(attr)
    }

    fn own(&self, rel: &Path, req: &Request) {
        let _ = std::os::unix::fs::lchown(self.lower(rel), Some(req.uid()), Some(req.gid()));
    }

    /// Makes the entry `name` in `parent` (mknod, mkdir, symlink): `make` is given its path
    /// beneath; the new entry belongs to the caller.
    fn make(
        &self,
        parent: INodeNo,
        name: &OsStr,
        req: &Request,
        make: impl FnOnce(&Path) -> Result<(), Errno>,
    ) -> Result<FileAttr, Errno> {
        let rel = self.child(parent, name)?;
        self.gate(IoOp::Meta, &rel, true)?;
        make(&self.lower(&rel))?;
        self.own(&rel, req);
        self.entry(rel)
    }

    /// Removes the entry `name` from `parent` (unlink, rmdir): `remove` is given its path
    /// beneath.
    fn remove(
        &self,
        parent: INodeNo,
        name: &OsStr,
        remove: fn(PathBuf) -> std::io::Result<()>,
    ) -> Result<(), Errno> {
        let rel = self.child(parent, name)?;
        self.gate(IoOp::Meta, &rel, false)?;
        remove(self.lower(&rel)).map_err(|e| errno(&e))
    }

    fn new_fh(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, h);
        fh
    }

    fn handle(&self, fh: FileHandle) -> Result<(Arc<File>, u64, bool), Errno> {
        lock(&self.handles)
            .get(&fh.0)
            .map(|h| (h.file.clone(), h.ino, h.sync))
            .ok_or(Errno::EBADF)
    }

    /// Writes what is held for `ino` beneath; syncs it when `sync`.
    fn write_back(&self, ino: u64, sync: bool) -> std::io::Result<()> {
        let d = lock(&self.dirty).remove(&ino);
        if let Some(mut d) = d {
            let taken = d.cache.take();
            for (off, data) in &taken {
                if let Err(e) = d.file.write_all_at(data, *off) {
                    // Keep it held: the next sync tries again.
                    for (off, data) in taken {
                        d.cache.write(off, &data);
                    }
                    lock(&self.dirty).entry(ino).or_insert(d);
                    return Err(e);
                }
            }
            if sync {
                d.file.sync_data()?;
            }
        }
        Ok(())
    }

    fn write_back_all(&self, sync: bool) -> std::io::Result<usize> {
        let inos: Vec<u64> = lock(&self.dirty).keys().copied().collect();
        for ino in &inos {
            self.write_back(*ino, sync)?;
        }
        self.held.store(0, Ordering::Relaxed);
        Ok(inos.len())
    }

    /// A crash: drops everything held; with `torn`, a prefix of each file's last unsynced
    /// write reaches the file beneath first. Answers what was lost.
    fn lose(&self, torn: bool) -> Value {
        let all: Vec<(u64, Dirty)> = lock(&self.dirty).drain().collect();
        self.held.store(0, Ordering::Relaxed);
        let mut bytes = 0;
        let mut files = Vec::new();
        let mut torn_files = Vec::new();
        for (_, d) in all {
            bytes += d.cache.dirty_bytes();
            files.push(d.path.clone());
            if torn {
                if let Some((off, prefix)) = d.cache.torn(&mut lock(&self.rng)) {
                    if d.file.write_all_at(&prefix, off).is_ok() {
                        torn_files
                            .push(json!({"path": d.path, "offset": off, "kept": prefix.len()}));
                    }
                }
            }
        }
        files.sort();
        json!({"ok": true, "lost_bytes": bytes, "files": files, "torn": torn_files})
    }

    /// Answers one control command.
    pub fn control(&self, c: &Command) -> Value {
        let mut faults = lock(&self.faults);
        if faults.apply(c) {
            return json!({"ok": true, "faults": faults.names()});
        }
        match c {
            Command::LoseUnsynced { torn } => {
                let torn = *torn || faults.torn;
                faults.torn = false;
                drop(faults);
                self.lose(torn)
            }
            Command::Sync => {
                drop(faults);
                match self.write_back_all(true) {
                    Ok(n) => json!({"ok": true, "files": n}),
                    Err(e) => json!({"ok": false, "error": e.to_string()}),
                }
            }
            _ => {
                let names = faults.names();
                drop(faults);
                let d = lock(&self.dirty);
                let bytes: u64 = d.values().map(|d| d.cache.dirty_bytes()).sum();
                json!({"ok": true, "faults": names, "held_bytes": bytes, "held_files": d.len()})
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr_inner(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
    ) -> Result<FileAttr, Errno> {
        let rel = self.rel(ino)?;
        let p = self.lower(&rel);
        let e = |e: std::io::Error| errno(&e);
        if let Some(m) = mode {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m & 0o7777)).map_err(e)?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(&p, uid, gid).map_err(e)?;
        }
        if let Some(n) = size {
            self.gate(IoOp::Meta, &rel, false)?;
            let file = match fh.map(|f| self.handle(f)) {
                Some(Ok((f, _, _))) => f,
                _ => Arc::new(OpenOptions::new().write(true).open(&p).map_err(e)?),
            };
            file.set_len(n).map_err(e)?;
            if let Some(d) = lock(&self.dirty).get_mut(&ino.0) {
                d.cache.truncate(n);
            }
        }
        if atime.is_some() || mtime.is_some() {
            let ts = |t: Option<TimeOrNow>| match t {
                None => libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_OMIT,
                },
                Some(TimeOrNow::Now) => libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_NOW,
                },
                Some(TimeOrNow::SpecificTime(t)) => {
                    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                    libc::timespec {
                        tv_sec: d.as_secs() as libc::time_t,
                        tv_nsec: d.subsec_nanos() as libc::c_long,
                    }
                }
            };
            let times = [ts(atime), ts(mtime)];
            let c = CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
            // SAFETY: a valid C string and two timespecs.
            let r = unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    times.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if r != 0 {
                return Err(errno(&std::io::Error::last_os_error()));
            }
        }
        self.entry(rel)
    }
}

/// The FUSE side: a thin wrapper around the shared state.
pub struct DiskFs(pub Arc<Inner>);

fn open_opts(flags: i32) -> (OpenOptions, bool) {
    let acc = flags & libc::O_ACCMODE;
    let mut o = OpenOptions::new();
    o.read(true);
    if acc != libc::O_RDONLY {
        o.write(true);
    }
    let sync = flags & (libc::O_SYNC | libc::O_DSYNC) != 0;
    (o, sync)
}

impl Filesystem for DiskFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply.answer(self.0.child(parent, name).and_then(|r| self.0.entry(r)));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        if let Some(Ok((f, _, _))) = fh.map(|f| self.0.handle(f)) {
            match f.metadata() {
                Ok(md) => {
                    let mut a = self.0.attr_of(&md);
                    a.ino = ino;
                    return reply.attr(&TTL, &a);
                }
                Err(e) => return reply.error(errno(&e)),
            }
        }
        reply.answer(self.0.rel(ino).and_then(|r| self.0.entry(r)));
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.answer(
            self.0
                .setattr_inner(ino, mode, uid, gid, size, atime, mtime, fh),
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let res = self
            .0
            .rel(ino)
            .and_then(|r| std::fs::read_link(self.0.lower(&r)).map_err(|e| errno(&e)));
        reply.answer(res.map(|t| t.into_os_string().into_vec()));
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.answer(self.0.make(parent, name, req, |lower| {
            let c = CString::new(lower.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
            // SAFETY: a valid C string.
            if unsafe { libc::mknod(c.as_ptr(), mode & !umask, rdev as libc::dev_t) } != 0 {
                return Err(errno(&std::io::Error::last_os_error()));
            }
            Ok(())
        }));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        reply.answer(self.0.make(parent, name, req, |lower| {
            std::fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(lower)
                .map_err(|e| errno(&e))
        }));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply.answer(self.0.remove(parent, name, std::fs::remove_file));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply.answer(self.0.remove(parent, name, std::fs::remove_dir));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        reply.answer(self.0.make(parent, link_name, req, |lower| {
            std::os::unix::fs::symlink(target, lower).map_err(|e| errno(&e))
        }));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let res = (|| {
            let from = self.0.child(parent, name)?;
            let to = self.0.child(newparent, newname)?;
            self.0.gate(IoOp::Meta, &from, false)?;
            let a = CString::new(self.0.lower(&from).as_os_str().as_bytes())
                .map_err(|_| Errno::EINVAL)?;
            let b = CString::new(self.0.lower(&to).as_os_str().as_bytes())
                .map_err(|_| Errno::EINVAL)?;
            // SAFETY: valid C strings.
            let r = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    flags.bits(),
                )
            };
            if r != 0 {
                return Err(errno(&std::io::Error::last_os_error()));
            }
            let mut paths = lock(&self.0.paths);
            for p in paths.values_mut() {
                if let Ok(rest) = p.strip_prefix(&from) {
                    *p = if rest.as_os_str().is_empty() {
                        to.clone()
                    } else {
                        to.join(rest)
                    };
                }
            }
            Ok(())
        })();
        reply.answer(res);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let res = (|| {
            let from = self.0.rel(ino)?;
            let to = self.0.child(newparent, newname)?;
            self.0.gate(IoOp::Meta, &to, true)?;
            std::fs::hard_link(self.0.lower(&from), self.0.lower(&to)).map_err(|e| errno(&e))?;
            self.0.entry(to)
        })();
        reply.answer(res);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let res = (|| {
            let rel = self.0.rel(ino)?;
            self.0.gate(IoOp::Open, &rel, false)?;
            let (o, sync) = open_opts(flags.0);
            let f = o.open(self.0.lower(&rel)).map_err(|e| errno(&e))?;
            Ok(self.0.new_fh(Handle {
                file: Arc::new(f),
                ino: ino.0,
                sync,
            }))
        })();
        reply.answer(res);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let res = (|| {
            let rel = self.0.child(parent, name)?;
            self.0.gate(IoOp::Meta, &rel, true)?;
            let (mut o, sync) = open_opts(flags);
            o.write(true).mode(mode & !umask & 0o7777);
            if flags & libc::O_EXCL != 0 {
                o.create_new(true);
            } else {
                o.create(true);
            }
            let f = o.open(self.0.lower(&rel)).map_err(|e| errno(&e))?;
            self.0.own(&rel, req);
            let attr = self.0.entry(rel)?;
            let fh = self.0.new_fh(Handle {
                file: Arc::new(f),
                ino: attr.ino.0,
                sync,
            });
            Ok((attr, fh))
        })();
        reply.answer(res);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let res = (|| {
            let rel = self.0.rel(ino).unwrap_or_default();
            self.0.gate(IoOp::Read, &rel, false)?;
            let (file, _, _) = self.0.handle(fh)?;
            let lower_len = file.metadata().map_err(|e| errno(&e))?.len();
            let dirty = lock(&self.0.dirty);
            let held = dirty.get(&ino.0);
            let len = lower_len.max(held.map_or(0, |d| d.cache.end()));
            if offset >= len {
                return Ok(Vec::new());
            }
            let n = (size as u64).min(len - offset) as usize;
            let mut buf = vec![0u8; n];
            let mut got = 0;
            while got < n {
                match file.read_at(&mut buf[got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(k) => got += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(errno(&e)),
                }
            }
            if let Some(d) = held {
                d.cache.overlay(offset, &mut buf);
            }
            drop(dirty);
            let f = lock(&self.0.faults);
            if f.corrupt.is_some() {
                let p = format!("/{}", rel.display());
                f.corrupt(&p, &mut buf, &mut lock(&self.0.rng));
            }
            Ok(buf)
        })();
        reply.answer(res);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let res = (|| {
            let rel = self.0.rel(ino).unwrap_or_default();
            let (file, _, sync) = self.0.handle(fh)?;
            let full = lock(&self.0.faults).full;
            let grows = full && {
                let lower = file.metadata().map_err(|e| errno(&e))?.len();
                let held = lock(&self.0.dirty).get(&ino.0).map_or(0, |d| d.cache.end());
                offset + data.len() as u64 > lower.max(held)
            };
            self.0.gate(IoOp::Write, &rel, grows)?;
            {
                let mut dirty = lock(&self.0.dirty);
                let d = dirty.entry(ino.0).or_insert_with(|| Dirty {
                    cache: FileCache::default(),
                    file: file.clone(),
                    path: format!("/{}", rel.display()),
                });
                d.cache.write(offset, data);
            }
            let held = self.0.held.fetch_add(data.len() as u64, Ordering::Relaxed);
            if sync {
                self.0.write_back(ino.0, true).map_err(|e| errno(&e))?;
            } else if held > CACHE_LIMIT {
                self.0.write_back_all(false).map_err(|e| errno(&e))?;
            }
            Ok(data.len() as u32)
        })();
        reply.answer(res);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.0.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let res = (|| {
            let rel = self.0.rel(ino).unwrap_or_default();
            self.0.gate(IoOp::Fsync, &rel, false)?;
            self.0.write_back(ino.0, false).map_err(|e| errno(&e))?;
            let (file, _, _) = self.0.handle(fh)?;
            if datasync {
                file.sync_data()
            } else {
                file.sync_all()
            }
            .map_err(|e| errno(&e))
        })();
        reply.answer(res);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let res = (|| {
            let rel = self.0.rel(ino)?;
            let mut list = vec![
                (ino.0, FileType::Directory, OsString::from(".")),
                (1, FileType::Directory, OsString::from("..")),
            ];
            for e in std::fs::read_dir(self.0.lower(&rel)).map_err(|e| errno(&e))? {
                let e = e.map_err(|e| errno(&e))?;
                let kind = e
                    .file_type()
                    .ok()
                    .and_then(FileType::from_std)
                    .unwrap_or(FileType::RegularFile);
                list.push((self.0.ino_of(e.ino()), kind, e.file_name()));
            }
            let fh = self.0.next_fh.fetch_add(1, Ordering::Relaxed);
            lock(&self.0.dirs).insert(fh, list);
            Ok(fh)
        })();
        reply.answer(res);
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let dirs = lock(&self.0.dirs);
        let Some(list) = dirs.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, (ino, kind, name)) in list.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.0.dirs).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let res = (|| {
            let rel = self.0.rel(ino)?;
            self.0.gate(IoOp::Fsync, &rel, false)?;
            File::open(self.0.lower(&rel))
                .and_then(|f| f.sync_all())
                .map_err(|e| errno(&e))
        })();
        reply.answer(res);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let c = CString::new(self.0.base.as_os_str().as_bytes()).expect("no NUL");
        // SAFETY: a valid C string and a zeroed statvfs to fill.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
            return reply.error(errno(&std::io::Error::last_os_error()));
        }
        let full = lock(&self.0.faults).full;
        let (bfree, bavail) = if full {
            (0, 0)
        } else {
            (s.f_bfree, s.f_bavail)
        };
        reply.statfs(
            s.f_blocks,
            bfree,
            bavail,
            s.f_files,
            s.f_ffree,
            s.f_bsize as u32,
            s.f_namemax as u32,
            s.f_frsize as u32,
        );
    }

    /// Extended attributes are not kept: the kernel stops asking.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        reply.error(Errno::from_i32(libc::EOPNOTSUPP));
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let res = (|| {
            let rel = self.0.rel(ino).unwrap_or_default();
            self.0.gate(IoOp::Write, &rel, true)?;
            let (file, _, _) = self.0.handle(fh)?;
            // SAFETY: an open descriptor.
            let r = unsafe {
                libc::fallocate(
                    file.as_raw_fd(),
                    mode,
                    offset as libc::off_t,
                    length as libc::off_t,
                )
            };
            if r != 0 {
                return Err(errno(&std::io::Error::last_os_error()));
            }
            Ok(())
        })();
        reply.answer(res);
    }
}

/// Serves the control socket at `path` (replacing a stale one) on a thread.
fn serve_control(inner: Arc<Inner>, path: &Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let inner = inner.clone();
            std::thread::spawn(move || {
                let mut w = match conn.try_clone() {
                    Ok(w) => w,
                    Err(_) => return,
                };
                for line in BufReader::new(conn).lines() {
                    let Ok(line) = line else { break };
                    if line.trim().is_empty() {
                        continue;
                    }
                    let answer = match Command::parse(&line) {
                        Ok(c) => {
                            let a = inner.control(&c);
                            eprintln!("netsplit diskfs: {line} -> {a}");
                            a
                        }
                        Err(e) => json!({"ok": false, "error": e}),
                    };
                    if writeln!(w, "{answer}").is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(())
}

/// `netsplit diskfs`: mounts the fault file system over `dir` and serves it until it is
/// unmounted. Says `mounted <dir>` on stderr once the mount is in place.
pub fn run(dir: &Path, control: &Path, seed: u64) -> Result<()> {
    let inner = Arc::new(Inner::open(dir, seed)?);
    serve_control(inner.clone(), control)?;
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![
        MountOption::FSName("netsplit-diskfs".into()),
        MountOption::Subtype("netsplit".into()),
        MountOption::DefaultPermissions,
        MountOption::RW,
    ];
    cfg.acl = fuser::SessionACL::All;
    cfg.n_threads = Some(4);
    let session = fuser::Session::new(DiskFs(inner.clone()), dir, &cfg)
        .with_context(|| format!("mounting the fault file system over {}", dir.display()))?;
    eprintln!("netsplit diskfs: mounted {}", dir.display());
    let r = session.run();
    // Unmounted: whatever is still held was never synced; an orderly unmount (`Sync` first)
    // left nothing.
    let left = inner.control(&Command::Status);
    eprintln!("netsplit diskfs: unmounted {} ({left})", dir.display());
    let _ = std::fs::remove_file(control);
    r.map_err(|e| anyhow!("serving {}: {e}", dir.display()))
}

/// `netsplit diskfs-ctl`: sends one command to a running file system and prints its answer;
/// an error when it cannot be reached or refuses.
pub fn ctl(control: &Path, line: &str) -> Result<Value> {
    let mut s = UnixStream::connect(control)
        .with_context(|| format!("connecting to {}", control.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    writeln!(s, "{}", line.trim())?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    let v: Value = serde_json::from_str(answer.trim())
        .map_err(|e| anyhow!("bad answer from {}: {e}: {answer:?}", control.display()))?;
    if v["ok"] != json!(true) {
        return Err(anyhow!(
            "{}: {}",
            control.display(),
            v["error"].as_str().unwrap_or("refused")
        ));
    }
    Ok(v)
}
