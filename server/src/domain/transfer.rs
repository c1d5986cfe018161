//! Moving a board's content to a new board (`POST /api/boards/import`): reading a
//! facilitator's JSON export into plain items, keeping only what the schema names (so nothing
//! of the old board's participants — `owner` tags, `author`s — and nothing the judge would
//! refuse comes along), and writing them under new ids as one server edit. No IO.

use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Map, Value};
use tafel_protocol::judge::MONITORING_FIELDS;
use tafel_protocol::template::Template;
use yrs::types::text::TextPrelim;
use yrs::{Map as _, MapPrelim, TransactionMut, WriteTxn};

use super::{any, Refusal};

/// Text fields (`Y.Text`) of a card and of a row.
const CARD_TEXT: &[&str] = &["text"];
const ROW_TEXT: &[&str] = &["onderwerp", "huidig", "gewenst", "gap", "oplossingen"];
/// Plain fields carried over: a participant's fields, and of the server's only `createdAt` and
/// `votes` (content, not identity).
const CARD_PLAIN: &[&str] = &[
    "section",
    "pijlers",
    "thema",
    "type",
    "stap",
    "source",
    "order",
    "priority",
    "createdAt",
    "votes",
];
const ROW_PLAIN: &[&str] = &[
    "partijen",
    "pijlers",
    "thema",
    "type",
    "stap",
    "priority",
    "order",
    "createdAt",
];
const PIJLERS: [&str; 3] = ["gezondheid", "bekwaamheid", "motivatie"];
const TYPES: [&str; 3] = ["curatief", "preventief", "versterkend"];
const STEPS: [&str; 7] = ["1", "2", "3A", "3B", "4", "5", "6"];
/// Most items one import carries per document.
pub const MAX_ITEMS: usize = 10_000;

/// One item to write: plain fields and text fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    /// Its id on the board it came from (written under a new one; `afspraak` links follow).
    pub id: String,
    pub fields: Map<String, Value>,
    pub texts: Vec<(String, String)>,
}

/// What an import writes into the new board.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Import {
    pub title: String,
    pub template: String,
    pub themes: Vec<(String, Value)>,
    pub cards: Vec<Item>,
    pub rows: Vec<Item>,
}

