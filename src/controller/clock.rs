//! Where the controllers get `now`: the system clock, or a manual clock that tests move (each move
//! re-reconciles every object). No I/O.

use std::sync::Mutex;

use futures::{StreamExt, stream::BoxStream};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// A stream that yields whenever time jumps (manual clocks); `None` for a real clock.
    fn jumps(&self) -> Option<BoxStream<'static, ()>> {
        None
    }
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; every move wakes the controllers.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
    moved: watch::Sender<u64>,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: Timestamp) -> Self {
        let (moved, _) = watch::channel(0);
        Self {
            now: Mutex::new(now),
            moved,
        }
    }

    /// Sets the time and wakes the controllers.
    pub fn set(&self, now: Timestamp) {
        if let Ok(mut guard) = self.now.lock() {
            *guard = now;
        }
        self.moved.send_modify(|n| *n += 1);
    }

    /// Moves the time forward and wakes the controllers.
    pub fn advance(&self, by: SignedDuration) {
        let next = self.now().checked_add(by).unwrap_or(Timestamp::MAX);
        self.set(next);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.now
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|poisoned| *poisoned.into_inner())
    }

    fn jumps(&self) -> Option<BoxStream<'static, ()>> {
        let mut rx = self.moved.subscribe();
        rx.mark_unchanged();
        Some(
            futures::stream::unfold(rx, |mut rx| async move {
                rx.changed().await.ok()?;
                Some(((), rx))
            })
            .boxed(),
        )
    }
}
