//! Value types shared by the flags of the Job subcommands (`check`, `package`, `qdrant-load`). No I/O.

use clap::ValueEnum;

use crate::api::v1alpha1::TimestampFormat;
use crate::source::Sampling;

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

/// Sampling modes as spelled on the command line (`--sampling-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SamplingModeArg {
    /// A scroll of every point into a seeded reservoir per time stratum: reads the whole window; exactly
    /// uniform; reproducible.
    #[default]
    #[value(name = "reservoir")]
    Reservoir,
    /// The smallest sample keys (--sample-key-field) per time stratum: reads about the sample; exactly
    /// uniform; reproducible.
    #[value(name = "sampleKey")]
    SampleKey,
    /// Qdrant's random-sample query per time stratum: reads about the sample; not reproducible; uniform
    /// across strata, may favour some of Qdrant's segments within one.
    #[value(name = "random")]
    Random,
}

impl SamplingModeArg {
    /// The source's sampling for this mode; `sampleKey` needs the key field.
    pub fn sampling(self, key_field: Option<&str>) -> Result<Sampling, String> {
        match (self, key_field.filter(|f| !f.is_empty())) {
            (SamplingModeArg::Random, _) => Ok(Sampling::Random),
            (SamplingModeArg::Reservoir, _) => Ok(Sampling::Reservoir),
            (SamplingModeArg::SampleKey, Some(field)) => Ok(Sampling::SampleKey {
                field: field.to_string(),
            }),
            (SamplingModeArg::SampleKey, None) => Err(
                "--sampling-mode sampleKey needs --sample-key-field (the payload field with each point's sample key)"
                    .to_string(),
            ),
        }
    }
}

/// How `check` and `package` read a window from Qdrant.
#[derive(clap::Args, Clone, Debug)]
pub struct ReadArgs {
    /// How a window with more points than its maximum (check) or --sample-size (package) is sampled.
    #[arg(long, value_enum, default_value_t)]
    pub sampling_mode: SamplingModeArg,
    /// Payload field with each point's sample key, a number uniform in [0, 1) (for --sampling-mode
    /// sampleKey).
    #[arg(long)]
    pub sample_key_field: Option<String>,
    /// Time strata per window (1 to 64): each is sampled in proportion to its exact count.
    #[arg(long, default_value_t = 8)]
    pub strata: usize,
    /// Strata of a window read at the same time (1 to 16).
    #[arg(long, default_value_t = 4)]
    pub read_concurrency: usize,
    /// Points per scroll page (16 to 16384). Default: about 1 MiB of vectors per page.
    #[arg(long)]
    pub page_size: Option<u32>,
}

impl ReadArgs {
    /// The source's sampling, after checking every read setting.
    pub fn sampling(&self) -> Result<Sampling, String> {
        let sampling = self.sampling_mode.sampling(self.sample_key_field.as_deref())?;
        validate_read_settings(self.strata, self.read_concurrency, self.page_size)?;
        Ok(sampling)
    }
}

/// Checks the read settings shared by `check` and `package`: strata 1 to 64, concurrency 1 to 16, page
/// size 16 to 16384.
pub fn validate_read_settings(
    strata: usize,
    concurrency: usize,
    page_size: Option<u32>,
) -> Result<(), String> {
    if !(1..=64).contains(&strata) {
        return Err(format!("--strata {strata}: use 1 to 64"));
    }
    if !(1..=16).contains(&concurrency) {
        return Err(format!("--read-concurrency {concurrency}: use 1 to 16"));
    }
    if let Some(size) = page_size
        && !(16..=16_384).contains(&size)
    {
        return Err(format!("--page-size {size}: use 16 to 16384"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_key_mode_needs_its_field() {
        assert!(SamplingModeArg::SampleKey.sampling(None).is_err());
        assert!(SamplingModeArg::SampleKey.sampling(Some("")).is_err());
        assert_eq!(
            SamplingModeArg::SampleKey.sampling(Some("k")),
            Ok(Sampling::SampleKey { field: "k".into() })
        );
        assert_eq!(SamplingModeArg::Random.sampling(None), Ok(Sampling::Random));
        assert_eq!(SamplingModeArg::default(), SamplingModeArg::Reservoir);
    }

    #[test]
    fn read_settings_out_of_range_are_refused() {
        assert!(validate_read_settings(8, 4, None).is_ok());
        assert!(validate_read_settings(0, 4, None).is_err());
        assert!(validate_read_settings(65, 4, None).is_err());
        assert!(validate_read_settings(8, 0, None).is_err());
        assert!(validate_read_settings(8, 4, Some(8)).is_err());
        assert!(validate_read_settings(8, 4, Some(4096)).is_ok());
    }
}
