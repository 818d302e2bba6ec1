//! `state` and the shared view of a container that `state` and `list` print.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

/// What `husk state` prints: the spec's state plus runc's extra fields.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInfo {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

use super::Runtime;
use crate::error::Result;
use crate::state::{self, ContainerState, StateDir, Status};

impl ContainerInfo {
    fn new(st: &ContainerState, status: Status) -> ContainerInfo {
        ContainerInfo {
            oci_version: st.oci_version.clone(),
            id: st.id.clone(),
            pid: if status == Status::Stopped { 0 } else { st.pid },
            status: status.to_string(),
            bundle: st.bundle.clone(),
            rootfs: st.rootfs.clone(),
            created: st.created.clone(),
            owner: st.owner.clone(),
            annotations: st.annotations.clone(),
        }
    }
}

impl Runtime {
    /// `husk state`: the recorded state with the live status.
    pub fn state(&self, id: &str) -> Result<ContainerInfo> {
        let dir = StateDir::open(&self.root, id)?;
        let st = dir.load()?;
        Ok(ContainerInfo::new(
            &st,
            st.current_status(dir.fifo_path().exists()),
        ))
    }

    /// `husk list`: every container under the root; ones that vanish meanwhile are skipped.
    pub fn list(&self) -> Result<Vec<ContainerInfo>> {
        let mut out = Vec::new();
        for id in state::list_ids(&self.root)? {
            match self.state(&id) {
                Ok(info) => out.push(info),
                Err(e) => tracing::debug!("list: skipping {id}: {e}"),
            }
        }
        Ok(out)
    }
}
