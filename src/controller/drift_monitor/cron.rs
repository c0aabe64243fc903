//! Five-field cron expressions (minute hour day-of-month month day-of-week) evaluated in an IANA time
//! zone. Pure: no I/O, no clock.

use jiff::{
    Timestamp, ToSpan,
    civil::{Date, DateTime, Time},
    tz::TimeZone,
};

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    /// Both day fields were restricted: a day matches when either matches (Vixie cron semantics).
    day_or: bool,
}

/// Why a cron expression was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("schedule {0:?} must have 5 fields (minute hour day-of-month month day-of-week)")]
    FieldCount(String),
    #[error("schedule field {field} has an invalid value {value:?}")]
    Value { field: &'static str, value: String },
    #[error("schedule field {field} value {value} is outside {min}-{max}")]
    Range {
        field: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    #[error("unknown schedule macro {0:?}; use @yearly, @monthly, @weekly, @daily or @hourly")]
    Macro(String),
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// How far ahead [`Cron::next_after`] looks before concluding the expression never fires.
const SEARCH_YEARS: i16 = 8;

impl Cron {
    /// Parses a 5-field expression or one of the macros @yearly/@annually, @monthly, @weekly,
    /// @daily/@midnight, @hourly.
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let trimmed = expression.trim();
        let expanded = if let Some(name) = trimmed.strip_prefix('@') {
            match name.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => return Err(CronError::Macro(trimmed.to_string())),
            }
        } else {
            trimmed
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields.as_slice() else {
            return Err(CronError::FieldCount(expression.to_string()));
        };
        let minutes = parse_field(minute, &MINUTE)?;
        let hours = parse_field(hour, &HOUR)?;
        let days_of_month = parse_field(dom, &DAY_OF_MONTH)?;
        let months = parse_field(month, &MONTH)?;
        let mut days_of_week = parse_field(dow, &DAY_OF_WEEK)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week | 1) & !(1 << 7);
        }
        Ok(Self {
            minutes,
            hours: u32::try_from(hours).map_err(|_| value_error(&HOUR, hour))?,
            days_of_month: u32::try_from(days_of_month).map_err(|_| value_error(&DAY_OF_MONTH, dom))?,
            months: u16::try_from(months).map_err(|_| value_error(&MONTH, month))?,
            days_of_week: u8::try_from(days_of_week).map_err(|_| value_error(&DAY_OF_WEEK, dow))?,
            day_or: !dom.starts_with('*') && !dow.starts_with('*'),
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.day_or { dom || dow } else { dom && dow }
    }

    /// The first firing strictly after `after`, in time zone `tz`. A local time skipped by a daylight-saving
    /// change fires at the equivalent instant after the gap; a repeated local time fires once. `None` when
    /// the expression never fires (e.g. 30 February).
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = after.to_zoned(tz.clone()).datetime();
        let mut dt = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let last_year = dt.year().saturating_add(SEARCH_YEARS);
        while dt.year() <= last_year {
            if self.months & (1 << dt.month()) == 0 {
                dt = dt
                    .date()
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .to_datetime(Time::midnight());
                continue;
            }
            if !self.day_matches(dt.date()) {
                dt = dt.date().tomorrow().ok()?.to_datetime(Time::midnight());
                continue;
            }
            if self.hours & (1 << dt.hour()) == 0 {
                dt = start_of_hour(dt).checked_add(1.hour()).ok()?;
                continue;
            }
            if self.minutes & (1 << dt.minute()) == 0 {
                dt = dt.checked_add(1.minute()).ok()?;
                continue;
            }
            let candidate = tz.to_ambiguous_zoned(dt).compatible().ok()?.timestamp();
            if candidate > after {
                return Some(candidate);
            }
            dt = dt.checked_add(1.minute()).ok()?;
        }
        None
    }
}

fn start_of_hour(dt: DateTime) -> DateTime {
    dt.date().to_datetime(Time::constant(dt.hour(), 0, 0, 0))
}

fn value_error(spec: &FieldSpec, text: &str) -> CronError {
    CronError::Value {
        field: spec.name,
        value: text.to_string(),
    }
}

fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, CronError> {
    let lower = text.to_ascii_lowercase();
    let value = if let Some(index) = spec.names.iter().position(|n| *n == lower) {
        u32::try_from(index).map_err(|_| value_error(spec, text))? + if spec.min == 1 { 1 } else { 0 }
    } else {
        text.parse::<u32>().map_err(|_| value_error(spec, text))?
    };
    if value < spec.min || value > spec.max {
        return Err(CronError::Range {
            field: spec.name,
            value,
            min: spec.min,
            max: spec.max,
        });
    }
    Ok(value)
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| value_error(spec, part))?;
                if step == 0 {
                    return Err(value_error(spec, part));
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" || range == "?" {
            (spec.min, spec.max)
        } else if let Some((low, high)) = range.split_once('-') {
            (parse_value(low, spec)?, parse_value(high, spec)?)
        } else {
            let low = parse_value(range, spec)?;
            // `5/15` means from 5 to the end in steps of 15.
            (low, if part.contains('/') { spec.max } else { low })
        };
        if low > high {
            return Err(value_error(spec, part));
        }
        let mut value = low;
        while value <= high {
            bits |= 1 << value;
            value += step;
        }
    }
    if bits == 0 {
        return Err(value_error(spec, text));
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn next(expr: &str, after: &str, tz: &str) -> Timestamp {
        Cron::parse(expr)
            .unwrap()
            .next_after(ts(after), &TimeZone::get(tz).unwrap())
            .unwrap()
    }

    #[test]
    fn daily_at_two_fires_at_two_the_same_day_when_before_two() {
        assert_eq!(
            next("0 2 * * *", "2026-03-01T01:59:59Z", "UTC"),
            ts("2026-03-01T02:00:00Z")
        );
    }

    #[test]
    fn next_is_strictly_after_the_given_instant() {
        assert_eq!(
            next("0 2 * * *", "2026-03-01T02:00:00Z", "UTC"),
            ts("2026-03-02T02:00:00Z")
        );
    }

    #[test]
    fn steps_ranges_and_lists_are_understood() {
        assert_eq!(
            next("*/15 * * * *", "2026-03-01T10:07:00Z", "UTC"),
            ts("2026-03-01T10:15:00Z")
        );
        assert_eq!(
            next("5,35 9-17/4 * * *", "2026-03-01T13:36:00Z", "UTC"),
            ts("2026-03-01T17:05:00Z")
        );
        assert_eq!(
            next("10/20 * * * *", "2026-03-01T10:31:00Z", "UTC"),
            ts("2026-03-01T10:50:00Z")
        );
    }

    #[test]
    fn month_and_weekday_names_are_understood() {
        // 2026-03-02 is a Monday.
        assert_eq!(
            next("0 8 * mar mon", "2026-03-01T00:00:00Z", "UTC"),
            ts("2026-03-02T08:00:00Z")
        );
        assert_eq!(
            next("0 0 1 jan *", "2026-03-01T00:00:00Z", "UTC"),
            ts("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn sunday_may_be_written_as_seven() {
        // 2026-03-01 is a Sunday.
        assert_eq!(
            next("0 0 * * 7", "2026-02-27T00:00:00Z", "UTC"),
            ts("2026-03-01T00:00:00Z")
        );
    }

    #[test]
    fn restricted_day_of_month_and_weekday_match_either() {
        // The 15th or any Monday: from Saturday 2026-03-07, Monday the 9th comes first.
        assert_eq!(
            next("0 0 15 * 1", "2026-03-07T00:00:00Z", "UTC"),
            ts("2026-03-09T00:00:00Z")
        );
    }

    #[test]
    fn macros_expand_to_their_expressions() {
        assert_eq!(Cron::parse("@daily").unwrap(), Cron::parse("0 0 * * *").unwrap());
        assert_eq!(Cron::parse("@hourly").unwrap(), Cron::parse("0 * * * *").unwrap());
        assert_eq!(Cron::parse("@weekly").unwrap(), Cron::parse("0 0 * * 0").unwrap());
    }

    #[test]
    fn time_zone_shifts_the_firing_instant() {
        // 02:00 in Berlin during winter time is 01:00 UTC.
        assert_eq!(
            next("0 2 * * *", "2026-01-10T00:00:00Z", "Europe/Berlin"),
            ts("2026-01-10T01:00:00Z")
        );
    }

    #[test]
    fn a_local_time_skipped_by_daylight_saving_fires_after_the_gap() {
        // Berlin skips 02:00-03:00 on 2026-03-29; 02:30 local does not exist and fires at 03:30 CEST.
        assert_eq!(
            next("30 2 * * *", "2026-03-28T12:00:00Z", "Europe/Berlin"),
            ts("2026-03-29T01:30:00Z")
        );
    }

    #[test]
    fn a_repeated_local_time_fires_once() {
        // Berlin repeats 02:00-03:00 on 2026-10-25.
        let first = next("30 2 * * *", "2026-10-24T12:00:00Z", "Europe/Berlin");
        assert_eq!(first, ts("2026-10-25T00:30:00Z"));
        let second = next("30 2 * * *", &first.to_string(), "Europe/Berlin");
        assert_eq!(second, ts("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn an_impossible_date_never_fires() {
        let cron = Cron::parse("0 0 30 2 *").unwrap();
        assert_eq!(cron.next_after(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC), None);
    }

    #[test]
    fn malformed_expressions_are_refused_with_the_field_named() {
        assert!(matches!(Cron::parse("0 2 * *"), Err(CronError::FieldCount(_))));
        assert!(matches!(
            Cron::parse("61 * * * *"),
            Err(CronError::Range { field: "minute", .. })
        ));
        assert!(matches!(
            Cron::parse("* * * foo *"),
            Err(CronError::Value { field: "month", .. })
        ));
        assert!(matches!(Cron::parse("*/0 * * * *"), Err(CronError::Value { .. })));
        assert!(matches!(Cron::parse("5-1 * * * *"), Err(CronError::Value { .. })));
        assert!(matches!(Cron::parse("@sometimes"), Err(CronError::Macro(_))));
    }
}
