//! The Jobs the controller runs (drift check, retrain packaging) and the result document they report.

pub mod package;
pub mod result;
