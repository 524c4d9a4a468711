//! What the benches read from their environment: knobs with defaults, and the machine's load
//! (printed beside each figure, since these machines are shared).

use std::str::FromStr;

/// The environment variable `name` as a `T`, or `default` if it is unset or not one.
pub(crate) fn knob<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The 1-minute load average, as `/proc/loadavg` gives it.
#[allow(dead_code, reason = "not every bench prints the load")]
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}
