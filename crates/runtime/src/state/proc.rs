//! Reading a process's start time and state from /proc/<pid>/stat.

/// The fields after the command name: `state` (field 3) onward.
fn stat_tail(stat: &str) -> Option<&str> {
    // comm is in parentheses and may itself contain spaces and ')': split after the last ')'.
    let close = stat.rfind(')')?;
    Some(stat[close + 1..].trim_start())
}

/// Field 22 (starttime, in clock ticks since boot) from the text of /proc/<pid>/stat.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    // After the comm, the first field is field 3; field 22 is index 19.
    stat_tail(stat)?.split_whitespace().nth(19)?.parse().ok()
}

/// Field 3 (state letter) from the text of /proc/<pid>/stat.
pub fn parse_state(stat: &str) -> Option<char> {
    stat_tail(stat)?.split_whitespace().next()?.chars().next()
}

fn read_stat(pid: i32) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

/// The start time of `pid` (field 22 of /proc/<pid>/stat), None if there is no such process.
pub fn process_start_time(pid: i32) -> Option<u64> {
    parse_start_time(&read_stat(pid)?)
}

/// Whether `pid` exists and is a zombie (or dead, `X`).
pub fn process_is_zombie(pid: i32) -> bool {
    matches!(
        read_stat(pid).as_deref().and_then(parse_state),
        Some('Z' | 'X')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "1234 ((a) b)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615";

    #[test]
    fn parses_tricky_comm() {
        assert_eq!(parse_start_time(STAT), Some(987_654));
        assert_eq!(parse_state(STAT), Some('S'));
        let z = STAT.replace(") S ", ") Z ");
        assert_eq!(parse_state(&z), Some('Z'));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_start_time(""), None);
        assert_eq!(parse_start_time("1 (x) S 1 2"), None);
        assert_eq!(parse_start_time("no paren at all"), None);
    }

    #[test]
    fn own_process() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert!(!process_is_zombie(me));
        assert_eq!(process_start_time(-1), None);
        assert_eq!(process_start_time(0), None);
    }
}
