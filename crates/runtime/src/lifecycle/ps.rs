//! `ps`: the processes of a container (its cgroup and the cgroups below it).

use super::Runtime;
use crate::error::Result;
use crate::state::StateDir;

impl Runtime {
    /// The pids in the container's cgroup, sorted. The state lock is released before the
    /// caller goes on (runc's `ps` then runs ps(1)).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let dir = StateDir::open(&self.root, id)?;
        let st = dir.load()?;
        drop(dir);
        let mut pids = st.cgroup.all_pids()?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }
}
