//! The Jobs the controller runs (drift check, retrain packaging) and the result document they report.

pub mod check;
pub mod cli;
pub mod load;
pub mod package;
pub mod pod_env;
pub mod redact;
pub mod result;
