//! `pause` and `resume`: freeze and thaw every process of the container (v1 freezer,
//! v2 cgroup.freeze). `paused` is not recorded: `state` reads it from the freezer.

use super::Runtime;
use crate::error::{Error, Result};
use crate::state::{StateDir, Status};

impl Runtime {
    /// `husk pause`: the container must be running (or created).
    pub fn pause(&self, id: &str) -> Result<()> {
        let dir = StateDir::open(&self.root, id)?;
        let st = dir.load()?;
        let status = st.current_status(dir.fifo_path().exists());
        if !matches!(status, Status::Running | Status::Created) {
            return Err(Error::Other(format!(
                "cannot pause container {id}: it is {status}, not running"
            )));
        }
        st.cgroup.freeze()?;
        Ok(())
    }

    /// `husk resume`: the container must be paused.
    pub fn resume(&self, id: &str) -> Result<()> {
        let dir = StateDir::open(&self.root, id)?;
        let st = dir.load()?;
        let status = st.current_status(dir.fifo_path().exists());
        if status != Status::Paused {
            return Err(Error::Other(format!(
                "cannot resume container {id}: it is {status}, not paused"
            )));
        }
        st.cgroup.thaw()?;
        Ok(())
    }
}
