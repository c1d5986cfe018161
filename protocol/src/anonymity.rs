//! Anonymity rules that need no IO: what of an employee's presence may reach other roles.
//! An employee's awareness state is rebuilt from a short whitelist before it is relayed, with
//! the server-assigned pseudonym as the name; anything else the client put there (text cursors
//! included, whose fields could carry a name) is dropped. Nothing free-form survives: the
//! colour is one of a fixed palette, and `editing` must name an item that exists in the document
//! the presence belongs to (which only readers of that document receive).

use serde_json::{json, Map, Value};

/// The presence colours (the web client picks one per device from the same list).
pub const PALETTE: [&str; 8] = [
    "#b3261e", "#1a5fb4", "#26734d", "#8a3ffc", "#b35c00", "#00707a", "#a2195b", "#5c5c00",
];

/// Rebuilds one awareness state (JSON text) of an employee connection. `null` (a removal)
/// stays `null`; unreadable JSON becomes `null`. `is_item(id)` says whether an item with that
/// id exists in the document (the only thing `editing` may name).
pub fn scrub_employee_awareness(
    state: &str,
    pseudonym: &str,
    is_item: &dyn Fn(&str) -> bool,
) -> String {
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
        .filter(|c| PALETTE.contains(c));
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
        .filter(|e| e.len() <= 64 && is_item(e))
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
        let s = r##"{"user":{"name":"Jan de Vries","color":"#1a5fb4","sub":"emp-77"},"email":"jan@x.nl","hand":true,"editing":"c1"}"##;
        let out = scrub_employee_awareness(s, "Medewerker 3", &|id| id == "c1");
        assert!(!out.contains("Jan") && !out.contains("emp-77") && !out.contains("jan@"));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["user"]["name"], "Medewerker 3");
        assert_eq!(v["user"]["color"], "#1a5fb4");
        assert_eq!(v["hand"], true);
        assert_eq!(v["editing"], "c1");
    }

    #[test]
    fn colour_and_editing_carry_nothing_free() {
        let s = r##"{"user":{"color":"#Jan123"},"editing":"Jan de Vries"}"##;
        let out = scrub_employee_awareness(s, "Medewerker 3", &|id| id == "c1");
        assert!(!out.contains("Jan"), "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v["user"].get("color").is_none());
        assert!(v.get("editing").is_none());
    }

    #[test]
    fn removal_stays_removal_and_garbage_becomes_null() {
        let any = |_: &str| true;
        assert_eq!(scrub_employee_awareness("null", "M", &any), "null");
        assert_eq!(scrub_employee_awareness("{oops", "M", &any), "null");
        assert_eq!(scrub_employee_awareness("[1]", "M", &any), "null");
    }

    #[test]
    fn only_palette_colours_pass() {
        let with = |c: &str| {
            let s = json!({"user": {"name": "Jan", "color": c}}).to_string();
            let v: Value =
                serde_json::from_str(&scrub_employee_awareness(&s, "M", &|_| true)).unwrap();
            v["user"].get("color").cloned()
        };
        for c in PALETTE {
            assert_eq!(with(c), Some(json!(c)));
        }
        assert_eq!(with("#30bced"), None, "not in the palette");
        assert_eq!(with(&"a".repeat(32)), None);
        assert_eq!(with("Jan de Vries"), None, "spaces: not a colour");
        assert_eq!(with("jan@x.nl"), None, "not a colour");
    }

    #[test]
    fn hand_ready_and_an_existing_item_in_editing_are_kept() {
        let s = r#"{"hand":false,"ready":true,"editing":"card-k1","extra":1}"#;
        let is_item = |id: &str| id == "card-k1" || id.starts_with('e');
        let v: Value = serde_json::from_str(&scrub_employee_awareness(s, "M", &is_item)).unwrap();
        assert_eq!(v["hand"], false);
        assert_eq!(v["ready"], true);
        assert_eq!(v["editing"], "card-k1");
        assert!(v.get("extra").is_none());
        let edge = "e".repeat(64);
        let s = json!({ "editing": edge }).to_string();
        let v: Value = serde_json::from_str(&scrub_employee_awareness(&s, "M", &is_item)).unwrap();
        assert_eq!(v["editing"], json!(edge), "64 characters pass");
        let s = json!({ "editing": "e".repeat(65) }).to_string();
        let v: Value = serde_json::from_str(&scrub_employee_awareness(&s, "M", &is_item)).unwrap();
        assert!(v.get("editing").is_none(), "65 characters do not");
        let s = json!({ "editing": "geen-kaart" }).to_string();
        let v: Value = serde_json::from_str(&scrub_employee_awareness(&s, "M", &is_item)).unwrap();
        assert!(v.get("editing").is_none(), "not an item");
    }

    #[test]
    fn names_cannot_hide_in_long_fields() {
        let s = r#"{"editing":"Jan de Vries schrijft hier een heel lang verhaal over zichzelf en zijn baas","cursor":{"anchor":"Jan de Vries"}}"#;
        let out = scrub_employee_awareness(s, "Medewerker 1", &|_| true);
        assert!(!out.contains("verhaal"));
        assert!(
            !out.contains("Jan"),
            "cursors are not relayed for employees"
        );
    }
}
