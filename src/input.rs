//! Reading the files a user names (plans, nodes files, histories) without trusting them: only
//! a regular file is read (a FIFO would block `open()` forever, a device such as `/dev/zero`
//! never ends, a directory is no text), it is opened with `O_NONBLOCK` so that checking its
//! type cannot hang, and at most a stated number of bytes is read.

use crate::error::bad_input;
use anyhow::Result;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The most a plan, preset or nodes file may hold (16 MiB: far more than any plan).
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// The most a history read whole by `netsplit check` may hold (4 GiB).
pub const MAX_HISTORY_BYTES: u64 = 4 << 30;

/// What a path that is not a regular file is, for the error line; `None` for a regular file.
fn not_regular(ft: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ft.is_char_device() || ft.is_block_device() {
        Some("a device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// Opens `path` for reading if it is a regular file (following symlinks); `what` names it in
/// errors ("plan", "nodes file", …). Never blocks: the open is non-blocking and the type is
/// checked on the open file, before any read. Errors are bad input naming the path.
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| bad_input(format!("cannot read {what} {name}: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| bad_input(format!("cannot read {what} {name}: {e}")))?;
    if let Some(kind) = not_regular(meta.file_type()) {
        return Err(bad_input(format!(
            "cannot read {what} {name}: it is {kind}, not a regular file"
        )));
    }
    // Regular files ignore O_NONBLOCK for reads, so the flag may stay.
    Ok(f)
}

/// Reads a regular file whole, refusing one of more than `limit` bytes.
pub fn read_bytes(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    let f = open_regular(path, what)?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| bad_input(format!("cannot read {what} {}: {e}", path.display())))?;
    if buf.len() as u64 > limit {
        return Err(bad_input(format!(
            "{what} {} is larger than {} MiB, the most netsplit reads",
            path.display(),
            limit >> 20
        )));
    }
    Ok(buf)
}

/// [`read_bytes`] as UTF-8 text, naming the first line that is not.
pub fn read_text(path: &Path, what: &str, limit: u64) -> Result<String> {
    let bytes = read_bytes(path, what, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        bad_input(format!(
            "{what} {}: line {line}: not valid UTF-8",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests;
