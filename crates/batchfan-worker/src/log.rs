//! One log line per event on stderr: text, or JSON when `BATCHFAN_LOG_FORMAT=json` (CloudWatch).

use serde_json::{Map, Value, json};

/// Writes one event with its fields.
pub(crate) fn event(level: &str, message: &str, fields: &[(&str, Value)]) {
    if std::env::var("BATCHFAN_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json")) {
        let mut map = Map::new();
        map.insert("level".into(), json!(level));
        map.insert("message".into(), json!(message));
        for (k, v) in fields {
            map.insert((*k).into(), v.clone());
        }
        eprintln!("{}", Value::Object(map));
    } else {
        let text: Vec<String> = fields
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        eprintln!("batchfan-worker {level}: {message} {}", text.join(" "));
    }
}
