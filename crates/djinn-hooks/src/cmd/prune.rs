//! `prune`: delete old delivery attempts and finished events.

use std::time::Duration;

use super::store::{self, StoreResult as _};
use super::{Global, invalid, output};
use crate::cli::PruneArgs;

/// Runs `prune`.
pub(crate) fn run(global: &Global, args: &PruneArgs) -> anyhow::Result<()> {
    let age = parse_age(&args.older_than)?;
    let store = store::open(global)?;
    let spinner = super::progress::spinner("pruning");
    let pruned = store
        .prune_with(age, |so_far| {
            spinner.set_message(format!(
                "pruning: {} deliveries and {} events so far",
                so_far.deliveries, so_far.events
            ));
        })
        .or_fail();
    spinner.finish_and_clear();
    let pruned = pruned?;
    if global.json {
        output::print_json(&pruned)
    } else {
        outln!(
            "pruned {} deliveries and {} events older than {}",
            pruned.deliveries,
            pruned.events,
            args.older_than
        );
        Ok(())
    }
}

/// Reads an age such as `30d`, `12h`, `45m` or `90s` (or `1d 12h`: humantime's syntax, as the
/// other duration flags), at most [`MAX_AGE_DAYS`]; anything else is invalid input (exit 2).
pub(crate) fn parse_age(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    match humantime::parse_duration(text) {
        Ok(age) if age <= Duration::from_secs(MAX_AGE_DAYS * 86_400) => Ok(age),
        Ok(_) | Err(humantime::DurationError::NumberOverflow) => {
            invalid!("--older-than: {text:?} is too long; at most {MAX_AGE_DAYS}d (100 years)")
        }
        Err(_) => invalid!("--older-than: {text:?} is not an age like 30d, 12h, 45m or 90s"),
    }
}

/// The longest age `--older-than` takes: nothing in the log is older, and far longer ages
/// reach before any date the clock can name.
const MAX_AGE_DAYS: u64 = 36_500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(12 * 3_600));
        assert_eq!(parse_age("0s").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_age("1d 12h").unwrap(),
            Duration::from_secs(36 * 3_600)
        );
        assert_eq!(parse_age("1.5h").unwrap(), Duration::from_secs(90 * 60));
        for bad in ["", "d", "30", "-1d", "soon", "36501d"] {
            let err = parse_age(bad).unwrap_err();
            assert_eq!(super::super::exit_code(&err), 2, "{bad:?}");
        }
    }
}

/// `--older-than` under random input: never a panic, exit code 2 for anything but an age in
/// range, and `{n}{unit}` reads back as n units. Cases: proptest's default (256);
/// `PROPTEST_CASES=100000` runs more.
#[cfg(test)]
mod props {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::{MAX_AGE_DAYS, parse_age};
    use crate::cmd::exit_code;

    proptest! {
        #[test]
        fn anything_is_an_age_or_exit_code_2(text in prop_oneof![".{0,24}", "[ ]?[0-9]{0,22}[dhms]?[ ]?"]) {
            if let Err(err) = parse_age(&text) {
                prop_assert_eq!(exit_code(&err), 2, "{}", err);
                prop_assert!(err.to_string().starts_with("--older-than: "), "{}", err);
            }
        }

        #[test]
        fn ages_read_back(n in 0..=MAX_AGE_DAYS * 86_400, unit in prop::sample::select(vec![("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)])) {
            let (suffix, seconds) = unit;
            let n = n / seconds;
            prop_assert_eq!(
                parse_age(&format!("{n}{suffix}")).unwrap(),
                Duration::from_secs(n * seconds)
            );
        }
    }
}
