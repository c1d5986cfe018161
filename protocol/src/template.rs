//! Board templates: the data a board is created from (canvas sections with their permissions,
//! gap-analysis rules, steps, phases, the SPDI themes seed and the staalkaart of example
//! agreements). Templates are JSON files the server loads and validates at start; a new
//! template needs no code change. Validation is here, so a bad file is refused with a reason.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::roles::Role;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub title: String,
}

/// Who may add, edit and remove items in one part of a board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    pub add: Vec<Role>,
    pub edit: Vec<Role>,
    pub remove: Vec<Role>,
    /// When true, a participant edits only the items they created (the facilitator edits all).
    #[serde(default = "yes")]
    pub edit_own_only: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub hint: String,
    pub add: Vec<Role>,
    pub edit: Vec<Role>,
    pub remove: Vec<Role>,
    #[serde(default = "yes")]
    pub edit_own_only: bool,
}

impl Section {
    pub fn rules(&self) -> Rules {
        Rules {
            add: self.add.clone(),
            edit: self.edit.clone(),
            remove: self.remove.clone(),
            edit_own_only: self.edit_own_only,
        }
    }
}

/// One example agreement of the staalkaart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub id: String,
    pub title: String,
    pub description: String,
    pub pijlers: Vec<String>,
    pub thema: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub id: String,
    pub title: String,
    pub level: String,
    #[serde(default)]
    pub description: String,
    pub pijlers: Vec<Named>,
    pub types: Vec<Named>,
    pub steps: Vec<Step>,
    pub phases: Vec<String>,
    pub themes: Vec<Named>,
    pub sections: Vec<Section>,
    pub gap: Rules,
    pub staalkaart: Vec<Example>,
    /// The texts in other languages, by language code (`en`); what a translation leaves out
    /// stays in the template's own language (Dutch).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: BTreeMap<String, Translation>,
}

/// A name with its description, in another language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameText {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A section's or example's title with its hint or description, in another language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TitleText {
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A template's texts in one other language, keyed by the ids of the template's own parts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Translation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sections: BTreeMap<String, TitleText>,
    /// Step id → title.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<String, String>,
    /// The phases in order (as many as the template's, or none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pijlers: BTreeMap<String, NameText>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, NameText>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub themes: BTreeMap<String, NameText>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub staalkaart: BTreeMap<String, TitleText>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

