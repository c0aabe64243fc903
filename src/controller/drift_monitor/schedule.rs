//! When a monitor's next check runs: due slot, run-now requests, suspend, concurrency Forbid and the
//! starting deadline. Pure: takes the spec, status facts and `now`; no I/O.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use super::cron::{Cron, CronError};

/// How far [`Schedule::longest_interval`] looks ahead at least: a week and a day covers every weekly pattern.
pub const INTERVAL_HORIZON: SignedDuration = SignedDuration::from_hours(8 * 24);
/// Most slots [`Schedule::longest_interval`] visits (a minutely schedule stops after about 8.5 hours).
pub const INTERVAL_MAX_SLOTS: usize = 512;

/// The longest gap between the slots of `expression` in `time_zone` after `now`, in seconds; `None` for a
/// schedule that cannot be parsed or fires at most once. Exported as the per-monitor
/// `<prefix>_drift_schedule_interval_seconds` gauge.
pub fn interval_seconds(expression: &str, time_zone: Option<&str>, now: Timestamp) -> Option<f64> {
    let schedule = Schedule::parse(expression, time_zone).ok()?;
    schedule.longest_interval(now).map(|d| d.as_secs_f64())
}

/// Default `startingDeadlineSeconds`: how late a missed slot may still run.
pub const DEFAULT_STARTING_DEADLINE: Duration = Duration::from_secs(3600);

/// A parsed schedule: cron expression plus time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: TimeZone,
}

/// Why a schedule cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Cron(#[from] CronError),
    #[error("unknown time zone {0:?}; use an IANA name such as UTC or Europe/Berlin")]
    TimeZone(String),
    #[error("schedule {0:?} never fires")]
    Never(String),
}

impl Schedule {
    /// Parses the cron expression and resolves the IANA time zone (default UTC).
    pub fn parse(expression: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let cron = Cron::parse(expression)?;
        let tz = match time_zone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| ScheduleError::TimeZone(name.to_string()))?,
        };
        let schedule = Self { cron, tz };
        if schedule.next_after(Timestamp::UNIX_EPOCH).is_none() {
            return Err(ScheduleError::Never(expression.to_string()));
        }
        Ok(schedule)
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.cron.next_after(after, &self.tz)
    }

    /// The longest gap between consecutive slots after `from`, over at least [`INTERVAL_HORIZON`] and two
    /// gaps (at most [`INTERVAL_MAX_SLOTS`] slots): what "twice the schedule interval" means to a staleness
    /// alert. A weekday schedule's interval is its weekend; a monthly one's is a month.
    pub fn longest_interval(&self, from: Timestamp) -> Option<Duration> {
        let horizon = from.checked_add(INTERVAL_HORIZON).unwrap_or(Timestamp::MAX);
        let mut previous = self.next_after(from)?;
        let mut longest = SignedDuration::ZERO;
        let mut gaps = 0usize;
        for _ in 1..INTERVAL_MAX_SLOTS {
            let Some(slot) = self.next_after(previous) else {
                break;
            };
            longest = longest.max(slot.duration_since(previous));
            gaps += 1;
            previous = slot;
            if gaps >= 2 && slot > horizon {
                break;
            }
        }
        (gaps > 0).then(|| Duration::try_from(longest).ok()).flatten()
    }

    /// The latest slot in `(earliest, now]`, not looking further back than `floor`.
    pub fn latest_slot(&self, earliest: Timestamp, floor: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let mut cursor = earliest.max(floor);
        let mut latest = None;
        while let Some(slot) = self.next_after(cursor) {
            if slot > now {
                break;
            }
            latest = Some(slot);
            cursor = slot;
        }
        latest
    }
}

