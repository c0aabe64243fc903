//! Qdrant filters from driftwatch's payload filters and time windows. Pure, no I/O.
//!
//! Timestamps: `rfc3339` fields are filtered with Qdrant's datetime range, `unixSeconds`/`unixMillis`
//! fields with a numeric range; windows are half-open, `[start, end)`.

use qdrant_client::qdrant::r#match::MatchValue as QMatchValue;
use qdrant_client::qdrant::{Condition, DatetimeRange, Filter, Range, RepeatedStrings};

use super::{SourceError, TimeRange};
use crate::api::v1alpha1::{FieldCondition, PayloadFilter, TimestampFormat};

/// The filter of a window: the payload filter and, when given, the time range on the timestamp field.
pub fn window_filter(
    payload: Option<&PayloadFilter>,
    timestamp: Option<(&str, TimestampFormat, TimeRange)>,
) -> Result<Filter, SourceError> {
    let mut filter = scope_filter(payload)?;
    if let Some((field, format, range)) = timestamp {
        filter.must.push(time_condition(field, format, range));
    }
    Ok(filter)
}

/// The points of the collection a window may come from: the payload filter alone.
pub fn scope_filter(payload: Option<&PayloadFilter>) -> Result<Filter, SourceError> {
    let mut filter = Filter::default();
    if let Some(payload) = payload {
        for condition in &payload.must {
            filter.must.push(field_condition(condition)?);
        }
        for condition in &payload.must_not {
            filter.must_not.push(field_condition(condition)?);
        }
    }
    Ok(filter)
}

/// Points of the scope whose timestamp is missing or unreadable in `format`: they are in no window.
pub fn unreadable_timestamp_filter(
    payload: Option<&PayloadFilter>,
    field: &str,
    format: TimestampFormat,
) -> Result<Filter, SourceError> {
    let mut filter = scope_filter(payload)?;
    // Years 1 to 9999: the span a protobuf Timestamp (and Qdrant's datetime parser) covers.
    let everything = TimeRange {
        start: jiff::Timestamp::from_second(-62_135_596_800).ok(),
        end: jiff::Timestamp::from_second(253_402_300_799).ok(),
    };
    filter.must_not.push(time_condition(field, format, everything));
    Ok(filter)
}

/// `field` within `[start, end)`.
pub fn time_condition(field: &str, format: TimestampFormat, range: TimeRange) -> Condition {
    match format {
        TimestampFormat::Rfc3339 => Condition::datetime_range(
            field,
            DatetimeRange {
                gte: range.start.map(proto_timestamp),
                lt: range.end.map(proto_timestamp),
                ..Default::default()
            },
        ),
        TimestampFormat::UnixSeconds => Condition::range(
            field,
            Range {
                gte: range.start.map(|t| t.as_millisecond() as f64 / 1_000.0),
                lt: range.end.map(|t| t.as_millisecond() as f64 / 1_000.0),
                ..Default::default()
            },
        ),
        TimestampFormat::UnixMillis => Condition::range(
            field,
            Range {
                gte: range.start.map(|t| t.as_millisecond() as f64),
                lt: range.end.map(|t| t.as_millisecond() as f64),
                ..Default::default()
            },
        ),
    }
}

