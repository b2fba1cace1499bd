//! The pure half of the disk faults: the fault file system's page cache of unsynced writes
//! ([`FileCache`]), the faults in force and their decisions ([`Faults`]), and the control
//! protocol between the nemesis and the file system ([`Command`], one JSON object a line).
//! No I/O here: `diskfs` is the FUSE glue that runs it over a real directory, and
//! `families::disk` the fault families that drive it.
//!
//! The cache works as LazyFS's: a write is held in memory, per file, until that file is
//! fsynced (or fdatasynced, or written through an `O_SYNC`/`O_DSYNC` descriptor); reads see the
//! cache over the real file beneath. A *crash* ([`Command::LoseUnsynced`]) drops what is held:
//! the file beneath keeps only what was synced. Metadata (create, rename, unlink, truncate,
//! mkdir) goes to the directory beneath at once and survives a crash.

use crate::generator::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The page size torn writes tear within.
pub const PAGE: u64 = 4096;

/// The unsynced writes of one file: disjoint extents (offset → bytes), merged when they touch.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FileCache {
    extents: BTreeMap<u64, Vec<u8>>,
    /// The last write not yet synced: (offset, length).
    last: Option<(u64, u64)>,
}

impl FileCache {
    /// Holds `data` written at `off`.
    pub fn write(&mut self, off: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = off + data.len() as u64;
        self.last = Some((off, data.len() as u64));
        // The extent starting at or before `off`, when it reaches `off`.
        let prev = self
            .extents
            .range(..=off)
            .next_back()
            .map(|(s, v)| (*s, *s + v.len() as u64))
            .filter(|&(_, e)| e >= off);
        let next_overlaps = self
            .extents
            .range(off.saturating_add(1)..=end)
            .next()
            .is_some();
        if let (Some((s, e)), false) = (prev, next_overlaps) {
            // Fast path: within or extending the previous extent (appends).
            let v = self.extents.get_mut(&s).expect("present");
            if end > e {
                v.resize((end - s) as usize, 0);
            }
            let at = (off - s) as usize;
            v[at..at + data.len()].copy_from_slice(data);
            return;
        }
        // General case: merge every extent that overlaps or touches [off, end].
        let start = prev.map_or(off, |(s, _)| s);
        let touched: Vec<u64> = self.extents.range(start..=end).map(|(s, _)| *s).collect();
        let mut merged_end = end;
        let mut olds = Vec::new();
        for s in touched {
            let v = self.extents.remove(&s).expect("present");
            merged_end = merged_end.max(s + v.len() as u64);
            olds.push((s, v));
        }
        let mut buf = vec![0u8; (merged_end - start) as usize];
        for (s, v) in olds {
            let at = (s - start) as usize;
            buf[at..at + v.len()].copy_from_slice(&v);
        }
        let at = (off - start) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        self.extents.insert(start, buf);
    }

    /// Lays the held bytes of `[off, off + buf.len())` over `buf` (which holds the file
    /// beneath, zero past its end).
    pub fn overlay(&self, off: u64, buf: &mut [u8]) {
        let end = off + buf.len() as u64;
        let first = self
            .extents
            .range(..=off)
            .next_back()
            .map(|(s, _)| *s)
            .unwrap_or(off);
        for (s, v) in self.extents.range(first..end) {
            let e = s + v.len() as u64;
            let lo = (*s).max(off);
            let hi = e.min(end);
            if lo >= hi {
                continue;
            }
            buf[(lo - off) as usize..(hi - off) as usize]
                .copy_from_slice(&v[(lo - s) as usize..(hi - s) as usize]);
        }
    }

    /// Where the held writes end (0: nothing held).
    pub fn end(&self) -> u64 {
        self.extents
            .iter()
            .next_back()
            .map_or(0, |(s, v)| s + v.len() as u64)
    }

    /// The file was truncated to `len`: nothing held past it.
    pub fn truncate(&mut self, len: u64) {
        let beyond: Vec<u64> = self.extents.range(len..).map(|(s, _)| *s).collect();
        for s in beyond {
            self.extents.remove(&s);
        }
        if let Some((s, v)) = self.extents.iter_mut().next_back() {
            if s + v.len() as u64 > len {
                v.truncate((len - s) as usize);
            }
        }
        self.extents.retain(|_, v| !v.is_empty());
        if self.last.is_some_and(|(o, _)| o >= len) {
            self.last = None;
        }
    }

    /// The bytes held.
    pub fn dirty_bytes(&self) -> u64 {
        self.extents.values().map(|v| v.len() as u64).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.extents.is_empty()
    }

    /// Everything held, to write to the file beneath (an fsync); the cache is then empty.
    pub fn take(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.last = None;
        std::mem::take(&mut self.extents).into_iter().collect()
    }

