//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope
//! unit that systemd creates over D-Bus (`StartTransientUnit` with `Delegate=yes` and init's
//! pid), with its resources as unit properties; `update` sets them again, `delete` stops the
//! unit. husk still writes every resource to the delegated cgroup itself afterwards, and
//! freezes, kills, reads stats and watches OOM kills through the cgroup files, as runc does.
//! The system bus as root, the user's bus when rootless. See docs/cgroups.md.

pub mod properties;
pub mod unit;

use serde::{Deserialize, Serialize};

use super::devices::DeviceState;
use super::resources::Resources;
use super::CgroupError;
use crate::dbus::{BusKind, Connection, DbusError, Message, Value};

pub use unit::{expand_slice, ScopeName};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const JOB_REMOVED: &str = "type='signal',sender='org.freedesktop.systemd1',\
    interface='org.freedesktop.systemd1.Manager',member='JobRemoved',path='/org/freedesktop/systemd1'";

/// A container's scope unit, as state.json keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub name: String,
    /// On the user's manager (rootless) rather than the system's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user: bool,
}

fn bus_kind(user: bool) -> BusKind {
    if user {
        BusKind::User
    } else {
        BusKind::System
    }
}

fn err(what: impl Into<String>, source: DbusError) -> CgroupError {
    CgroupError::Systemd {
        what: what.into(),
        source,
    }
}

fn connect(user: bool) -> Result<Connection, CgroupError> {
    let which = if user {
        "the user's bus"
    } else {
        "the system bus"
    };
    Connection::open(bus_kind(user)).map_err(|e| match e {
        DbusError::Connect(_) | DbusError::Io(_) => CgroupError::SystemdUnavailable {
            bus: which.into(),
            reason: e.to_string(),
        },
        e => err(format!("connecting to {which}"), e),
    })
}

fn is_remote(e: &DbusError, names: &[&str]) -> bool {
    matches!(e, DbusError::Remote { name, .. } if names.contains(&name.as_str()))
}

/// Wait for the job `job` to end; its result (`done`, `failed`, `timeout`, ...).
fn wait_job(c: &mut Connection, job: &str) -> Result<String, DbusError> {
    c.wait_signal(|m: &Message| {
        if m.member.as_deref() != Some("JobRemoved") {
            return None;
        }
        match m.body.as_slice() {
            [_, Value::Path(p), _, Value::Str(result)] if p == job => Some(result.clone()),
            _ => None,
        }
    })
}

fn job_path(reply: &[Value]) -> Result<String, DbusError> {
    match reply.first() {
        Some(Value::Path(p)) => Ok(p.clone()),
        other => Err(DbusError::Malformed(format!(
            "expected a job path, got {other:?}"
        ))),
    }
}

fn to_array(props: Vec<properties::Property>) -> Value {
    Value::Array(
        "(sv)".into(),
        props
            .into_iter()
            .map(|(n, v)| Value::Struct(vec![Value::Str(n), Value::variant(v)]))
            .collect(),
    )
}

/// The resource and device properties for `res` (devices only when `devices`).
fn resource_properties(
    res: &Resources,
    devices: bool,
) -> Result<Vec<properties::Property>, CgroupError> {
    let mut props = properties::resources(res)?;
    if devices {
        let state = DeviceState::from_config(&res.devices)?;
        let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
        props.extend(properties::devices(&state, &proc_devices));
    }
    Ok(props)
}