fn proto_timestamp(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

fn field_condition(condition: &FieldCondition) -> Result<Condition, SourceError> {
    let key = condition.key.as_str();
    if key.is_empty() {
        return Err(SourceError::InvalidFilter(
            "a condition has an empty key".to_string(),
        ));
    }
    match (&condition.match_, &condition.range) {
        (Some(m), None) => {
            let value = match (&m.keyword, m.integer, m.boolean, &m.any_keyword) {
                (Some(k), None, None, None) => QMatchValue::Keyword(k.clone()),
                (None, Some(i), None, None) => QMatchValue::Integer(i),
                (None, None, Some(b), None) => QMatchValue::Boolean(b),
                (None, None, None, Some(any)) => {
                    QMatchValue::Keywords(RepeatedStrings { strings: any.clone() })
                }
                _ => {
                    return Err(SourceError::InvalidFilter(format!(
                        "match on {key:?} needs exactly one of keyword, integer, boolean or anyKeyword"
                    )));
                }
            };
            Ok(Condition::matches(key, value))
        }
        (None, Some(r)) => {
            if r.gt.is_none() && r.gte.is_none() && r.lt.is_none() && r.lte.is_none() {
                return Err(SourceError::InvalidFilter(format!(
                    "range on {key:?} needs at least one of gt, gte, lt, lte"
                )));
            }
            Ok(Condition::range(
                key,
                Range {
                    gt: r.gt,
                    gte: r.gte,
                    lt: r.lt,
                    lte: r.lte,
                },
            ))
        }
        _ => Err(SourceError::InvalidFilter(format!(
            "condition on {key:?} needs exactly one of match or range"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::condition::ConditionOneOf;

    use super::*;
    use crate::api::v1alpha1::{MatchValue, RangeCondition};

    fn ts(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    fn field(condition: &Condition) -> &qdrant_client::qdrant::FieldCondition {
        match condition.condition_one_of.as_ref().unwrap() {
            ConditionOneOf::Field(f) => f,
            other => panic!("not a field condition: {other:?}"),
        }
    }

    #[test]
    fn an_rfc3339_window_is_a_half_open_datetime_range() {
        let range = TimeRange {
            start: Some(ts("2026-01-01T00:00:00Z")),
            end: Some(ts("2026-01-02T00:00:00.5Z")),
        };
        let c = time_condition("timestamp", TimestampFormat::Rfc3339, range);
        let r = field(&c).datetime_range.clone().unwrap();
        assert_eq!(r.gte.unwrap().seconds, 1_767_225_600);
        let lt = r.lt.unwrap();
        assert_eq!((lt.seconds, lt.nanos), (1_767_312_000, 500_000_000));
        assert!(r.gt.is_none() && r.lte.is_none());
    }

    #[test]
    fn unix_windows_are_numeric_ranges_in_their_unit() {
        let range = TimeRange {
            start: Some(ts("2026-01-01T00:00:00Z")),
            end: None,
        };
        let secs = time_condition("t", TimestampFormat::UnixSeconds, range);
        assert_eq!(field(&secs).range.clone().unwrap().gte, Some(1_767_225_600.0));
        let millis = time_condition("t", TimestampFormat::UnixMillis, range);
        let r = field(&millis).range.clone().unwrap();
        assert_eq!(r.gte, Some(1_767_225_600_000.0));
        assert_eq!(r.lt, None);
    }

    #[test]
    fn payload_conditions_become_must_and_must_not() {
        let payload = PayloadFilter {
            must: vec![FieldCondition {
                key: "model_version".into(),
                match_: Some(MatchValue {
                    keyword: Some("v2".into()),
                    integer: None,
                    boolean: None,
                    any_keyword: None,
                }),
                range: None,
            }],
            must_not: vec![FieldCondition {
                key: "score".into(),
                match_: None,
                range: Some(RangeCondition {
                    lt: Some(0.1),
                    ..Default::default()
                }),
            }],
        };
        let f = window_filter(
            Some(&payload),
            Some((
                "ts",
                TimestampFormat::UnixSeconds,
                TimeRange {
                    start: None,
                    end: None,
                },
            )),
        )
        .unwrap();
        assert_eq!(f.must.len(), 2);
        assert_eq!(f.must_not.len(), 1);
        assert_eq!(field(&f.must[0]).key, "model_version");
        assert_eq!(field(&f.must_not[0]).range.clone().unwrap().lt, Some(0.1));
    }

    #[test]
    fn a_condition_with_both_match_and_range_is_refused() {
        let payload = PayloadFilter {
            must: vec![FieldCondition {
                key: "k".into(),
                match_: None,
                range: None,
            }],
            must_not: vec![],
        };
        assert!(matches!(
            scope_filter(Some(&payload)),
            Err(SourceError::InvalidFilter(_))
        ));
    }
}
