//! The board templates: the built-in JSON files in `server/templates/` (compiled in) plus any
//! `*.json` in the folder given with `--templates`, loaded and validated at start. A file in
//! that folder with the id of a built-in replaces it. A template that does not validate stops
//! the start with its reason.

use std::path::Path;
use std::sync::Arc;

use tafel_protocol::template::{Template, TemplateError};

const BUILT_IN: [(&str, &str); 2] = [
    (
        "cao-di-organisatie.json",
        include_str!("../templates/cao-di-organisatie.json"),
    ),
    (
        "cao-di-sector.json",
        include_str!("../templates/cao-di-sector.json"),
    ),
];

#[derive(Debug, Clone, Default)]
pub struct Templates {
    list: Vec<Arc<Template>>,
}

impl Templates {
    pub fn load(folder: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut list: Vec<Arc<Template>> = Vec::new();
        let mut add = |file: &str, json: &str| -> Result<(), TemplateError> {
            let t = Template::from_json(json).map_err(|e| TemplateError {
                template: file.to_owned(),
                reason: e.to_string(),
            })?;
            if format!("{}.json", t.id) != file.rsplit('/').next().unwrap_or(file) {
                return Err(TemplateError {
                    template: file.to_owned(),
                    reason: format!("the file must be named {}.json after its id", t.id),
                });
            }
            list.retain(|x| x.id != t.id);
            list.push(Arc::new(t));
            Ok(())
        };
        for (file, json) in BUILT_IN {
            add(file, json)?;
        }
        if let Some(folder) = folder {
            let entries = std::fs::read_dir(folder).map_err(|e| TemplateError {
                template: folder.display().to_string(),
                reason: e.to_string(),
            })?;
            let mut files: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for path in files {
                let json = std::fs::read_to_string(&path).map_err(|e| TemplateError {
                    template: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                add(&path.display().to_string(), &json)?;
            }
        }
        Ok(Templates { list })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Template>> {
        self.list.iter().find(|t| t.id == id).cloned()
    }

    pub fn all(&self) -> &[Arc<Template>] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_load() {
        let t = Templates::load(None).unwrap();
        assert!(t.get("cao-di-organisatie").is_some());
        assert!(t.get("cao-di-sector").is_some());
        for tpl in t.all() {
            assert!(tpl.staalkaart.len() >= 25);
            assert!(tpl.section("bouwstenen").is_some());
        }
    }

    #[test]
    fn a_folder_adds_templates_and_bad_ones_stop_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut extra: serde_json::Value = serde_json::from_str(BUILT_IN[0].1).unwrap();
        extra["id"] = "eigen-bord".into();
        std::fs::write(dir.path().join("eigen-bord.json"), extra.to_string()).unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        assert!(t.get("eigen-bord").is_some());
        assert_eq!(t.all().len(), 3);
        extra["sections"][0]["add"] = serde_json::json!(["observer"]);
        std::fs::write(dir.path().join("eigen-bord.json"), extra.to_string()).unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err();
        assert!(
            err.reason.contains("facilitator") || err.reason.contains("observer"),
            "{err}"
        );
    }
}