    /// What a torn last write leaves on disk at a crash: a prefix of it, shorter than the
    /// write and never past the end of its first page (at least one byte). None when no
    /// unsynced write is known.
    pub fn torn(&self, rng: &mut Rng) -> Option<(u64, Vec<u8>)> {
        let (off, len) = self.last?;
        let page_room = PAGE - off % PAGE;
        // 1 ..= min(len - 1, room left in the page): never the whole write.
        let max = len.saturating_sub(1).min(page_room).max(1);
        let keep = (1 + rng.below(max)).min(len);
        let mut buf = vec![0u8; keep as usize];
        self.overlay(off, &mut buf);
        Some((off, buf))
    }
}

/// A kind of file operation, as the `error` and `slow` faults choose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoOp {
    /// Reads.
    Read,
    /// Writes.
    Write,
    /// fsync and fdatasync.
    Fsync,
    /// Opens.
    Open,
    /// Create, rename, unlink, mkdir, truncate.
    Meta,
}

impl IoOp {
    /// Every kind.
    pub const ALL: [IoOp; 5] = [IoOp::Read, IoOp::Write, IoOp::Fsync, IoOp::Open, IoOp::Meta];
}

/// What the file system is told over its control socket, one JSON object a line (`cmd`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    /// Operations of these kinds on paths containing `path` fail with EIO, a `fraction` of
    /// them.
    Error {
        #[serde(default = "all_ops")]
        /// The kinds of operation that fail (default all).
        ops: Vec<IoOp>,
        #[serde(default = "one")]
        /// The share of matching operations that fail (0 to 1, default 1).
        fraction: f64,
        #[serde(default)]
        /// Only paths containing this (default any).
        path: Option<String>,
    },
    /// Every operation of these kinds waits `delay_ms` first.
    Slow {
        /// The delay before each operation, in milliseconds.
        delay_ms: u64,
        #[serde(default = "all_ops")]
        /// The kinds of operation delayed (default all).
        ops: Vec<IoOp>,
    },
    /// Writes that would grow a file, and creates, fail with ENOSPC.
    Full,
    /// A `fraction` of reads of paths containing `path` come back with one bit flipped.
    Corrupt {
        #[serde(default = "half")]
        /// The share of matching reads corrupted (0 to 1, default 0.5).
        fraction: f64,
        #[serde(default)]
        /// Only paths containing this (default any).
        path: Option<String>,
    },
    /// Arms torn writes: the next [`Command::LoseUnsynced`] keeps a prefix of each file's
    /// last unsynced write.
    TornWrite,
    /// A crash: every unsynced write is dropped (a torn prefix kept when armed or `torn`).
    LoseUnsynced {
        #[serde(default)]
        /// Keep a torn prefix of each file's last unsynced write.
        torn: bool,
    },
    /// Ends one fault (`error`, `slow`, `full`, `corrupt`, `torn-write`).
    End {
        /// The fault to end.
        fault: String,
    },
    /// Ends every fault (what is held stays held).
    Clear,
    /// Writes everything held to the files beneath and syncs them (an orderly shutdown).
    Sync,
    /// What is in force and how much is held.
    Status,
}

fn all_ops() -> Vec<IoOp> {
    IoOp::ALL.to_vec()
}
fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}

impl Command {
    /// Parses one control line; the error says what is wrong.
    pub fn parse(line: &str) -> Result<Command, String> {
        let c: Command = serde_json::from_str(line.trim()).map_err(|e| e.to_string())?;
        match &c {
            Command::Error { fraction, .. } | Command::Corrupt { fraction, .. }
                if !(0.0..=1.0).contains(fraction) || fraction.is_nan() =>
            {
                Err(format!("fraction {fraction} is not between 0 and 1"))
            }
            Command::End { fault }
                if !["error", "slow", "full", "corrupt", "torn-write"]
                    .contains(&fault.as_str()) =>
            {
                Err(format!("no fault {fault:?} to end"))
            }
            _ => Ok(c),
        }
    }
}

/// The faults in force, and what each decides for one operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// (ops, fraction, path filter)
    pub error: Option<(Vec<IoOp>, f64, Option<String>)>,
    /// (delay, ops)
    pub slow: Option<(Duration, Vec<IoOp>)>,
    /// Whether writes that grow a file fail with ENOSPC.
    pub full: bool,
    /// (fraction, path filter)
    pub corrupt: Option<(f64, Option<String>)>,
    /// Whether the next crash keeps a torn prefix of each file's last unsynced write.
    pub torn: bool,
}

fn matches(filter: &Option<String>, path: &str) -> bool {
    filter.as_deref().is_none_or(|f| path.contains(f))
}

