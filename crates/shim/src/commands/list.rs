//! `husk list`: runc's table (Go tabwriter: minwidth 12, padding 3), JSON, or ids only.

use husk_runtime::lifecycle::ContainerInfo;
use husk_runtime::Runtime;

use super::{print_stdout, CliError, Result};
use crate::cli::{ListArgs, ListFormat};

pub fn list(rt: &Runtime, a: &ListArgs) -> Result<i32> {
    let infos = rt.list()?;
    let out = if a.quiet {
        infos.iter().map(|i| format!("{}\n", i.id)).collect()
    } else {
        match a.format {
            ListFormat::Table => table(&infos),
            ListFormat::Json => json(&infos)?,
        }
    };
    print_stdout(out.as_bytes())?;
    Ok(0)
}

/// runc's `json.NewEncoder(os.Stdout).Encode(s)`: compact, one line; `null` when there are none
/// (runc encodes a nil slice).
fn json(infos: &[ContainerInfo]) -> Result<String> {
    if infos.is_empty() {
        return Ok("null\n".into());
    }
    let mut s = serde_json::to_string(infos).map_err(|source| CliError::Json {
        what: "the container list",
        source,
    })?;
    s.push('\n');
    Ok(s)
}

fn table(infos: &[ContainerInfo]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for i in infos {
        rows.push([
            i.id.clone(),
            i.pid.to_string(),
            i.status.clone(),
            i.bundle.display().to_string(),
            i.created.clone(),
            i.owner.clone(),
        ]);
    }
    tabulate(&rows)
}

/// Align cells like Go's `tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)`: every column but the last
/// is padded to max(widest cell + 3, 12); the last column is written as is.
fn tabulate<const N: usize>(rows: &[[String; N]]) -> String {
    const MIN_WIDTH: usize = 12;
    const PADDING: usize = 3;
    let width = |s: &str| s.chars().count();
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max((width(cell) + PADDING).max(MIN_WIDTH));
        }
    }
    let mut out = String::new();
    for row in rows {
        for (col, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if col + 1 < N {
                out.extend(std::iter::repeat_n(' ', widths[col] - width(cell)));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn info(id: &str, pid: i32, status: &str) -> ContainerInfo {
        ContainerInfo {
            oci_version: "1.3.0".into(),
            id: id.into(),
            pid,
            status: status.into(),
            bundle: PathBuf::from("/var/lib/bundles/a-rather-long-bundle"),
            rootfs: PathBuf::from("/var/lib/bundles/a-rather-long-bundle/rootfs"),
            created: "2026-11-25T15:04:05.123456789Z".into(),
            owner: "root".into(),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn empty_table_is_the_header() {
        assert_eq!(
            table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }

    #[test]
    fn table_columns_align() {
        let t = table(&[info("c1", 4242, "running"), info("second", 0, "stopped")]);
        let expected = "\
ID          PID         STATUS      BUNDLE                                  CREATED                          OWNER
c1          4242        running     /var/lib/bundles/a-rather-long-bundle   2026-11-25T15:04:05.123456789Z   root
second      0           stopped     /var/lib/bundles/a-rather-long-bundle   2026-11-25T15:04:05.123456789Z   root
";
        assert_eq!(t, expected);
    }

    #[test]
    fn json_null_when_empty_else_array() {
        assert_eq!(json(&[]).unwrap(), "null\n");
        let s = json(&[info("c1", 1, "created")]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v[0]["id"], "c1");
        assert_eq!(v[0]["ociVersion"], "1.3.0");
        assert!(s.ends_with("}]\n"));
    }
}
