//! `events`: the container's statistics once (`--stats`), or a stream of statistics every
//! interval and OOM notifications until the container stops. One thread: poll(2) on the OOM
//! source with the time left to the next statistics as timeout.

use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollTimeout};

use super::Runtime;
use crate::cgroups::Stats;
use crate::error::{Error, Result};
use crate::state::{ContainerState, StateDir, Status};

/// What `events` reports.
#[derive(Debug)]
pub enum Event {
    Stats(Box<Stats>),
    Oom,
}

impl Runtime {
    fn live_state(&self, id: &str) -> Result<ContainerState> {
        let dir = StateDir::open(&self.root, id)?;
        let st = dir.load()?;
        if st.current_status(dir.fifo_path().exists()) == Status::Stopped {
            return Err(Error::Other(format!(
                "container with id {id} is not running"
            )));
        }
        Ok(st)
    }

    /// `events --stats`: the statistics, read once.
    pub fn stats(&self, id: &str) -> Result<Stats> {
        Ok(self.live_state(id)?.cgroup.stats()?)
    }

    /// `events`: report statistics every `interval` and each OOM kill until the container
    /// stops or `emit` fails. The state lock is not held meanwhile.
    pub fn events(
        &self,
        id: &str,
        interval: Duration,
        mut emit: impl FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        if interval.is_zero() {
            return Err(Error::Other(
                "the events interval must be greater than 0".into(),
            ));
        }
        let st = self.live_state(id)?;
        let mut oom = st.cgroup.oom_watch()?;
        let mut next = Instant::now() + interval;
        loop {
            if !st.process_alive() {
                return Ok(());
            }
            let left = next.saturating_duration_since(Instant::now());
            // Wake at least every second to notice the container stopping.
            let wait = left.min(Duration::from_secs(1));
            let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
            let ready = match &oom {
                Some(w) => {
                    let (fd, flags) = w.poll_fd();
                    let mut fds = [PollFd::new(fd, flags)];
                    match poll(&mut fds, PollTimeout::from(ms)) {
                        Ok(n) => n > 0,
                        Err(nix::Error::EINTR) => false,
                        Err(e) => return Err(Error::Other(format!("waiting for OOM events: {e}"))),
                    }
                }
                None => {
                    std::thread::sleep(wait);
                    false
                }
            };
            if ready {
                match oom.as_mut().and_then(|w| w.consume()) {
                    Some(0) => {}
                    Some(_) => emit(Event::Oom)?,
                    // The cgroup is gone: the container stopped.
                    None => return Ok(()),
                }
            }
            if Instant::now() >= next {
                next += interval;
                match st.cgroup.stats() {
                    Ok(s) => emit(Event::Stats(Box::new(s)))?,
                    Err(e) => tracing::error!("reading the statistics of container {id}: {e}"),
                }
            }
        }
    }
}
