//! CPU time read from `/proc`: utime and stime (and a process's reaped children's).

use std::time::Duration;

/// utime + stime of a `/proc/.../stat` file (a process's or a thread's), in 10 ms ticks.
pub(crate) fn cpu_time(stat_file: &str) -> Duration {
    std::fs::read_to_string(stat_file)
        .ok()
        .and_then(|stat| cpu_ticks(&stat, 2))
        .unwrap_or_default()
}

/// CPU time from a `/proc/<pid>/stat` line, in clock ticks of 10 ms: utime + stime with
/// `fields` = 2, plus cutime + cstime (reaped children) with 4. With 4, the worker's CPU time
/// (under `DJINN_BENCH_WRAP`, the wrapper's plus the worker's, which it has reaped).
pub(crate) fn cpu_ticks(stat: &str, fields: usize) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let ticks = rest
        .split_whitespace()
        .skip(11)
        .take(fields)
        .map(|field| field.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(Duration::from_millis(10 * ticks))
}