/// The three pillars and three kinds of agreement are fixed by the SPDI model.
const PIJLERS: [&str; 3] = ["gezondheid", "bekwaamheid", "motivatie"];
const TYPES: [&str; 3] = ["curatief", "preventief", "versterkend"];
const STEPS: [&str; 7] = ["1", "2", "3A", "3B", "4", "5", "6"];

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Template {
    /// Parses and validates one template file.
    pub fn from_json(json: &str) -> Result<Template, TemplateError> {
        let t: Template = serde_json::from_str(json).map_err(|e| TemplateError {
            template: "?".into(),
            reason: e.to_string(),
        })?;
        t.validate()?;
        Ok(t)
    }

    pub fn validate(&self) -> Result<(), TemplateError> {
        let fail = |reason: String| {
            Err(TemplateError {
                template: self.id.clone(),
                reason,
            })
        };
        if !valid_id(&self.id) {
            return fail("id must be lowercase a-z, 0-9 and '-'".into());
        }
        if self.title.trim().is_empty() {
            return fail("title is empty".into());
        }
        if self.level != "organisatie" && self.level != "sector" {
            return fail("level must be organisatie or sector".into());
        }
        let pijlers: Vec<&str> = self.pijlers.iter().map(|p| p.id.as_str()).collect();
        if pijlers != PIJLERS {
            return fail(format!("pijlers must be {PIJLERS:?}"));
        }
        let types: Vec<&str> = self.types.iter().map(|p| p.id.as_str()).collect();
        if types != TYPES {
            return fail(format!("types must be {TYPES:?}"));
        }
        let steps: Vec<&str> = self.steps.iter().map(|s| s.id.as_str()).collect();
        if steps != STEPS {
            return fail(format!("steps must be {STEPS:?}"));
        }
        if self.phases.is_empty() {
            return fail("phases is empty".into());
        }
        let mut seen = HashSet::new();
        for th in &self.themes {
            if !valid_id(&th.id) || !seen.insert(th.id.as_str()) {
                return fail(format!("theme id {:?} is invalid or repeated", th.id));
            }
        }
        if self.themes.is_empty() {
            return fail("themes is empty".into());
        }
        let mut seen = HashSet::new();
        for s in &self.sections {
            if !valid_id(&s.id) || !seen.insert(s.id.as_str()) {
                return fail(format!("section id {:?} is invalid or repeated", s.id));
            }
            check_rules(&s.rules()).or_else(|r| fail(format!("section {}: {r}", s.id)))?;
        }
        if self.sections.is_empty() {
            return fail("sections is empty".into());
        }
        check_rules(&self.gap).or_else(|r| fail(format!("gap: {r}")))?;
        let mut seen = HashSet::new();
        for e in &self.staalkaart {
            if !valid_id(&e.id) || !seen.insert(e.id.as_str()) {
                return fail(format!("staalkaart id {:?} is invalid or repeated", e.id));
            }
            if e.pijlers.is_empty() || e.pijlers.iter().any(|p| !PIJLERS.contains(&p.as_str())) {
                return fail(format!(
                    "staalkaart {}: pijlers must be a non-empty subset of {PIJLERS:?}",
                    e.id
                ));
            }
            if !self.themes.iter().any(|t| t.id == e.thema) {
                return fail(format!("staalkaart {}: unknown thema {:?}", e.id, e.thema));
            }
            if !TYPES.contains(&e.kind.as_str()) {
                return fail(format!("staalkaart {}: unknown type {:?}", e.id, e.kind));
            }
        }
        if self.staalkaart.len() < 25 {
            return fail("the staalkaart needs at least 25 examples".into());
        }
        for (lang, tr) in &self.translations {
            self.check_translation(tr)
                .or_else(|r| fail(format!("translation {lang:?}: {r}")))?;
            if lang.len() != 2 || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
                return fail(format!(
                    "translation {lang:?}: a language is two letters (en)"
                ));
            }
        }
        Ok(())
    }

    /// A translation names only parts the template has, and leaves no title empty.
    fn check_translation(&self, tr: &Translation) -> Result<(), String> {
        let known = |what: &str, ids: Vec<&str>, keys: Vec<&String>| -> Result<(), String> {
            match keys.into_iter().find(|k| !ids.contains(&k.as_str())) {
                Some(k) => Err(format!("unknown {what} {k:?}")),
                None => Ok(()),
            }
        };
        known(
            "section",
            self.sections.iter().map(|s| s.id.as_str()).collect(),
            tr.sections.keys().collect(),
        )?;
        known(
            "step",
            self.steps.iter().map(|s| s.id.as_str()).collect(),
            tr.steps.keys().collect(),
        )?;
        known(
            "pijler",
            self.pijlers.iter().map(|s| s.id.as_str()).collect(),
            tr.pijlers.keys().collect(),
        )?;
        known(
            "type",
            self.types.iter().map(|s| s.id.as_str()).collect(),
            tr.types.keys().collect(),
        )?;
        known(
            "theme",
            self.themes.iter().map(|s| s.id.as_str()).collect(),
            tr.themes.keys().collect(),
        )?;
        known(
            "staalkaart example",
            self.staalkaart.iter().map(|s| s.id.as_str()).collect(),
            tr.staalkaart.keys().collect(),
        )?;
        if !tr.phases.is_empty() && tr.phases.len() != self.phases.len() {
            return Err(format!(
                "{} phases for the template's {}",
                tr.phases.len(),
                self.phases.len()
            ));
        }
        let titles = tr
            .sections
            .values()
            .chain(tr.staalkaart.values())
            .map(|t| &t.title);
        let names = tr
            .pijlers
            .values()
            .chain(tr.types.values())
            .chain(tr.themes.values())
            .map(|n| &n.name);
        if titles
            .chain(names)
            .chain(tr.steps.values())
            .chain(tr.phases.iter())
            .any(|s| s.trim().is_empty())
        {
            return Err("an empty title or name".into());
        }
        Ok(())
    }

    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }
}

