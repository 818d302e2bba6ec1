//! The commands that manage a running container's cgroup, with runc's flags and output:
//! `update`, `pause`, `resume`, `ps`, `events`.

use std::io::Read;
use std::path::PathBuf;
use std::process::Command as Process;
use std::time::Duration;

use clap::{Args, ValueEnum};
use husk_runtime::cgroups::resources::{BlockIo, Cpu, Memory, Pids, Resources};
use husk_runtime::cgroups::stats::Event as JsonEvent;
use husk_runtime::lifecycle::Event;
use husk_runtime::Runtime;

use super::{print_stdout, CliError, Result};

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Read the resources to update (runtime-spec linux.resources JSON) from FILE, or stdin
    /// with `-`; the other options are then ignored
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Block IO weight, 10 to 1000
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1: no limit)
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS burst in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_burst: Option<u64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", visible_alias = "cpu-shares", value_name = "N")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to run on (0-3,7)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use (0-1)
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// 1: SCHED_IDLE for the cgroup, 0: normal
    #[arg(long, value_name = "0|1", allow_hyphen_values = true)]
    pub cpu_idle: Option<i64>,
    /// Memory limit in bytes (suffixes k, m, g, t, p; -1: no limit)
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit in bytes
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit in bytes (-1: unlimited swap)
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of processes (-1: no limit)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Obsolete, ignored with a warning (as runc)
    #[arg(long, value_name = "BYTES", hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete, ignored with a warning (as runc)
    #[arg(long, value_name = "BYTES", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Container id
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PsFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format: a ps(1) table filtered to the container's processes, or a JSON pid list
    #[arg(
        short = 'f',
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "table"
    )]
    pub format: PsFormat,
    /// Container id
    #[arg(value_name = "ID")]
    pub id: String,
    /// Options passed to ps(1) (default -ef)
    #[arg(
        value_name = "PS_ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Interval between statistics (Go duration: 5s, 100ms, 1m30s)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Print the statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// Container id
    #[arg(value_name = "ID")]
    pub id: String,
}

/// A Go `time.Duration` string: `300ms`, `1.5h`, `2h45m`, `1us`; a bare `0` is zero.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * nanos;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_nanos(total as u64))
}

/// A byte size as docker's `RAMInBytes` reads it: `512`, `100k`, `1.5g`, `64MiB` (1024-based);
/// `-1` stays -1.
pub fn parse_bytes(s: &str) -> std::result::Result<i64, String> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    let bad = || format!("invalid size {s:?}");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !(0.0..9.2e18).contains(&v) {
        return Err(bad());
    }
    Ok(v as i64)
}

/// The resources an `update` command line asks for.
fn update_resources(a: &UpdateArgs) -> Result<Resources> {
    if let Some(path) = &a.resources {
        let mut text = String::new();
        let read = if path.as_os_str() == "-" {
            std::io::stdin().read_to_string(&mut text)
        } else {
            std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
        };
        read.map_err(|source| CliError::Io {
            what: format!("reading resources from {}", path.display()),
            source,
        })?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            CliError::Usage(format!("parsing resources from {}: {e}", path.display()))
        })?;
        return Ok(
            Resources::from_value(value, "update resources").map_err(husk_runtime::Error::from)?
        );
    }
    let bytes = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| {
                parse_bytes(s)
                    .map_err(|e| CliError::Usage(format!("invalid value for --{flag}: {e}")))
            })
            .transpose()
    };
    for (flag, v) in [
        ("kernel-memory", &a.kernel_memory),
        ("kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if v.is_some() {
            tracing::warn!("Setting --{flag} is ignored and will be removed");
        }
    }
    let mut r = Resources::default();
    let memory = Memory {
        limit: bytes("memory", &a.memory)?,
        reservation: bytes("memory-reservation", &a.memory_reservation)?,
        swap: bytes("memory-swap", &a.memory_swap)?,
        ..Default::default()
    };
    if memory != Memory::default() {
        r.memory = Some(memory);
    }
    let cpu = Cpu {
        shares: a.cpu_share,
        quota: a.cpu_quota,
        burst: a.cpu_burst,
        period: a.cpu_period,
        realtime_runtime: a.cpu_rt_runtime,
        realtime_period: a.cpu_rt_period,
        cpus: a.cpuset_cpus.clone().filter(|s| !s.is_empty()),
        mems: a.cpuset_mems.clone().filter(|s| !s.is_empty()),
        idle: a.cpu_idle,
    };
    if cpu != Cpu::default() {
        r.cpu = Some(cpu);
    }
    if let Some(l) = a.pids_limit {
        r.pids = Some(Pids { limit: Some(l) });
    }
    if let Some(w) = a.blkio_weight.filter(|w| *w != 0) {
        r.block_io = Some(BlockIo {
            weight: Some(w),
            ..Default::default()
        });
    }
    Ok(r)
}

