//! What a phase cost the tracker in CPU, besides its rate: the time on CPU and the times
//! scheduled of the tracker's threads, read from `/proc/self/task/*/schedstat` (Linux; the
//! columns print `n/a` elsewhere).
//!
//! The in-process trackers name their threads (`rill-public`, `rill-private`: runtime
//! workers and the blocking pool, which holds the UDP workers and the flush's writer);
//! SQLite's connection threads are `sqlx-sqlite-worker-N` whichever tracker owns them, so
//! they are counted with the tracker under load (the idle one's only SQLite work is its
//! swarm save every 5 s). The load generator's threads are not counted. CPU per announce
//! does not depend on how much of the two cores the generator or other programs took, so it
//! is the steadier figure on a shared machine; the rate is what the target is about.

use std::time::Duration;

/// CPU time and times scheduled, summed over some threads.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cpu {
    pub(crate) on_cpu: Duration,
    pub(crate) slices: u64,
}

impl Cpu {
    /// `self - earlier` (threads that ended in between make it an underestimate).
    pub(crate) fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            on_cpu: self.on_cpu.saturating_sub(earlier.on_cpu),
            slices: self.slices.saturating_sub(earlier.slices),
        }
    }
}

/// The threads of this process whose name starts with `name` or is a SQLite worker.
pub(crate) fn tracker_threads(name: &str) -> Option<Cpu> {
    let mut total = Cpu::default();
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended
        };
        let comm = comm.trim_end();
        if !(comm.starts_with(name) || comm.starts_with("sqlx-sqlite")) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        let mut fields = stat.split_ascii_whitespace();
        let on_cpu: u64 = fields.next()?.parse().ok()?;
        let _waiting = fields.next()?;
        let slices: u64 = fields.next()?.parse().ok()?;
        total.on_cpu += Duration::from_nanos(on_cpu);
        total.slices += slices;
    }
    Some(total)
}
