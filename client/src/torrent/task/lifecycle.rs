//! How a torrent task ends, and what it reports on the way: the finish policy, the clean
//! stop (connections closed, disk work drained, data synced, resume file saved, `stopped`
//! announced), periodic resume saves and progress publishing.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{Event, Finish, PUBLISH_EVERY, Phase, Progress, RESUME_EVERY, Task, TaskError};
use crate::torrent::PeerKey;

impl Task {
    /// Stops by itself when [`Finish`] says so.
    pub(super) fn check_finish(&mut self, now: Instant) {
        if self.stopping || !self.state.is_complete() {
            return;
        }
        let completed_at = *self.completed_at.get_or_insert(now);
        let done = match self.finish {
            Finish::WhenComplete => true,
            Finish::Seed { ratio, time } => {
                let uploaded = self.earlier.0 + self.state.stats(now.into_std()).uploaded;
                let ratio_met = ratio.is_some_and(|ratio| {
                    self.total_len > 0 && uploaded as f64 / self.total_len as f64 >= ratio
                });
                let time_met = time.is_some_and(|time| now >= completed_at + time);
                ratio_met || time_met
            }
        };
        if done {
            self.begin_stop();
        }
    }

    pub(super) fn begin_stop(&mut self) {
        if !self.stopping {
            self.stopping = true;
            self.feed(Event::Stop);
        }
    }

    /// The end: close every connection, wait for disk work in flight, sync, save resume,
    /// announce `stopped`.
    pub(super) async fn finish_stop(mut self) -> Result<(), TaskError> {
        self.maybe_publish(Instant::now(), true);
        let keys: Vec<PeerKey> = self.links.keys().copied().collect();
        for peer in keys {
            self.links.remove(&peer);
            self.queue.push_back(Event::Disconnected(peer));
        }
        self.drain_queue();
        self.flush_disk();
        let trackers = self.trackers.take();
        let announce = async move {
            if let Some(trackers) = trackers {
                trackers.stop().await;
            }
        };
        let flush = async {
            while self.disk_in_flight > 0 {
                let Some(done) = self.disk_done.recv().await else {
                    break;
                };
                // Completions still update the state (a verified piece joins `have`).
                let mut ignored = Vec::new();
                for event in self.take_done(done) {
                    self.state
                        .handle(event, Instant::now().into_std(), &mut ignored);
                }
            }
            if let Some(saving) = self.saving.take() {
                let _ = saving.await;
            }
            let _ = self.save_resume().await;
        };
        tokio::join!(announce, flush);
        self.maybe_publish(Instant::now(), true);
        let phase = match &self.fatal {
            Some(message) => Phase::Failed(message.clone()),
            None => Phase::Done,
        };
        self.publish.send_modify(|progress| progress.phase = phase);
        match self.fatal {
            Some(message) => Err(TaskError::Fatal(message)),
            None => Ok(()),
        }
    }

    pub(super) fn maybe_save_resume(&mut self, now: Instant) {
        if self
            .saving
            .as_ref()
            .is_some_and(|saving| !saving.is_finished())
        {
            return;
        }
        let have = self.state.have().count();
        let just_completed = self.state.is_complete() && !self.store_completed;
        if just_completed
            || (now.duration_since(self.last_resume) >= RESUME_EVERY
                && have != self.have_at_last_resume)
        {
            self.saving = Some(self.save_resume());
        }
    }

    /// Starts syncing the data, then saving the resume file, on a blocking thread. The
    /// pieces named are those verified now, whose writes all came back before: the sync
    /// that follows covers them.
    fn save_resume(&mut self) -> JoinHandle<()> {
        let now = Instant::now();
        self.last_resume = now;
        let have = self.state.have().clone();
        self.have_at_last_resume = have.count();
        let stats = self.state.stats(now.into_std());
        let uploaded = self.earlier.0 + stats.uploaded;
        let downloaded = self.earlier.1 + stats.downloaded;
        let store = Arc::clone(&self.store);
        let complete = self.state.is_complete() && !self.store_completed;
        self.store_completed |= complete;
        tokio::task::spawn_blocking(move || {
            let saved = (|| {
                if complete {
                    store.complete()?;
                }
                store.sync()?;
                store.save_resume(&have, uploaded, downloaded)
            })();
            match saved {
                Ok(()) => debug!("resume data saved"),
                Err(err) => warn!("saving resume data: {err}"),
            }
        })
    }

    pub(super) fn maybe_publish(&mut self, now: Instant, force: bool) {
        if !force
            && self
                .last_publish
                .is_some_and(|last| now.duration_since(last) < PUBLISH_EVERY)
        {
            return;
        }
        self.last_publish = Some(now);
        let phase = if self.stopping {
            Phase::Stopping
        } else if self.state.is_complete() {
            Phase::Seeding
        } else {
            Phase::Downloading
        };
        let mut stats = self.state.stats(now.into_std());
        stats.uploaded += self.earlier.0;
        stats.downloaded += self.earlier.1;
        self.publish.send_replace(Progress {
            stats,
            have: self.state.have().clone(),
            phase,
            verified_this_run: self.verified_this_run.count(),
            failed_this_run: self.failed_this_run,
        });
    }
}