/// What the scheduler knows about a monitor.
#[derive(Clone, Debug)]
pub struct ScheduleInput<'a> {
    pub now: Timestamp,
    /// The monitor's creation time: slots before it never run.
    pub created: Timestamp,
    /// Slot of the latest check Job created.
    pub last_schedule: Option<Timestamp>,
    pub suspend: bool,
    pub starting_deadline: Duration,
    /// Value of the `driftwatch.dev/run-now` annotation.
    pub run_now: Option<&'a str>,
    /// The run-now value already handled (from status).
    pub handled_run_now: Option<&'a str>,
    /// A check Job of this monitor has not finished yet.
    pub active: bool,
}

/// Why a check runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A cron slot (possibly missed and caught up within the starting deadline).
    Scheduled,
    /// The run-now annotation with this value.
    RunNow(String),
}

/// A check to start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The slot time: the check's `--at` and the Job name's time.
    pub slot: Timestamp,
    pub trigger: Trigger,
}

/// The scheduler's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleDecision {
    pub run: Option<Run>,
    /// The next cron slot after now (absent while suspended).
    pub next: Option<Timestamp>,
    /// When to look again.
    pub requeue_after: Duration,
}

/// Longest wait between two looks at a monitor when nothing else wakes it.
pub const MAX_REQUEUE: Duration = Duration::from_secs(6 * 3600);

/// Decides whether a check starts now and when to look again.
pub fn decide(schedule: &Schedule, input: &ScheduleInput<'_>) -> ScheduleDecision {
    let now = input.now;
    let next = if input.suspend {
        None
    } else {
        schedule.next_after(now)
    };
    let requeue_after = next
        .and_then(|next| Duration::try_from(next.duration_since(now)).ok())
        .map_or(MAX_REQUEUE, |wait| wait.min(MAX_REQUEUE));
    let decision = |run| ScheduleDecision {
        run,
        next,
        requeue_after,
    };
    if input.active {
        return decision(None);
    }
    if let Some(request) = input
        .run_now
        .filter(|r| !r.is_empty() && Some(*r) != input.handled_run_now)
    {
        let slot = truncate_to_minute(now);
        if input.last_schedule.is_some_and(|last| last >= slot) {
            // A check already ran in this minute and took its Job name: run at the start of the next one.
            let next_minute = slot.as_second() + 60 - now.as_second();
            return ScheduleDecision {
                run: None,
                next,
                requeue_after: Duration::from_secs(next_minute.max(1) as u64).min(requeue_after),
            };
        }
        return decision(Some(Run {
            slot,
            trigger: Trigger::RunNow(request.to_string()),
        }));
    }
    if input.suspend {
        return decision(None);
    }
    let earliest = input
        .last_schedule
        .map_or(input.created, |last| last.max(input.created));
    let deadline =
        jiff::SignedDuration::try_from(input.starting_deadline).unwrap_or(jiff::SignedDuration::MAX);
    let floor = now.checked_sub(deadline).unwrap_or(Timestamp::MIN);
    // Slots older than the floor can no longer run; start just before it so one on the floor still does.
    let floor = floor
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .unwrap_or(floor);
    let run = schedule.latest_slot(earliest, floor, now).map(|slot| Run {
        slot,
        trigger: Trigger::Scheduled,
    });
    decision(run)
}