fn items(v: &Value, texts: &[&str], plain: &[&str]) -> Vec<Item> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter(|(_, item)| item.get("hidden") != Some(&Value::Bool(true)))
        .filter_map(|(id, item)| item.as_object().map(|o| (id, o)))
        .map(|(id, o)| Item {
            id: id.clone(),
            fields: o
                .iter()
                .filter(|(k, _)| {
                    plain.contains(&k.as_str())
                        // An indicator's monitoring plan (canvas cards only).
                        || (texts == CARD_TEXT && MONITORING_FIELDS.contains(&k.as_str()))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            texts: texts
                .iter()
                .filter_map(|t| {
                    o.get(*t)
                        .and_then(Value::as_str)
                        .map(|s| (t.to_string(), s.to_owned()))
                })
                .collect(),
        })
        .collect()
}

fn string_list(v: &Value, allowed: Option<&[&str]>, max_bytes: usize) -> bool {
    v.as_array().is_some_and(|a| {
        a.iter().all(|x| {
            x.as_str().is_some_and(|s| {
                s.len() <= max_bytes && allowed.is_none_or(|list| list.contains(&s))
            })
        })
    })
}

/// Whether a plain field's value is one the judge accepts (`themes`: the new board's).
fn valid(key: &str, v: &Value, t: &Template, themes: &[(String, Value)]) -> bool {
    match key {
        "section" => v
            .as_str()
            .is_some_and(|s| t.sections.iter().any(|x| x.id == s)),
        "pijlers" => string_list(v, Some(&PIJLERS), 64),
        "partijen" => string_list(v, None, 200),
        "type" => v.as_str().is_some_and(|s| TYPES.contains(&s)),
        "stap" => v.as_str().is_some_and(|s| STEPS.contains(&s)),
        "thema" => v
            .as_str()
            .is_some_and(|s| themes.is_empty() || themes.iter().any(|(id, _)| id == s)),
        "source" => v.as_str().is_some_and(|s| s.len() <= 64),
        "order" | "priority" | "createdAt" | "votes" => v.as_f64().is_some_and(f64::is_finite),
        "afspraak" => v.as_str().is_some_and(|s| s.len() <= 64),
        "soort" => v
            .as_str()
            .is_some_and(|s| matches!(s, "kwantitatief" | "kwalitatief")),
        "status" => v
            .as_str()
            .is_some_and(|s| tafel_protocol::judge::STATUSES.contains(&s)),
        "nulmeting" | "streefwaarde" | "verzamelt" | "rapporteert" | "terugkoppeling" => {
            v.as_str().is_some_and(|s| s.len() <= 500)
        }
        "meetmomenten" => v.as_array().is_some_and(|a| a.len() <= 20) && string_list(v, None, 100),
        "metingen" => v.as_array().is_some_and(|a| {
            a.len() <= 100
                && a.iter().all(|m| {
                    m.as_object().is_some_and(|o| {
                        o.len() == 2
                            && ["moment", "waarde"].iter().all(|k| {
                                o.get(*k)
                                    .and_then(Value::as_str)
                                    .is_some_and(|s| s.len() <= 500)
                            })
                    })
                })
        }),
        _ => false,
    }
}

impl Import {
    /// Reads a JSON export. 400 unless it names a board (title, template) and holds documents.
    pub fn from_export(export: &Value) -> Result<Import, Refusal> {
        let board = &export["board"];
        let (Some(title), Some(template)) = (board["title"].as_str(), board["template"].as_str())
        else {
            return Err(Refusal::bad(
                "the body must be a JSON export: {\"board\": {\"title\", \"template\"}, \"documents\": {…}}",
            ));
        };
        let docs = &export["documents"];
        if !docs.is_object() {
            return Err(Refusal::bad("the export holds no \"documents\""));
        }
        if docs.get("party-employer").is_none() || export.get("audit").is_none() {
            return Err(Refusal::bad(
                "only a facilitator's export can be imported (it holds every document)",
            ));
        }
        let themes = docs["canvas"]["themes"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(id, v)| !id.is_empty() && id.len() <= 64 && v.is_object())
            .map(|(id, v)| (id.clone(), v.clone()))
            .collect();
        let cards = items(&docs["canvas"]["cards"], CARD_TEXT, CARD_PLAIN);
        let rows = items(&docs["gap"]["rows"], ROW_TEXT, ROW_PLAIN);
        if cards.len() > MAX_ITEMS || rows.len() > MAX_ITEMS {
            return Err(Refusal::bad(format!(
                "an import holds at most {MAX_ITEMS} cards and {MAX_ITEMS} rows"
            )));
        }
        Ok(Import {
            title: title.to_owned(),
            template: template.to_owned(),
            themes,
            cards,
            rows,
        })
    }

    /// Keeps only values the new board's template and schema accept: a field with a wrong
    /// value is left out, a card without a valid section is left out.
    pub fn checked(mut self, t: &Template) -> Import {
        let themes = self.themes.clone();
        for item in self.cards.iter_mut().chain(self.rows.iter_mut()) {
            item.fields.retain(|k, v| valid(k, v, t, &themes));
        }
        self.cards.retain(|c| c.fields.contains_key("section"));
        self
    }
}

/// Canvas sections that carry over into the next cao round: the agreements and the
/// indicators (the rest of the canvas is the new round's work).
pub const NEXT_ROUND_SECTIONS: [&str; 4] = ["doel", "bouwstenen", "aanbevelingen", "monitoring"];

impl Import {
    /// The start of the next cao round from this board's content: the agreements
    /// (`bouwstenen`, `aanbevelingen`), the doel and the indicators (`monitoring`) as cards
    /// without votes or step, the themes, and each gap row with what was agreed and measured as
    /// its new *huidige situatie* (the old huidig, the agreed oplossingen and the monitoring
    /// results of its thema: `results` are `(thema, text)`), its gewenst kept, gap and
    /// oplossingen empty for the new round.
    pub fn next_round(mut self, title: &str, results: &[(Option<String>, String)]) -> Import {
        self.title = title.to_owned();
        self.cards.retain(|c| {
            c.fields
                .get("section")
                .and_then(Value::as_str)
                .is_some_and(|s| NEXT_ROUND_SECTIONS.contains(&s))
        });
        for c in &mut self.cards {
            // A new round measures anew (the indicator keeps its agreement: `write_items`
            // follows the link to the agreement's new id).
            for k in ["votes", "stap", "createdAt", "status", "metingen"] {
                c.fields.remove(k);
            }
        }
        for r in &mut self.rows {
            let thema = r
                .fields
                .get("thema")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let measured: Vec<&str> = results
                .iter()
                .filter(|(t, _)| thema.is_some() && *t == thema)
                .map(|(_, v)| v.as_str())
                .collect();
            let text = |k: &str| {
                r.texts
                    .iter()
                    .find(|(f, _)| f == k)
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default()
            };
            let mut huidig = Vec::new();
            for (label, v) in [
                ("Vorige ronde", text("huidig")),
                ("Afgesproken", text("oplossingen")),
                ("Monitoring", measured.join("; ")),
            ] {
                if !v.is_empty() {
                    huidig.push(format!("{label}: {v}"));
                }
            }
            let (onderwerp, gewenst) = (text("onderwerp"), text("gewenst"));
            r.texts = vec![
                ("onderwerp".into(), onderwerp),
                ("huidig".into(), huidig.join("\n")),
                ("gewenst".into(), gewenst),
                ("gap".into(), String::new()),
                ("oplossingen".into(), String::new()),
            ];
            r.fields.remove("createdAt");
            r.fields.remove("stap");
        }
        self
    }
}

/// Writes the items under `root`, each under a new id (`i` + 12 random characters). An
/// indicator's `afspraak` names its agreement by the agreement's new id; a link to an item not
/// written is left out.
pub fn write_items(txn: &mut TransactionMut, root: &str, items: &[Item]) {
    let map = txn.get_or_insert_map(root);
    let ids: std::collections::HashMap<&str, String> = items
        .iter()
        .map(|item| {
            let id = format!(
                "i{}",
                Alphanumeric
                    .sample_string(&mut rand::rng(), 12)
                    .to_lowercase()
            );
            (item.id.as_str(), id)
        })
        .collect();
    for item in items {
        let id = &ids[item.id.as_str()];
        let fields: Vec<(String, yrs::In)> = item
            .fields
            .iter()
            .filter_map(|(k, v)| match k.as_str() {
                "afspraak" => {
                    let to = ids.get(v.as_str()?)?;
                    Some((k.clone(), yrs::In::Any(to.as_str().into())))
                }
                _ => Some((k.clone(), yrs::In::Any(any(v.clone())))),
            })
            .collect();
        let m = map.insert(txn, id.as_str(), MapPrelim::from_iter(fields));
        for (field, text) in &item.texts {
            m.insert(txn, field.as_str(), TextPrelim::new(text.as_str()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use yrs::{ReadTxn, Transact};

    fn template() -> Template {
        serde_json::from_str(include_str!("../../templates/cao-di-organisatie.json"))
            .expect("template")
    }

    fn export() -> Value {
        json!({
            "board": {"title": "Oud", "template": "cao-di-organisatie"},
            "audit": [],
            "documents": {
                "party-employer": {},
                "canvas": {
                    "themes": {"zwaar-werk": {"name": "Zwaar werk"}},
                    "cards": {
                        "c1": {"section": "themas", "text": "Nachtdienst", "owner": "ab12", "author": "Medewerker 3",
                               "pijlers": ["gezondheid"], "thema": "zwaar-werk", "votes": 4, "createdAt": 1},
                        "c2": {"section": "bestaat-niet", "text": "weg"},
                        "c3": {"section": "themas", "text": "x", "thema": "onbekend", "type": "fout", "evil": 1}
                    }
                },
                "gap": {"rows": {"r1": {"onderwerp": "Werkdruk", "huidig": "hoog", "owner": "cd", "author": "Vakbond", "partijen": ["OR"], "priority": 1}}}
            }
        })
    }

    #[test]
    fn identities_and_invalid_values_stay_behind() {
        let plan = Import::from_export(&export())
            .expect("export")
            .checked(&template());
        assert_eq!(plan.title, "Oud");
        assert_eq!(
            plan.cards.len(),
            2,
            "the card without a valid section is left out"
        );
        let c1 = plan
            .cards
            .iter()
            .find(|c| c.texts == [("text".to_owned(), "Nachtdienst".to_owned())])
            .expect("c1");
        assert!(!c1.fields.contains_key("owner") && !c1.fields.contains_key("author"));
        assert_eq!(c1.fields["votes"], 4);
        assert_eq!(c1.fields["thema"], "zwaar-werk");
        let c3 = plan.cards.iter().find(|c| c.texts[0].1 == "x").expect("c3");
        assert_eq!(c3.fields.keys().collect::<Vec<_>>(), ["section"]);
        let r1 = &plan.rows[0];
        assert_eq!(r1.fields.get("owner"), None);
        assert_eq!(r1.fields.get("author"), None);
        assert_eq!(r1.fields["partijen"], json!(["OR"]));
        assert_eq!(r1.texts.len(), 2);
    }

    #[test]
    fn the_next_round_carries_agreements_indicators_and_results() {
        let mut e = export();
        let cards = e["documents"]["canvas"]["cards"].as_object_mut().unwrap();
        cards.insert(
            "b1".into(),
            json!({"section": "bouwstenen", "text": "DI-uren", "votes": 5, "stap": "4"}),
        );
        cards.insert(
            "m1".into(),
            json!({"section": "monitoring", "text": "Gebruik DI-uren", "afspraak": "b1",
                   "status": "loopt", "metingen": [{"moment": "eind", "waarde": "40%"}]}),
        );
        cards.insert(
            "m2".into(),
            json!({"section": "monitoring", "text": "Los", "afspraak": "c1"}),
        );
        e["documents"]["gap"]["rows"]["r1"]["oplossingen"] = json!("Gezond roosteren");
        e["documents"]["gap"]["rows"]["r1"]["thema"] = json!("zwaar-werk");
        let plan = Import::from_export(&e)
            .unwrap()
            .checked(&template())
            .next_round(
                "Ronde 2",
                &[
                    (Some("zwaar-werk".into()), "Gebruik DI-uren: 40%".into()),
                    (Some("andere".into()), "niet van deze rij".into()),
                    (None, "zonder thema".into()),
                ],
            );
        assert_eq!(plan.title, "Ronde 2");
        let texts: Vec<&str> = plan.cards.iter().map(|c| c.texts[0].1.as_str()).collect();
        assert_eq!(texts.len(), 3, "themas cards stay behind: {texts:?}");
        assert!(texts.contains(&"DI-uren") && texts.contains(&"Gebruik DI-uren"));
        assert!(plan
            .cards
            .iter()
            .all(|c| !c.fields.contains_key("votes") && !c.fields.contains_key("stap")));
        let r = &plan.rows[0];
        let get = |k: &str| {
            r.texts
                .iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("onderwerp"), Some("Werkdruk"));
        assert_eq!(
            get("huidig"),
            Some("Vorige ronde: hoog\nAfgesproken: Gezond roosteren\nMonitoring: Gebruik DI-uren: 40%")
        );
        assert_eq!(get("oplossingen"), Some(""));
        assert_eq!(plan.themes.len(), 1);

        // Written under new ids, the indicator still names its agreement (by its new id); a
        // link to a card that stayed behind is left out; what was measured is not carried.
        let doc = yrs::Doc::new();
        write_items(&mut doc.transact_mut(), "cards", &plan.cards);
        let txn = doc.transact();
        let map = txn.get_map("cards").unwrap();
        let by_text = |want: &str| -> Map<String, Value> {
            map.iter(&txn)
                .find_map(|(id, v)| {
                    let yrs::Out::YMap(m) = v else { return None };
                    let held = super::super::edits::capture(&txn, &m);
                    (held.texts.get("text").map(String::as_str) == Some(want)).then(|| {
                        let mut o: Map<String, Value> = held.fields.into_iter().collect();
                        o.insert("id".into(), json!(id));
                        o
                    })
                })
                .expect(want)
        };
        let agreement = by_text("DI-uren");
        let indicator = by_text("Gebruik DI-uren");
        assert_ne!(agreement["id"], "b1");
        assert_eq!(indicator["afspraak"], agreement["id"]);
        assert!(!indicator.contains_key("status") && !indicator.contains_key("metingen"));
        assert!(!by_text("Los").contains_key("afspraak"));
    }

    #[test]
    fn only_a_facilitators_export_is_taken() {
        let mut e = export();
        e.as_object_mut().unwrap().remove("audit");
        assert!(Import::from_export(&e).is_err());
        assert!(Import::from_export(&json!({"board": {"title": "x"}})).is_err());
        assert!(Import::from_export(&json!([1, 2])).is_err());
        assert!(Import::from_export(&export()).is_ok());
    }
}
