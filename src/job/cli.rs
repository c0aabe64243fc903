//! Value types shared by the flags of the Job subcommands (`check`, `qdrant-load`). No I/O.

use clap::ValueEnum;

use crate::api::v1alpha1::TimestampFormat;

/// Timestamp encodings as spelled on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TimestampFormatArg {
    #[default]
    #[value(name = "rfc3339")]
    Rfc3339,
    #[value(name = "unixSeconds")]
    UnixSeconds,
    #[value(name = "unixMillis")]
    UnixMillis,
}

impl From<TimestampFormatArg> for TimestampFormat {
    fn from(value: TimestampFormatArg) -> Self {
        match value {
            TimestampFormatArg::Rfc3339 => TimestampFormat::Rfc3339,
            TimestampFormatArg::UnixSeconds => TimestampFormat::UnixSeconds,
            TimestampFormatArg::UnixMillis => TimestampFormat::UnixMillis,
        }
    }
}