/// Drops seconds and sub-seconds: Job and event names carry minutes.
pub fn truncate_to_minute(t: Timestamp) -> Timestamp {
    let seconds = t.as_second();
    Timestamp::from_second(seconds - seconds.rem_euclid(60)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn hourly() -> Schedule {
        Schedule::parse("0 * * * *", None).unwrap()
    }

    fn input(now: &str) -> ScheduleInput<'static> {
        ScheduleInput {
            now: ts(now),
            created: ts("2026-03-01T09:30:00Z"),
            last_schedule: None,
            suspend: false,
            starting_deadline: DEFAULT_STARTING_DEADLINE,
            run_now: None,
            handled_run_now: None,
            active: false,
        }
    }

    #[test]
    fn a_new_monitor_waits_for_its_first_slot() {
        let decision = decide(&hourly(), &input("2026-03-01T09:45:00Z"));
        assert_eq!(decision.run, None);
        assert_eq!(decision.next, Some(ts("2026-03-01T10:00:00Z")));
        assert_eq!(decision.requeue_after, Duration::from_secs(15 * 60));
    }

    #[test]
    fn a_due_slot_runs_with_its_slot_time() {
        let decision = decide(&hourly(), &input("2026-03-01T10:00:05Z"));
        assert_eq!(
            decision.run,
            Some(Run {
                slot: ts("2026-03-01T10:00:00Z"),
                trigger: Trigger::Scheduled
            })
        );
        assert_eq!(decision.next, Some(ts("2026-03-01T11:00:00Z")));
    }

    #[test]
    fn a_slot_already_scheduled_does_not_run_again() {
        let mut input = input("2026-03-01T10:20:00Z");
        input.last_schedule = Some(ts("2026-03-01T10:00:00Z"));
        assert_eq!(decide(&hourly(), &input).run, None);
    }

    #[test]
    fn several_missed_slots_run_once_as_the_latest() {
        let mut input = input("2026-03-01T13:10:00Z");
        input.last_schedule = Some(ts("2026-03-01T10:00:00Z"));
        let run = decide(&hourly(), &input).run.unwrap();
        assert_eq!(run.slot, ts("2026-03-01T13:00:00Z"));
    }

    #[test]
    fn a_slot_missed_beyond_the_starting_deadline_is_skipped() {
        let mut input = input("2026-03-01T10:40:00Z");
        input.starting_deadline = Duration::from_secs(600);
        assert_eq!(decide(&hourly(), &input).run, None);
    }

    #[test]
    fn a_slot_missed_within_the_starting_deadline_still_runs() {
        let mut input = input("2026-03-01T10:40:00Z");
        input.starting_deadline = Duration::from_secs(3600);
        assert_eq!(
            decide(&hourly(), &input).run.unwrap().slot,
            ts("2026-03-01T10:00:00Z")
        );
    }

    #[test]
    fn a_suspended_monitor_runs_nothing_and_has_no_next_slot() {
        let mut input = input("2026-03-01T10:00:05Z");
        input.suspend = true;
        let decision = decide(&hourly(), &input);
        assert_eq!(decision.run, None);
        assert_eq!(decision.next, None);
        assert_eq!(decision.requeue_after, MAX_REQUEUE);
    }

    #[test]
    fn an_active_check_forbids_another() {
        let mut input = input("2026-03-01T10:00:05Z");
        input.active = true;
        input.run_now = Some("2026-03-01T10:00:00Z");
        assert_eq!(decide(&hourly(), &input).run, None);
    }

    #[test]
    fn a_new_run_now_request_runs_at_the_current_minute() {
        let mut input = input("2026-03-01T09:45:31Z");
        input.run_now = Some("req-1");
        assert_eq!(
            decide(&hourly(), &input).run,
            Some(Run {
                slot: ts("2026-03-01T09:45:00Z"),
                trigger: Trigger::RunNow("req-1".into())
            })
        );
    }

    #[test]
    fn a_run_now_request_in_the_minute_of_the_last_check_runs_at_the_next_minute() {
        let mut input = input("2026-03-01T10:00:03Z");
        input.last_schedule = Some(ts("2026-03-01T10:00:00Z"));
        input.run_now = Some("req-1");
        let decision = decide(&hourly(), &input);
        assert_eq!(decision.run, None, "the Job name of 10:00 is taken");
        assert_eq!(decision.requeue_after, Duration::from_secs(57));
        input.now = ts("2026-03-01T10:01:00Z");
        assert_eq!(
            decide(&hourly(), &input).run,
            Some(Run {
                slot: ts("2026-03-01T10:01:00Z"),
                trigger: Trigger::RunNow("req-1".into())
            })
        );
    }

    #[test]
    fn a_handled_run_now_request_does_not_run_again() {
        let mut input = input("2026-03-01T09:45:31Z");
        input.run_now = Some("req-1");
        input.handled_run_now = Some("req-1");
        assert_eq!(decide(&hourly(), &input).run, None);
    }

    #[test]
    fn run_now_works_while_suspended() {
        let mut input = input("2026-03-01T09:45:31Z");
        input.suspend = true;
        input.run_now = Some("req-2");
        assert!(matches!(
            decide(&hourly(), &input).run,
            Some(Run {
                trigger: Trigger::RunNow(_),
                ..
            })
        ));
    }

    #[test]
    fn slots_before_creation_never_run() {
        let mut input = input("2026-03-01T09:31:00Z");
        input.created = ts("2026-03-01T09:30:30Z");
        let every_minute = Schedule::parse("* * * * *", None).unwrap();
        assert_eq!(
            decide(&every_minute, &input).run.unwrap().slot,
            ts("2026-03-01T09:31:00Z")
        );
        input.now = ts("2026-03-01T09:30:45Z");
        assert_eq!(decide(&every_minute, &input).run, None);
    }

    #[test]
    fn requeue_is_capped_for_rare_schedules() {
        let yearly = Schedule::parse("@yearly", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            decide(&yearly, &input("2026-03-01T10:00:00Z")).requeue_after,
            MAX_REQUEUE
        );
    }

    #[test]
    fn the_interval_of_an_hourly_schedule_is_an_hour() {
        assert_eq!(
            interval_seconds("0 * * * *", None, ts("2026-03-01T09:30:00Z")),
            Some(3600.0)
        );
    }

    #[test]
    fn the_interval_of_a_daily_schedule_is_a_day() {
        assert_eq!(
            interval_seconds("0 2 * * *", None, ts("2026-03-01T09:30:00Z")),
            Some(86_400.0)
        );
    }

    #[test]
    fn the_interval_of_a_weekday_schedule_is_its_weekend() {
        // Friday 02:00 to Monday 02:00, wherever the look-ahead starts.
        for from in [
            "2026-03-02T00:00:00Z",
            "2026-03-05T12:00:00Z",
            "2026-03-07T12:00:00Z",
        ] {
            assert_eq!(
                interval_seconds("0 2 * * 1-5", None, ts(from)),
                Some(3.0 * 86_400.0),
                "from {from}"
            );
        }
    }

    #[test]
    fn the_interval_of_a_minutely_schedule_is_a_minute() {
        assert_eq!(
            interval_seconds("* * * * *", None, ts("2026-03-01T09:30:00Z")),
            Some(60.0)
        );
    }

    #[test]
    fn the_interval_counts_a_daylight_saving_change_in_the_time_zone() {
        // Europe/Berlin moves from +01:00 to +02:00 on 2026-03-29: that night is 23 h, the autumn one 25 h.
        assert_eq!(
            interval_seconds("0 2 * * *", Some("Europe/Berlin"), ts("2026-10-20T00:00:00Z")),
            Some(25.0 * 3600.0)
        );
    }

    #[test]
    fn an_invalid_schedule_has_no_interval() {
        assert_eq!(
            interval_seconds("0 2 * *", None, ts("2026-03-01T09:30:00Z")),
            None
        );
        assert_eq!(
            interval_seconds("0 2 * * *", Some("Mars/Olympus"), ts("2026-03-01T09:30:00Z")),
            None
        );
    }

    #[test]
    fn an_unknown_time_zone_is_refused() {
        assert!(matches!(
            Schedule::parse("0 2 * * *", Some("Mars/Olympus")),
            Err(ScheduleError::TimeZone(_))
        ));
    }

    #[test]
    fn a_schedule_that_never_fires_is_refused() {
        assert!(matches!(
            Schedule::parse("0 0 31 2 *", None),
            Err(ScheduleError::Never(_))
        ));
    }
}
