//! The history recorder: the one writer of `history.jsonl`.
//!
//! Workers and the nemesis send events through a channel to a dedicated writer thread, which
//! numbers them densely in arrival order (the order of sends, so an op that completed before
//! another was invoked gets the smaller index — real-time precedence is preserved), writes them
//! through a `BufWriter` in batches, and flushes whenever it catches up with the channel (at most
//! every 20 ms) and at least every 100 ms, so a killed harness leaves a readable history that is
//! at most ~100 ms behind. Nothing on the workers' hot path waits for the disk.

use crate::history::{JsonlWriter, Op, OpType, Process};
use anyhow::{Context, Result};
use serde_json::Value;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

enum Msg {
    Op(Op),
    /// Flush now and acknowledge.
    Flush(mpsc::Sender<()>),
    /// Stop: everything sent before this is written; anything after is dropped.
    Close,
}

/// Live counts of recorded client completions, for the progress line.
#[derive(Debug, Default)]
pub struct Counters {
    /// Client invocations recorded.
    pub invocations: AtomicU64,
    /// Client completions of type `ok`.
    pub ok: AtomicU64,
    /// Client completions of type `fail`.
    pub fail: AtomicU64,
    /// Client completions of type `info` (outcome unknown).
    pub info: AtomicU64,
    /// Nemesis events (invocations and completions).
    pub nemesis: AtomicU64,
}

/// A handle for recording events; cheap to clone (one per worker, one for the nemesis).
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    start: Instant,
    counters: Arc<Counters>,
}

/// Owns the writer thread; [`RecorderHandle::finish`] closes the history and returns it.
pub struct RecorderHandle {
    recorder: Option<Recorder>,
    thread: Option<JoinHandle<Result<Vec<Op>>>>,
}

impl Recorder {
    /// Starts the writer thread on `path` (created, truncated). `start` is time zero of the
    /// run's clock.
    pub fn start(path: &Path, start: Instant) -> Result<RecorderHandle> {
        let file =
            File::create(path).with_context(|| format!("creating history {}", path.display()))?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let counters = Arc::new(Counters::default());
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || writer_loop(rx, file))
            .context("starting the history writer")?;
        Ok(RecorderHandle {
            recorder: Some(Recorder {
                tx,
                start,
                counters,
            }),
            thread: Some(thread),
        })
    }

    /// Nanoseconds since the run started (the control node's monotonic clock).
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// The run's time zero.
    pub fn start_instant(&self) -> Instant {
        self.start
    }

    /// Live counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Records one event; its `index` is assigned by the writer. Never blocks on the disk.
    pub fn record(&self, op: Op) {
        let c = &self.counters;
        match (op.process, op.kind) {
            (Process::Nemesis, _) => c.nemesis.fetch_add(1, Ordering::Relaxed),
            (_, OpType::Invoke) => c.invocations.fetch_add(1, Ordering::Relaxed),
            (_, OpType::Ok) => c.ok.fetch_add(1, Ordering::Relaxed),
            (_, OpType::Fail) => c.fail.fetch_add(1, Ordering::Relaxed),
            (_, OpType::Info) => c.info.fetch_add(1, Ordering::Relaxed),
        };
        // A closed channel means the run is being torn down; the event has nowhere to go.
        let _ = self.tx.send(Msg::Op(op));
    }

    /// Records a nemesis event (`process: "nemesis"`, `type: info`), now.
    pub fn nemesis(&self, f: &str, value: Value, error: Option<String>) {
        let mut op = Op::new(Process::Nemesis, OpType::Info, f, value);
        op.time = self.now();
        op.error = error;
        self.record(op);
    }

    /// Asks the writer to flush and waits up to `timeout` for it (used before exiting at once).
    pub fn flush(&self, timeout: Duration) {
        let (ack_tx, ack_rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(timeout);
        }
    }
}

impl RecorderHandle {
    /// A recorder to hand out.
    pub fn recorder(&self) -> Recorder {
        self.recorder
            .clone()
            .expect("recorder handle used after finish")
    }

    /// Closes the history (events recorded after this are dropped — a worker abandoned on an
    /// error path may still hold a clone) and returns it as written.
    pub fn finish(mut self) -> Result<Vec<Op>> {
        if let Some(r) = self.recorder.take() {
            let _ = r.tx.send(Msg::Close);
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("the history writer panicked"))?,
            None => Ok(Vec::new()),
        }
    }
}

fn writer_loop(rx: mpsc::Receiver<Msg>, file: File) -> Result<Vec<Op>> {
    let mut w = JsonlWriter::new(BufWriter::with_capacity(1 << 16, file));
    let mut ops: Vec<Op> = Vec::with_capacity(1 << 16);
    let mut last_flush = Instant::now();
    let mut dirty = false;
    let mut io_error: Option<std::io::Error> = None;
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if dirty {
                    if let Err(e) = w.flush() {
                        io_error.get_or_insert(e);
                    }
                    dirty = false;
                    last_flush = Instant::now();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut closed = false;
        let mut next = Some(msg);
        // drain what is queued: one batch
        while let Some(m) = next.take() {
            match m {
                Msg::Op(mut op) => {
                    op.index = ops.len() as u64;
                    if io_error.is_none() {
                        if let Err(e) = w.write(&op) {
                            io_error = Some(e);
                        }
                    }
                    ops.push(op);
                    dirty = true;
                }
                Msg::Flush(ack) => {
                    if let Err(e) = w.flush() {
                        io_error.get_or_insert(e);
                    }
                    dirty = false;
                    last_flush = Instant::now();
                    let _ = ack.send(());
                }
                Msg::Close => {
                    closed = true;
                    break;
                }
            }
            if ops.len().is_multiple_of(4096) && last_flush.elapsed() >= Duration::from_millis(100)
            {
                break;
            }
            next = rx.try_recv().ok();
        }
        if closed {
            break;
        }
        if dirty && last_flush.elapsed() >= Duration::from_millis(20) {
            if let Err(e) = w.flush() {
                io_error.get_or_insert(e);
            }
            dirty = false;
            last_flush = Instant::now();
        }
    }
    if let Err(e) = w.flush() {
        io_error.get_or_insert(e);
    }
    if let Some(e) = io_error {
        return Err(anyhow::Error::new(e).context("writing history.jsonl"));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests;
