//! Marks: what a fault family injected, written on the node itself, in netsplit's own directory
//! (`<node dir>/netsplit/`), before or as it acts — so that a later run, `netsplit heal`, or
//! `netsplit cluster status` can find and undo it even when the harness that injected it was
//! killed (SIGKILL, the OOM killer, a lost control machine) and its memory went with it.
//!
//! What the kernel already holds needs no mark (partition rules in the `NETSPLIT` chain,
//! netsplit's qdiscs, the packet helper's pid file, the faketime offset file); a mark records
//! what the kernel cannot say: which process netsplit stopped, that it killed a database, what
//! time sync it turned off and that it moved a real clock. A mark is removed by the heal that
//! undoes it.

use crate::control::{Cmd, Remote, RemoteError};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// `<node dir>/netsplit/<name>` on a node.
pub fn path(r: &dyn Remote, name: &str) -> String {
    format!("{}/netsplit/{name}", r.node().workdir.trim_end_matches('/'))
}

/// Writes mark `name` with `content` (atomically: a reader never sees half of it).
pub fn write(r: &dyn Remote, name: &str, content: &str) -> Result<(), RemoteError> {
    let p = path(r, name);
    r.exec_ok(
        &Cmd::new("sh")
            .args([
                "-c",
                "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1.tmp.$$\" && mv -f \"$1.tmp.$$\" \"$1\"",
                "sh",
                &p,
            ])
            .stdin(content.as_bytes().to_vec())
            .sudo()
            .timeout(TIMEOUT),
    )?;
    Ok(())
}

/// The content of mark `name`, `None` when there is none.
pub fn read(r: &dyn Remote, name: &str) -> Result<Option<String>, RemoteError> {
    let out = r.exec(&Cmd::new("cat").arg(path(r, name)).sudo().timeout(TIMEOUT))?;
    Ok((out.status == 0).then_some(out.stdout))
}

/// Removes mark `name` (nothing to remove is fine).
pub fn remove(r: &dyn Remote, name: &str) -> Result<(), RemoteError> {
    r.exec_ok(
        &Cmd::new("rm")
            .args(["-f", &path(r, name)])
            .sudo()
            .timeout(TIMEOUT),
    )?;
    Ok(())
}
