//! Anonymity rules that need no IO: what of an employee's presence may reach other roles.
//! An employee's awareness state is rebuilt from a short whitelist before it is relayed, with
//! the server-assigned pseudonym as the name; anything else the client put there (text cursors
//! included, whose fields could carry a name) is dropped.

use serde_json::{json, Map, Value};

/// Rebuilds one awareness state (JSON text) of an employee connection. `null` (a removal)
/// stays `null`; unreadable JSON becomes `null`.
pub fn scrub_employee_awareness(state: &str, pseudonym: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(state) else {
        return "null".into();
    };
    let Value::Object(input) = value else {
        return "null".into();
    };
    let mut out = Map::new();
    let color = input
        .get("user")
        .and_then(|u| u.get("color"))
        .and_then(Value::as_str)
        .filter(|c| c.len() <= 32 && c.chars().all(|ch| ch == '#' || ch.is_ascii_alphanumeric()));
    let mut user = json!({"name": pseudonym, "role": "employee"});
    if let Some(c) = color {
        user["color"] = c.into();
    }
    out.insert("user".into(), user);
    for key in ["hand", "ready"] {
        if let Some(b) = input.get(key).and_then(Value::as_bool) {
            out.insert(key.into(), b.into());
        }
    }
    if let Some(e) = input
        .get("editing")
        .and_then(Value::as_str)
        .filter(|e| e.len() <= 64)
    {
        out.insert("editing".into(), e.into());
    }
    Value::Object(out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_are_replaced() {
        let s = r##"{"user":{"name":"Jan de Vries","color":"#30bced","sub":"emp-77"},"email":"jan@x.nl","hand":true}"##;
        let out = scrub_employee_awareness(s, "Medewerker 3");
        assert!(!out.contains("Jan") && !out.contains("emp-77") && !out.contains("jan@"));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["user"]["name"], "Medewerker 3");
        assert_eq!(v["user"]["color"], "#30bced");
        assert_eq!(v["hand"], true);
    }

    #[test]
    fn removal_stays_removal_and_garbage_becomes_null() {
        assert_eq!(scrub_employee_awareness("null", "M"), "null");
        assert_eq!(scrub_employee_awareness("{oops", "M"), "null");
        assert_eq!(scrub_employee_awareness("[1]", "M"), "null");
    }

    #[test]
    fn colours_that_could_carry_text_are_dropped() {
        let with = |c: &str| {
            let s = json!({"user": {"name": "Jan", "color": c}}).to_string();
            let v: Value = serde_json::from_str(&scrub_employee_awareness(&s, "M")).unwrap();
            v["user"].get("color").cloned()
        };
        assert_eq!(with("#30bced"), Some(json!("#30bced")));
        let longest = "a".repeat(32);
        assert_eq!(with(&longest), Some(json!(longest)), "32 characters pass");
        assert_eq!(with(&"a".repeat(33)), None, "33 characters do not");
        assert_eq!(with("Jan de Vries"), None, "spaces: not a colour");
        assert_eq!(with("jan@x.nl"), None, "not a colour");
    }

    #[test]
    fn hand_ready_and_a_short_editing_are_kept() {
        let s = r#"{"hand":false,"ready":true,"editing":"card-k1","extra":1}"#;
        let v: Value = serde_json::from_str(&scrub_employee_awareness(s, "M")).unwrap();
        assert_eq!(v["hand"], false);
        assert_eq!(v["ready"], true);
        assert_eq!(v["editing"], "card-k1");
        assert!(v.get("extra").is_none());
        let edge = "e".repeat(64);
        let s = json!({ "editing": edge }).to_string();
        let v: Value = serde_json::from_str(&scrub_employee_awareness(&s, "M")).unwrap();
        assert_eq!(v["editing"], json!(edge), "64 characters pass");
    }

    #[test]
    fn names_cannot_hide_in_long_fields() {
        let s = r#"{"editing":"Jan de Vries schrijft hier een heel lang verhaal over zichzelf en zijn baas","cursor":{"anchor":"Jan de Vries"}}"#;
        let out = scrub_employee_awareness(s, "Medewerker 1");
        assert!(!out.contains("verhaal"));
        assert!(
            !out.contains("Jan"),
            "cursors are not relayed for employees"
        );
    }
}
