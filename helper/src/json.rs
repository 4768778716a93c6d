//! Strictness serde_json lacks for documents others write (manifests,
//! catalog entries): an object that names a key twice is refused, with the
//! JSON path of the object, instead of the last value silently winning.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeSet;
use std::fmt;

/// `Err("at components[0].artifacts: the key \"any\" appears twice")` for a
/// document that repeats a key in one object; `Ok` otherwise (also for text
/// that is not JSON: the real parse reports that).
pub fn no_duplicate_keys(bytes: &[u8]) -> Result<(), String> {
    let mut path = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match (Walk { path: &mut path }).deserialize(&mut de) {
        Err(e) if e.to_string().starts_with(MARK) => {
            let msg = e.to_string();
            let msg = msg.strip_prefix(MARK).unwrap_or(&msg);
            // serde_json appends " at line L column C": keep it, it helps.
            Err(msg.to_string())
        }
        _ => Ok(()),
    }
}

const MARK: &str = "duplicate key: ";

struct Walk<'a> {
    path: &'a mut Vec<String>,
}

fn where_(path: &[String]) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let mut s = String::new();
    for p in path {
        if !p.starts_with('[') && !s.is_empty() {
            s.push('.');
        }
        s.push_str(p);
    }
    s
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !seen.insert(k.clone()) {
                return Err(de::Error::custom(format!(
                    "{MARK}at {}: the key {k:?} appears twice (a second value would silently win)",
                    where_(self.path)
                )));
            }
            self.path.push(k);
            map.next_value_seed(Walk {
                path: &mut *self.path,
            })?;
            self.path.pop();
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            self.path.push(format!("[{i}]"));
            let more = seq.next_element_seed(Walk {
                path: &mut *self.path,
            })?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_named_with_its_path() {
        assert!(no_duplicate_keys(br#"{"a":1,"b":{"a":2},"c":[{"x":1},{"x":2}]}"#).is_ok());
        let e = no_duplicate_keys(br#"{"c":[{"x":1},{"y":{"any":1,"any":2}}]}"#).unwrap_err();
        assert!(
            e.starts_with(r#"at c[1].y: the key "any" appears twice"#),
            "{e}"
        );
        let e = no_duplicate_keys(br#"{"schema":1,"schema":2}"#).unwrap_err();
        assert!(e.starts_with("at .: the key \"schema\""), "{e}");
        // Not JSON at all: left to the real parser.
        assert!(no_duplicate_keys(b"{oops").is_ok());
    }
}