/// Start the scope `name` holding `pid` and wait for its job. A unit that exists already, a
/// refused property or a failed job is an error, and no unit of ours is left behind.
pub fn start_scope(
    name: &ScopeName,
    user: bool,
    pid: i32,
    id: &str,
    res: &Resources,
) -> Result<Unit, CgroupError> {
    let what = || format!("starting unit {} in {}", name.unit, name.slice);
    let pid = u32::try_from(pid).map_err(|_| CgroupError::Invalid {
        field: "pid".into(),
        reason: format!("{pid}"),
    })?;
    let t = |b: bool| Value::Bool(b);
    let base: Vec<properties::Property> = vec![
        (
            "Description".into(),
            Value::Str(format!("husk container {id}")),
        ),
        ("Slice".into(), Value::Str(name.slice.clone())),
        ("Delegate".into(), t(true)),
        (
            "PIDs".into(),
            Value::Array("u".into(), vec![Value::U32(pid)]),
        ),
        ("MemoryAccounting".into(), t(true)),
        ("CPUAccounting".into(), t(true)),
        ("IOAccounting".into(), t(true)),
        ("TasksAccounting".into(), t(true)),
        ("DefaultDependencies".into(), t(false)),
    ];
    // The device policy only on the system's manager: the user's cannot install a device
    // filter, and rootless husk installs none (Cgroup::apply).
    let extra = resource_properties(res, !user)?;
    let mut c = connect(user)?;
    c.add_match(JOB_REMOVED).map_err(|e| err(what(), e))?;
    let start = |c: &mut Connection, props: Vec<properties::Property>| {
        c.call(
            SYSTEMD,
            SYSTEMD_PATH,
            MANAGER,
            "StartTransientUnit",
            &[
                Value::Str(name.unit.clone()),
                Value::str("fail"),
                to_array(props),
                Value::Array("(sa(sv))".into(), vec![]),
            ],
        )
    };
    let mut all = base.clone();
    all.extend(extra);
    let reply = match start(&mut c, all) {
        // An older systemd that lacks a resource property (CPUQuotaPeriodUSec came in 242,
        // AllowedCPUs in 244): start without them; the cgroup files still get every value.
        Err(e)
            if is_remote(
                &e,
                &[
                    "org.freedesktop.DBus.Error.InvalidArgs",
                    "org.freedesktop.DBus.Error.PropertyReadOnly",
                ],
            ) =>
        {
            tracing::warn!(
                "systemd refused a resource property ({e}); starting {} without them",
                name.unit
            );
            start(&mut c, base)
        }
        r => r,
    }
    .map_err(|e| err(what(), e))?;
    let job = job_path(&reply).map_err(|e| err(what(), e))?;
    let unit = Unit {
        name: name.unit.clone(),
        user,
    };
    match wait_job(&mut c, &job) {
        Ok(result) if result == "done" => Ok(unit),
        r => {
            let why = match r {
                Ok(result) => err(
                    what(),
                    DbusError::Remote {
                        name: String::new(),
                        text: format!(
                            "its job ended with result {result:?} (journalctl -u {} says why)",
                            name.unit
                        ),
                    },
                ),
                Err(e) => err(what(), e),
            };
            if let Err(e) = stop_with(&mut c, &unit) {
                tracing::warn!("removing the unit after a failed start: {e}");
            }
            Err(why)
        }
    }
}

/// Stop the unit (waiting for its job) and reset it if it failed. A unit that is gone
/// already is fine.
pub fn stop(unit: &Unit) -> Result<(), CgroupError> {
    let mut c = connect(unit.user)?;
    c.add_match(JOB_REMOVED)
        .map_err(|e| err(format!("stopping unit {}", unit.name), e))?;
    stop_with(&mut c, unit)
}

/// Stop and reset on a connection that already matches JobRemoved.
fn stop_with(c: &mut Connection, unit: &Unit) -> Result<(), CgroupError> {
    const GONE: &[&str] = &[
        "org.freedesktop.systemd1.NoSuchUnit",
        "org.freedesktop.systemd1.LoadFailed",
    ];
    let what = || format!("stopping unit {}", unit.name);
    match c.call(
        SYSTEMD,
        SYSTEMD_PATH,
        MANAGER,
        "StopUnit",
        &[Value::Str(unit.name.clone()), Value::str("replace")],
    ) {
        Ok(reply) => {
            let job = job_path(&reply).map_err(|e| err(what(), e))?;
            let result = wait_job(c, &job).map_err(|e| err(what(), e))?;
            if result != "done" {
                tracing::debug!(unit = %unit.name, result, "stop job");
            }
        }
        // Not loaded: systemd collected it already (a scope whose processes all exited), and
        // a unit that is not loaded has no failed state to reset.
        Err(e) if is_remote(&e, &GONE[..1]) => return Ok(()),
        Err(e) if is_remote(&e, GONE) => {}
        Err(e) => return Err(err(what(), e)),
    }
    match c.call(
        SYSTEMD,
        SYSTEMD_PATH,
        MANAGER,
        "ResetFailedUnit",
        &[Value::Str(unit.name.clone())],
    ) {
        Ok(_) => Ok(()),
        Err(e) if is_remote(&e, GONE) => Ok(()),
        Err(e) => Err(err(format!("resetting unit {}", unit.name), e)),
    }
}

/// `update`: set the resource properties on the running unit (the devices only when the
/// update has device rules).
pub fn set_properties(unit: &Unit, res: &Resources, devices: bool) -> Result<(), CgroupError> {
    let props = resource_properties(res, devices)?;
    if props.is_empty() {
        return Ok(());
    }
    let mut c = connect(unit.user)?;
    c.call(
        SYSTEMD,
        SYSTEMD_PATH,
        MANAGER,
        "SetUnitProperties",
        &[
            Value::Str(unit.name.clone()),
            Value::Bool(true),
            to_array(props),
        ],
    )
    .map(drop)
    .map_err(|e| err(format!("setting the properties of unit {}", unit.name), e))
}
