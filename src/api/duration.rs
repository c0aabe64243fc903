//! Human durations as used in DriftMonitor specs (`30m`, `24h`, `7d`, `1h30m`); pure parsing, no I/O.

use std::time::Duration;

/// Pattern the API server enforces on every duration field; [`parse_duration`] accepts exactly this.
pub const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h|d|w))+$";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("duration is empty; use a form like 30m, 24h or 7d")]
    Empty,
    #[error(
        "duration {0:?} is malformed; use digits followed by ms, s, m, h, d or w, e.g. 90m, 24h, 7d, 1h30m"
    )]
    Malformed(String),
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses a duration such as `7d`, `24h`, `1h30m` or `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = || DurationError::Malformed(text.to_string());
    let overflow = || DurationError::Overflow(text.to_string());
    let mut total_ms: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(malformed());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| overflow())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(malformed()),
        };
        rest = &rest[unit_len..];
        total_ms = value
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(overflow)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration in the largest exact units, the inverse of [`parse_duration`].
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_compound_units() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed_text_with_a_named_error() {
        for bad in ["", "h", "10", "10x", "1.5h", "-1h", "1h 30m", "7D"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            parse_duration("99999999999999999999w"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn format_is_the_inverse_of_parse() {
        for text in ["7d", "1d1h", "1h30m", "250ms", "17d", "45s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