fn check_rules(r: &Rules) -> Result<(), String> {
    for list in [&r.add, &r.edit, &r.remove] {
        if !list.contains(&Role::Facilitator) {
            return Err("the facilitator must be in add, edit and remove".into());
        }
        if list.contains(&Role::Observer) {
            return Err("observers never add, edit or remove".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn minimal() -> serde_json::Value {
        let staal: Vec<serde_json::Value> = (0..25)
            .map(|i| serde_json::json!({"id": format!("v{i}"), "title": "t", "description": "d", "pijlers": ["gezondheid"], "thema": "zwaar-werk", "type": "curatief"}))
            .collect();
        let steps: Vec<serde_json::Value> = ["1", "2", "3A", "3B", "4", "5", "6"]
            .iter()
            .map(|s| serde_json::json!({"id": s, "title": s}))
            .collect();
        serde_json::json!({
            "id": "test", "title": "Test", "level": "sector",
            "pijlers": [{"id":"gezondheid","name":"G"},{"id":"bekwaamheid","name":"B"},{"id":"motivatie","name":"M"}],
            "types": [{"id":"curatief","name":"C"},{"id":"preventief","name":"P"},{"id":"versterkend","name":"V"}],
            "steps": steps,
            "phases": ["Uitleg"],
            "themes": [{"id":"zwaar-werk","name":"Zwaar werk"}],
            "sections": [{"id":"themas","title":"Thema's","add":["facilitator","employee"],"edit":["facilitator","employee"],"remove":["facilitator","employee"]}],
            "gap": {"add":["facilitator"],"edit":["facilitator"],"remove":["facilitator"],"edit_own_only":false},
            "staalkaart": staal,
        })
    }

    #[test]
    fn minimal_template_is_valid() {
        let t = Template::from_json(&minimal().to_string()).unwrap();
        assert!(t.section("themas").unwrap().edit_own_only);
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        let cases: Vec<(&str, serde_json::Value)> = vec![
            (
                "observer",
                serde_json::json!([{"id":"s","title":"S","add":["facilitator","observer"],"edit":["facilitator"],"remove":["facilitator"]}]),
            ),
            (
                "facilitator",
                serde_json::json!([{"id":"s","title":"S","add":["employer"],"edit":["facilitator"],"remove":["facilitator"]}]),
            ),
            (
                "repeated",
                serde_json::json!([
                {"id":"s","title":"S","add":["facilitator"],"edit":["facilitator"],"remove":["facilitator"]},
                {"id":"s","title":"S","add":["facilitator"],"edit":["facilitator"],"remove":["facilitator"]}]),
            ),
        ];
        for (want, sections) in cases {
            let mut t = minimal();
            t["sections"] = sections;
            let err = Template::from_json(&t.to_string()).unwrap_err();
            assert!(err.reason.contains(want), "{want}: {err}");
        }
        let mut t = minimal();
        t["staalkaart"][3]["thema"] = "onbekend".into();
        assert!(Template::from_json(&t.to_string()).is_err());
        let mut t = minimal();
        t["staalkaart"].as_array_mut().unwrap().truncate(24);
        assert!(Template::from_json(&t.to_string()).is_err());
        let mut t = minimal();
        t["extra"] = 1.into();
        assert!(Template::from_json(&t.to_string()).is_err());
    }

    #[test]
    fn translations_name_only_what_the_template_has() {
        let mut t = minimal();
        t["translations"] = serde_json::json!({"en": {
            "title": "Test", "sections": {"themas": {"title": "Themes", "hint": "Write one per card"}},
            "steps": {"1": "Kick-off"}, "phases": ["Explanation"], "themes": {"zwaar-werk": {"name": "Heavy work"}},
            "staalkaart": {"v0": {"title": "T", "description": "D"}}
        }});
        let ok = Template::from_json(&t.to_string()).expect("a valid translation");
        assert_eq!(ok.translations["en"].sections["themas"].title, "Themes");
        let cases: Vec<(&str, serde_json::Value)> = vec![
            (
                "unknown section",
                serde_json::json!({"en": {"sections": {"nope": {"title": "X"}}}}),
            ),
            (
                "unknown step",
                serde_json::json!({"en": {"steps": {"7": "X"}}}),
            ),
            (
                "unknown theme",
                serde_json::json!({"en": {"themes": {"nope": {"name": "X"}}}}),
            ),
            (
                "unknown staalkaart",
                serde_json::json!({"en": {"staalkaart": {"nope": {"title": "X"}}}}),
            ),
            ("phases", serde_json::json!({"en": {"phases": ["a", "b"]}})),
            ("empty", serde_json::json!({"en": {"steps": {"1": " "}}})),
            ("two letters", serde_json::json!({"english": {}})),
        ];
        for (want, tr) in cases {
            let mut t = minimal();
            t["translations"] = tr;
            let err = Template::from_json(&t.to_string()).unwrap_err();
            assert!(err.reason.contains(want), "{want}: {err}");
        }
        let mut t = minimal();
        t["translations"] = serde_json::json!({"en": {"colour": "blue"}});
        assert!(
            Template::from_json(&t.to_string()).is_err(),
            "unknown fields are refused"
        );
    }

    /// The built-in templates declare English, so every staalkaart example has its English title
    /// and text (not the Dutch copied over).
    #[test]
    fn built_in_staalkaart_examples_all_have_english() {
        for json in [
            include_str!("../../server/templates/cao-di-organisatie.json"),
            include_str!("../../server/templates/cao-di-sector.json"),
        ] {
            let t = Template::from_json(json).expect("a built-in template is valid");
            let en = t
                .translations
                .get("en")
                .expect("the template declares English");
            for e in &t.staalkaart {
                let tr = en
                    .staalkaart
                    .get(&e.id)
                    .unwrap_or_else(|| panic!("{}: example {} has no English", t.id, e.id));
                assert!(!tr.title.trim().is_empty(), "{}: {} title", t.id, e.id);
                assert!(
                    !tr.description.trim().is_empty() && tr.description != e.description,
                    "{}: {} has no English text",
                    t.id,
                    e.id
                );
            }
        }
    }
}
