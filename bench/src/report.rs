//! Result lines: JSON objects or aligned text.

use serde_json::{Map, Value};

pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    /// Prints one result: `fields` are `(name, value)` pairs after the
    /// scenario and runtime names.
    pub(crate) fn result(&self, scenario: &str, fields: &[(&str, Value)]) {
        if self.json {
            let mut m = Map::new();
            m.insert("scenario".into(), scenario.into());
            m.insert("runtime".into(), "clustertop".into());
            for (k, v) in fields {
                m.insert((*k).into(), v.clone());
            }
            println!("{}", Value::Object(m));
        } else {
            let rest: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("{scenario:<14} clustertop  {}", rest.join("  "));
        }
    }
}
