//! A detector threshold: a number, or `auto` (calibrated from the reference window). No I/O.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `threshold: 0.1` or `threshold: auto`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Value(f64),
    Auto,
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Threshold::Value(v) => serializer.serialize_f64(*v),
            Threshold::Auto => serializer.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(v) => Ok(Threshold::Value(v)),
            Raw::Text(t) if t == "auto" => Ok(Threshold::Auto),
            Raw::Text(t) => t.parse().map(Threshold::Value).map_err(|_| {
                serde::de::Error::custom(format!("threshold must be a number >= 0 or \"auto\", not {t:?}"))
            }),
        }
    }
}

impl JsonSchema for Threshold {
    fn schema_name() -> Cow<'static, str> {
        "Threshold".into()
    }

    fn inline_schema() -> bool {
        true
    }

    // Kubernetes cannot type "a number or a string" (structural schemas allow no such union for
    // non-integers, and CEL cannot see untyped fields), so the CRD types this field as a number and the
    // API server checks it; calibration is requested with `autoThreshold: true`. `threshold: auto` is still
    // read from local detector files (`driftwatch compute --detectors`).
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "number",
            "format": "double",
            "x-kubernetes-validations": [{
                "rule": "self >= 0.0",
                "message": "threshold must be a number >= 0 (for a calibrated threshold set autoThreshold: true)"
            }],
            "description": "Score above which the detector fires, >= 0."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_auto() {
        assert_eq!(
            serde_json::from_str::<Threshold>("0.1").unwrap(),
            Threshold::Value(0.1)
        );
        assert_eq!(
            serde_json::from_str::<Threshold>("2").unwrap(),
            Threshold::Value(2.0)
        );
        assert_eq!(
            serde_json::from_str::<Threshold>("\"auto\"").unwrap(),
            Threshold::Auto
        );
        assert!(serde_json::from_str::<Threshold>("\"often\"").is_err());
        assert_eq!(serde_json::to_string(&Threshold::Auto).unwrap(), "\"auto\"");
    }
}
