//! `update`: change the resources of a live container.

use super::Runtime;
use crate::cgroups::Resources;
use crate::error::{Error, Result};
use crate::state::{StateDir, Status};

impl Runtime {
    /// `husk update`: merge `res` into the container's resources, apply the result (device
    /// rules only when `res` has some, and never rootless) and save it for the next update.
    pub fn update(&self, id: &str, res: &Resources) -> Result<()> {
        let dir = StateDir::open(&self.root, id)?;
        let mut st = dir.load()?;
        let status = st.current_status(dir.fifo_path().exists());
        if status == Status::Stopped {
            return Err(Error::Other(format!(
                "cannot update container {id}: it is not running"
            )));
        }
        st.cgroup.update(res, !self.rootless)?;
        dir.save(&st)?;
        Ok(())
    }

    /// The resources last applied to the container (config.json's, then each update's).
    pub fn resources(&self, id: &str) -> Result<Resources> {
        let dir = StateDir::open(&self.root, id)?;
        Ok(dir.load()?.cgroup.resources().clone())
    }
}
