//! A deterministic interpreter for generators without a runtime: every operation takes exactly
//! `latency` ns and succeeds. Used to test combinators (and by users to preview a generator):
//! same generator + same seed ⇒ same op stream.

use super::{Ctx, Event, GenOp, Generator, Invocation, Rng, Thread};
use crate::history::OpType;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Runs `gen` on `threads` threads with the PRNG seeded by `seed`, until it is exhausted, or
/// stalls with nothing in flight, or an op would start after `until` ns. Returns the ops in
/// dispatch order, each with the time it was dispatched.
pub fn simulate(
    mut gen: Box<dyn Generator>,
    threads: usize,
    seed: u64,
    latency: u64,
    until: u64,
) -> Vec<Invocation> {
    let all: Vec<Thread> = (0..threads).collect();
    let mut free: Vec<Thread> = all.clone();
    let mut rng = Rng::new(seed);
    let mut time = 0u64;
    let mut in_flight: BinaryHeap<Reverse<(u64, Thread, String, String)>> = BinaryHeap::new();
    let mut out = Vec::new();
    loop {
        let answer = {
            let mut ctx = Ctx {
                time,
                free: &free,
                all: &all,
                rng: &mut rng,
            };
            gen.op(&mut ctx)
        };
        match answer {
            GenOp::Op(op) => {
                let t = op.time.max(time);
                if t > until {
                    break;
                }
                time = t;
                free.retain(|&x| x != op.thread);
                let value_text = op.value.to_string();
                in_flight.push(Reverse((
                    time + latency,
                    op.thread,
                    op.f.clone(),
                    value_text,
                )));
                let ev = Event {
                    thread: op.thread,
                    time,
                    kind: OpType::Invoke,
                    f: op.f.clone(),
                    value: op.value.clone(),
                };
                let ctx = Ctx {
                    time,
                    free: &free,
                    all: &all,
                    rng: &mut rng,
                };
                gen.update(&ctx, &ev);
                out.push(Invocation { time, ..op });
            }
            GenOp::Pending => {
                let Some(Reverse((t, thread, f, value))) = in_flight.pop() else {
                    break;
                };
                time = time.max(t);
                free.push(thread);
                free.sort_unstable();
                let ev = Event {
                    thread,
                    time,
                    kind: OpType::Ok,
                    f,
                    value: serde_json::from_str(&value).unwrap_or_default(),
                };
                let ctx = Ctx {
                    time,
                    free: &free,
                    all: &all,
                    rng: &mut rng,
                };
                gen.update(&ctx, &ev);
            }
            GenOp::Exhausted => break,
        }
    }
    out
}