pub fn update(rt: &Runtime, a: &UpdateArgs) -> Result<i32> {
    let r = update_resources(a)?;
    rt.update(&a.id, &r)?;
    Ok(0)
}

pub fn pause(rt: &Runtime, id: &str) -> Result<i32> {
    rt.pause(id)?;
    Ok(0)
}

pub fn resume(rt: &Runtime, id: &str) -> Result<i32> {
    rt.resume(id)?;
    Ok(0)
}

/// The lines of `ps ARGS` output whose PID column is one of `pids`, under the header.
pub fn filter_ps(output: &str, pids: &[i32]) -> std::result::Result<String, String> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|t| t == "PID")
        .ok_or_else(|| "couldn't find PID field in ps output".to_string())?;
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or("");
        let pid: i32 = field
            .parse()
            .map_err(|_| format!("unable to parse pid {field:?} in ps output"))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

pub fn ps(rt: &Runtime, a: &PsArgs) -> Result<i32> {
    let pids = rt.pids(&a.id)?;
    if a.format == PsFormat::Json {
        // runc encodes a nil slice: `null` when there is no process.
        let text = if pids.is_empty() {
            "null".to_string()
        } else {
            serde_json::to_string(&pids).map_err(|source| CliError::Json {
                what: "the pids",
                source,
            })?
        };
        print_stdout(format!("{text}\n").as_bytes())?;
        return Ok(0);
    }
    let args: Vec<&str> = if a.ps_args.is_empty() {
        vec!["-ef"]
    } else {
        a.ps_args.iter().map(String::as_str).collect()
    };
    let out = Process::new("ps")
        .args(&args)
        .output()
        .map_err(|source| CliError::Io {
            what: "running ps".into(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(CliError::Usage(format!(
            "ps {}: {}: {}{}",
            args.join(" "),
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let filtered = filter_ps(&text, &pids).map_err(CliError::Usage)?;
    print_stdout(filtered.as_bytes())?;
    Ok(0)
}

fn print_event(ev: &JsonEvent) -> Result<()> {
    let mut line = serde_json::to_vec(ev).map_err(|source| CliError::Json {
        what: "the event",
        source,
    })?;
    line.push(b'\n');
    print_stdout(&line)
}

pub fn events(rt: &Runtime, a: &EventsArgs) -> Result<i32> {
    if a.stats {
        let s = rt.stats(&a.id)?;
        print_event(&JsonEvent {
            typ: "stats",
            id: &a.id,
            data: Some(&s),
        })?;
        return Ok(0);
    }
    if a.interval.is_zero() {
        return Err(CliError::Usage(
            "duration interval must be greater than 0".into(),
        ));
    }
    let mut failed = None;
    rt.events(&a.id, a.interval, |ev| {
        let r = match &ev {
            Event::Stats(s) => print_event(&JsonEvent {
                typ: "stats",
                id: &a.id,
                data: Some(s),
            }),
            Event::Oom => print_event(&JsonEvent {
                typ: "oom",
                id: &a.id,
                data: None,
            }),
        };
        r.map_err(|e| {
            let msg = e.to_string();
            failed = Some(e);
            husk_runtime::Error::Other(msg)
        })
    })
    .map_err(|e| match failed.take() {
        Some(cli) => cli,
        None => e.into(),
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> crate::cli::Cli {
        crate::cli::Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("100k"), Ok(102_400));
        assert_eq!(parse_bytes("100m"), Ok(104_857_600));
        assert_eq!(parse_bytes("1.5g"), Ok(1_610_612_736));
        assert_eq!(parse_bytes("64MiB"), Ok(67_108_864));
        assert_eq!(parse_bytes("2MB"), Ok(2_097_152));
        assert_eq!(parse_bytes("-1"), Ok(-1));
        assert!(parse_bytes("x").is_err());
        assert!(parse_bytes("-5").is_err());
        assert!(parse_bytes("5q").is_err());
    }

    #[test]
    fn update_flags() {
        let c = parse(&[
            "husk",
            "update",
            "--memory",
            "100m",
            "--memory-swap",
            "-1",
            "--cpu-share",
            "512",
            "--cpu-quota",
            "-1",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "-1",
            "--blkio-weight",
            "300",
            "ctr",
        ]);
        let Some(crate::cli::Command::Update(a)) = c.command else {
            panic!("not update")
        };
        let r = update_resources(&a).unwrap();
        let m = r.memory.unwrap();
        assert_eq!(
            (m.limit, m.swap, m.reservation),
            (Some(104_857_600), Some(-1), None)
        );
        let cpu = r.cpu.unwrap();
        assert_eq!(
            (cpu.shares, cpu.quota, cpu.cpus.as_deref()),
            (Some(512), Some(-1), Some("0"))
        );
        assert_eq!(r.pids.unwrap().limit, Some(-1));
        assert_eq!(r.block_io.unwrap().weight, Some(300));
        // The spelling is accepted too.
        let c = parse(&["husk", "update", "--cpu-shares", "100", "ctr"]);
        let Some(crate::cli::Command::Update(a)) = c.command else {
            panic!("not update")
        };
        assert_eq!(update_resources(&a).unwrap().cpu.unwrap().shares, Some(100));
        // Nothing given: nothing to change.
        let c = parse(&["husk", "update", "ctr"]);
        let Some(crate::cli::Command::Update(a)) = c.command else {
            panic!("not update")
        };
        assert!(update_resources(&a).unwrap().is_empty());
    }

    #[test]
    fn ps_events_pause_resume_parse() {
        let c = parse(&["husk", "ps", "--format", "json", "ctr"]);
        let Some(crate::cli::Command::Ps(p)) = c.command else {
            panic!("not ps")
        };
        assert_eq!((p.format, p.id.as_str()), (PsFormat::Json, "ctr"));
        let c = parse(&["husk", "ps", "ctr", "-o", "pid,comm"]);
        let Some(crate::cli::Command::Ps(p)) = c.command else {
            panic!("not ps")
        };
        assert_eq!(p.ps_args, ["-o", "pid,comm"]);
        let c = parse(&["husk", "events", "--stats", "--interval", "1s", "ctr"]);
        let Some(crate::cli::Command::Events(e)) = c.command else {
            panic!("not events")
        };
        assert!(e.stats && e.interval == Duration::from_secs(1));
        assert!(matches!(
            parse(&["husk", "pause", "x"]).command,
            Some(crate::cli::Command::Pause(_))
        ));
        assert!(matches!(
            parse(&["husk", "resume", "x"]).command,
            Some(crate::cli::Command::Resume(_))
        ));
        assert!(
            crate::cli::Cli::try_parse_from(["husk", "events", "--interval", "5", "x"]).is_err()
        );
    }

    #[test]
    fn ps_filtering() {
        let out = "UID   PID  PPID  C STIME TTY TIME CMD\nroot    1     0  0 10:00 ?   00:00:01 init\nroot   42     1  0 10:00 ?   00:00:00 sleep 100\n";
        assert_eq!(
            filter_ps(out, &[42]).unwrap(),
            "UID   PID  PPID  C STIME TTY TIME CMD\nroot   42     1  0 10:00 ?   00:00:00 sleep 100\n"
        );
        assert!(filter_ps("USER CMD\nx y\n", &[1])
            .unwrap_err()
            .contains("PID field"));
        assert!(filter_ps("PID CMD\nabc y\n", &[1]).is_err());
    }
}
