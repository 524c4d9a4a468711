//! Bulk recovery's shared parts, for the API, the UI and the command line: how far back a
//! recovery reaches ([`parse_instant`]) and running one to its end in batches
//! ([`recover_all`]).

use djinn_hook_store::{Recovery, Store};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// How many events a recovery queues in one transaction: a large one takes several, so other
/// writers (intake, completions) never wait behind one long transaction.
pub const RECOVER_BATCH: usize = 500;

/// Reads an instant as the UI and the command line take it: RFC 3339
/// (`2026-12-06T08:00:00Z`), a date and time without offset, taken as UTC (`2026-12-06T08:00`
/// or with seconds: what a browser's date-time field sends), or an age before `now` (`24h`,
/// `2d`, `90m`: humantime's syntax). The error names what was given.
pub fn parse_instant(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Ok(at) = PrimitiveDateTime::parse(text, &seconds)
        .or_else(|_| PrimitiveDateTime::parse(text, &minutes))
    {
        return Ok(at.assume_utc());
    }
    match humantime::parse_duration(text) {
        Ok(age) => time::Duration::try_from(age)
            .ok()
            .and_then(|age| now.checked_sub(age))
            .ok_or_else(|| format!("{text:?} reaches too far back")),
        Err(_) => Err(format!(
            "{text:?} is not a time: give RFC 3339 (2026-12-06T08:00:00Z), a UTC date and time \
             (2026-12-06T08:00) or an age (24h, 2d)"
        )),
    }
}

/// Runs `recovery` to its end, [`RECOVER_BATCH`] events per transaction, calling `progress`
/// with how many each batch queued; how many it queued in all.
pub fn recover_all(
    store: &Store,
    recovery: &Recovery,
    mut progress: impl FnMut(u64),
) -> djinn_hook_store::Result<u64> {
    let mut queued = 0;
    loop {
        let n = store.recover(recovery, RECOVER_BATCH)?;
        if n == 0 {
            return Ok(queued);
        }
        progress(n);
        queued += n;
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::parse_instant;

    #[test]
    fn instants_read_in_each_form_and_refusals_name_the_text() {
        let now = datetime!(2026-12-07 12:00 UTC);
        let cases = [
            ("2026-12-06T08:00:00Z", Ok(datetime!(2026-12-06 08:00 UTC))),
            (
                "2026-12-06T08:00:00+01:00",
                Ok(datetime!(2026-12-06 07:00 UTC)),
            ),
            ("2026-12-06T08:00", Ok(datetime!(2026-12-06 08:00 UTC))),
            (
                " 2026-12-06T08:00:30 ",
                Ok(datetime!(2026-12-06 08:00:30 UTC)),
            ),
            ("24h", Ok(datetime!(2026-12-06 12:00 UTC))),
            ("1d 30m", Ok(datetime!(2026-12-06 11:30 UTC))),
        ];
        for (text, want) in cases {
            assert_eq!(parse_instant(text, now), want, "{text}");
        }
        for bad in ["yesterday", "", "2026-13-01T00:00"] {
            let err = parse_instant(bad, now).unwrap_err();
            assert!(err.contains(&format!("{:?}", bad.trim())), "{err}");
        }
    }
}
