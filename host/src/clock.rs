//! The server's clock and how it writes times: UTC unix seconds in the database and in every
//! rule, ISO 8601 (`2023-11-14T22:13:20Z`) wherever a person or a client reads one.

/// Current time as UTC unix seconds, the unit of every timestamp column.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Current time as UTC unix milliseconds (delivery schedules).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Current time as UTC unix microseconds (the SQLite nonce log's sequence numbers).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// UTC unix seconds as ISO 8601 in UTC, to the second.
///
/// ```
/// assert_eq!(integration_host::clock::iso8601(0), "1970-01-01T00:00:00Z");
/// assert_eq!(integration_host::clock::iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
/// ```
pub fn iso8601(ts: i64) -> String {
    // Beyond chrono's range (about 262,000 years either way) the epoch is shown: no stored time
    // is that far off, and a listing must not fail over one.
    // `to_rfc3339_opts` writes the fields directly; `format` parses its pattern on every call
    // (it showed in the profile of reading an integration, which writes two times).
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A time a person or client writes, as UTC unix seconds: Magento's `2026-12-03 08:00:00`
/// (UTC), ISO 8601 / RFC 3339 with its offset (`2026-12-03T08:00:00Z`), or a date alone (its
/// midnight, UTC). `None` for anything else.
///
/// ```
/// use integration_host::clock::parse_time;
/// assert_eq!(parse_time("2023-11-14 22:13:20"), Some(1_700_000_000));
/// assert_eq!(parse_time("2023-11-14T23:13:20+01:00"), Some(1_700_000_000));
/// assert_eq!(parse_time("1970-01-02"), Some(86_400));
/// assert_eq!(parse_time("yesterday"), None);
/// ```
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp());
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_before_the_epoch_and_far_ahead() {
        assert_eq!(super::iso8601(-1), "1969-12-31T23:59:59Z");
        assert_eq!(super::iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::iso8601(253_402_300_799), "9999-12-31T23:59:59Z");
    }
}