impl Faults {
    /// Applies a fault command (`Error`, `Slow`, `Full`, `Corrupt`, `TornWrite`, `Clear`);
    /// false for the commands that are not about faults.
    pub fn apply(&mut self, c: &Command) -> bool {
        match c {
            Command::Error {
                ops,
                fraction,
                path,
            } => self.error = Some((ops.clone(), *fraction, path.clone())),
            Command::Slow { delay_ms, ops } => {
                self.slow = Some((Duration::from_millis(*delay_ms), ops.clone()))
            }
            Command::Full => self.full = true,
            Command::Corrupt { fraction, path } => self.corrupt = Some((*fraction, path.clone())),
            Command::TornWrite => self.torn = true,
            Command::End { fault } => match fault.as_str() {
                "error" => self.error = None,
                "slow" => self.slow = None,
                "full" => self.full = false,
                "corrupt" => self.corrupt = None,
                "torn-write" => self.torn = false,
                _ => {}
            },
            Command::Clear => *self = Faults::default(),
            _ => return false,
        }
        true
    }

    /// Whether any fault is in force.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }

    /// The names of the faults in force.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.error.is_some() {
            v.push("error");
        }
        if self.slow.is_some() {
            v.push("slow");
        }
        if self.full {
            v.push("full");
        }
        if self.corrupt.is_some() {
            v.push("corrupt");
        }
        if self.torn {
            v.push("torn-write");
        }
        v
    }

    /// How long an operation waits first.
    pub fn delay(&self, op: IoOp) -> Option<Duration> {
        self.slow
            .as_ref()
            .filter(|(_, ops)| ops.contains(&op))
            .map(|(d, _)| *d)
    }

    /// The errno an operation fails with, if it does: EIO from `error`, ENOSPC from `full`
    /// (`grows`: a write past the end, or a create).
    pub fn fails(&self, op: IoOp, path: &str, grows: bool, rng: &mut Rng) -> Option<i32> {
        if self.full && grows && matches!(op, IoOp::Write | IoOp::Meta) {
            return Some(libc::ENOSPC);
        }
        if let Some((ops, fraction, filter)) = &self.error {
            if ops.contains(&op) && matches(filter, path) && rng.chance(*fraction) {
                return Some(libc::EIO);
            }
        }
        None
    }

    /// Flips one bit of `buf` when this read is to be corrupted; the flipped byte's index.
    pub fn corrupt(&self, path: &str, buf: &mut [u8], rng: &mut Rng) -> Option<usize> {
        let (fraction, filter) = self.corrupt.as_ref()?;
        if buf.is_empty() || !matches(filter, path) || !rng.chance(*fraction) {
            return None;
        }
        let i = rng.index(buf.len());
        buf[i] ^= 1 << rng.below(8);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(c: &FileCache, base: &[u8], off: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = base.get(off as usize + i).copied().unwrap_or(0);
        }
        c.overlay(off, &mut buf);
        buf
    }

    #[test]
    fn writes_are_held_merged_and_read_over_the_file_beneath() {
        let base = b"aaaaaaaaaaaaaaaaaaaa".to_vec();
        let mut c = FileCache::default();
        c.write(2, b"XY");
        c.write(4, b"ZZ"); // touches: merged
        c.write(10, b"QQQ");
        assert_eq!(c.extents.len(), 2);
        c.write(3, b"1234567890"); // bridges both, over all of QQQ
        assert_eq!(c.extents.len(), 1);
        assert_eq!(read(&c, &base, 0, 16), b"aaX1234567890aaa".to_vec());
        assert_eq!(c.end(), 13);
        c.write(30, b"end"); // past the file: zeros between
        assert_eq!(
            read(&c, &base, 18, 15),
            b"aa\0\0\0\0\0\0\0\0\0\0end".to_vec()
        );
        assert_eq!(c.dirty_bytes(), 11 + 3);
        // Within an extent, and appends, take the fast path and keep one extent.
        c.write(33, b"more");
        c.write(31, b"N");
        assert_eq!(read(&c, &base, 30, 7), b"eNdmore".to_vec());
        assert_eq!(c.extents.len(), 2);
    }

    #[test]
    fn a_write_covering_several_extents_replaces_them() {
        let mut c = FileCache::default();
        for i in 0..5u64 {
            c.write(i * 10, b"xx");
        }
        c.write(1, &[b'y'; 45]);
        assert_eq!(c.extents.len(), 1);
        assert_eq!(c.end(), 46);
        let mut buf = vec![0u8; 46];
        c.overlay(0, &mut buf);
        assert_eq!(buf[0], b'x');
        assert!(buf[1..].iter().all(|&b| b == b'y'));
    }

    #[test]
    fn sync_takes_everything_and_truncate_drops_what_lies_beyond() {
        let mut c = FileCache::default();
        c.write(0, b"hello");
        c.write(100, b"world");
        c.truncate(102);
        assert_eq!(c.end(), 102);
        c.truncate(3);
        assert_eq!(c.end(), 3);
        let taken = c.take();
        assert_eq!(taken, vec![(0, b"hel".to_vec())]);
        assert!(c.is_empty());
        assert_eq!(c.torn(&mut Rng::new(1)), None);
    }

    #[test]
    fn a_torn_write_keeps_a_proper_prefix_within_its_first_page() {
        let mut rng = Rng::new(7);
        for _ in 0..200 {
            let mut c = FileCache::default();
            let off = rng.below(3 * PAGE);
            let len = 2 + rng.below(3 * PAGE) as usize;
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            c.write(off, &data);
            let (o, kept) = c.torn(&mut rng).unwrap();
            assert_eq!(o, off);
            assert!(
                !kept.is_empty() && kept.len() < len,
                "{} of {len}",
                kept.len()
            );
            assert!(off % PAGE + kept.len() as u64 <= PAGE);
            assert_eq!(kept, data[..kept.len()].to_vec());
        }
    }

    #[test]
    fn fault_decisions() {
        let mut rng = Rng::new(3);
        let mut f = Faults::default();
        assert!(!f.any());
        assert_eq!(f.fails(IoOp::Write, "/a", true, &mut rng), None);
        f.apply(&Command::parse(r#"{"cmd":"full"}"#).unwrap());
        assert_eq!(
            f.fails(IoOp::Write, "/a", true, &mut rng),
            Some(libc::ENOSPC)
        );
        assert_eq!(f.fails(IoOp::Write, "/a", false, &mut rng), None);
        assert_eq!(f.fails(IoOp::Read, "/a", true, &mut rng), None);
        f.apply(&Command::parse(r#"{"cmd":"error","ops":["fsync"],"path":"wal"}"#).unwrap());
        assert_eq!(
            f.fails(IoOp::Fsync, "/member/wal/0.wal", false, &mut rng),
            Some(libc::EIO)
        );
        assert_eq!(f.fails(IoOp::Fsync, "/snap/db", false, &mut rng), None);
        assert_eq!(f.fails(IoOp::Read, "/wal", false, &mut rng), None);
        // A fraction: about that share fails.
        f.apply(&Command::parse(r#"{"cmd":"error","fraction":0.25}"#).unwrap());
        let n = (0..4000)
            .filter(|_| f.fails(IoOp::Read, "/x", false, &mut rng).is_some())
            .count();
        assert!((800..1200).contains(&n), "{n}");
        f.apply(&Command::parse(r#"{"cmd":"slow","delay_ms":30,"ops":["write"]}"#).unwrap());
        assert_eq!(f.delay(IoOp::Write), Some(Duration::from_millis(30)));
        assert_eq!(f.delay(IoOp::Read), None);
        assert_eq!(f.names(), vec!["error", "slow", "full"]);
        f.apply(&Command::parse(r#"{"cmd":"end","fault":"slow"}"#).unwrap());
        assert_eq!(f.names(), vec!["error", "full"]);
        f.apply(&Command::Clear);
        assert!(!f.any());
        assert!(!f.apply(&Command::Sync));
    }

    #[test]
    fn corruption_flips_exactly_one_bit_of_a_matching_read() {
        let mut rng = Rng::new(9);
        let mut f = Faults::default();
        f.apply(&Command::parse(r#"{"cmd":"corrupt","fraction":1,"path":"db"}"#).unwrap());
        let orig = vec![0x55u8; 64];
        let mut buf = orig.clone();
        let i = f.corrupt("/x/db", &mut buf, &mut rng).unwrap();
        let diff: u32 = buf
            .iter()
            .zip(&orig)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(diff, 1);
        assert_ne!(buf[i], orig[i]);
        let mut other = orig.clone();
        assert_eq!(f.corrupt("/x/wal", &mut other, &mut rng), None);
        assert_eq!(other, orig);
    }

    #[test]
    fn bad_control_lines_say_why() {
        assert!(Command::parse(r#"{"cmd":"error","fraction":2}"#)
            .unwrap_err()
            .contains("between 0 and 1"));
        assert!(Command::parse(r#"{"cmd":"melt"}"#)
            .unwrap_err()
            .contains("melt"));
        assert!(Command::parse(r#"{"cmd":"slow"}"#)
            .unwrap_err()
            .contains("delay_ms"));
        assert_eq!(
            Command::parse(r#"{"cmd":"lose-unsynced"}"#).unwrap(),
            Command::LoseUnsynced { torn: false }
        );
    }
}
