//! The advice report (adviesrapport) and the CSV tables, generated from a board's export as
//! one role may see it: the whitepaper's five sections as a small document model, rendered as
//! Markdown and as printable HTML (A4, page breaks, no controls). Pure: no IO, no Yjs.
//!
//! The report is built from the role-filtered JSON export, so it can never show more than that
//! role's export does; it never prints an `author`, an `owner` tag or any participant id, so
//! employees' contributions stay anonymous in it for every role.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use tafel_protocol::template::Template;

/// Canvas sections the report reads (template data; a template without one shows "—").
pub const DOEL: &str = "doel";
pub const OPDRACHT: &str = "opdracht";
pub const PROCES: &str = "proces";
pub const ANALYSE: &str = "analyse";
pub const THEMAS: &str = "themas";
pub const BOUWSTENEN: &str = "bouwstenen";
pub const AANBEVELINGEN: &str = "aanbevelingen";
pub const MONITORING: &str = "monitoring";

/// One block of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading: level 1 (title), 2 (one of the five sections), 3, 4.
    Heading(u8, String),
    Para(String),
    List(Vec<String>),
    Table(Vec<String>, Vec<Vec<String>>),
    /// Where a printed report starts a new page.
    PageBreak,
}

/// A card of the canvas as the report uses it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Card {
    pub id: String,
    pub section: String,
    pub text: String,
    pub pijlers: Vec<String>,
    pub thema: Option<String>,
    pub kind: Option<String>,
    pub stap: Option<String>,
    pub votes: Option<f64>,
    pub order: f64,
    pub created: f64,
    /// The monitoring plan's fields of an indicator card (`soort`, `nulmeting`, …), as JSON.
    pub plan: serde_json::Map<String, Value>,
}

/// A row of the gap analysis.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub id: String,
    pub onderwerp: String,
    pub huidig: String,
    pub gewenst: String,
    pub gap: String,
    pub oplossingen: String,
    pub partijen: Vec<String>,
    pub pijlers: Vec<String>,
    pub thema: Option<String>,
    pub kind: Option<String>,
    pub priority: f64,
    pub order: f64,
}

/// What the report is made of, read from an export.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BoardView {
    pub title: String,
    pub level: String,
    pub step: String,
    pub cards: Vec<Card>,
    pub rows: Vec<Row>,
    /// Theme id → name, the board's own copy.
    pub themes: BTreeMap<String, String>,
    /// Revealed voting rounds: title and (card id, total), highest first.
    pub rounds: Vec<(String, Vec<(String, u64)>)>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_owned()
}

fn opt(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

impl BoardView {
    /// Reads the parts of a JSON export (`{"board", "session", "documents"}`) the report uses.
    /// Missing or mistyped parts read as empty: an export of any role builds a report.
    pub fn from_export(export: &Value) -> BoardView {
        let docs = &export["documents"];
        let mut cards: Vec<Card> = docs["canvas"]["cards"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, c)| Card {
                id: id.clone(),
                section: text(c, "section"),
                text: text(c, "text"),
                pijlers: strings(c, "pijlers"),
                thema: opt(c, "thema"),
                kind: opt(c, "type"),
                stap: opt(c, "stap"),
                votes: num(c, "votes"),
                order: num(c, "order").unwrap_or(f64::MAX),
                created: num(c, "createdAt").unwrap_or(0.0),
                plan: c
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| tafel_protocol::judge::MONITORING_FIELDS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect();
        cards.sort_by(|a, b| {
            a.order
                .total_cmp(&b.order)
                .then(a.created.total_cmp(&b.created))
                .then(a.id.cmp(&b.id))
        });
        let mut rows: Vec<Row> = docs["gap"]["rows"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, r)| Row {
                id: id.clone(),
                onderwerp: text(r, "onderwerp"),
                huidig: text(r, "huidig"),
                gewenst: text(r, "gewenst"),
                gap: text(r, "gap"),
                oplossingen: text(r, "oplossingen"),
                partijen: strings(r, "partijen"),
                pijlers: strings(r, "pijlers"),
                thema: opt(r, "thema"),
                kind: opt(r, "type"),
                priority: num(r, "priority").unwrap_or(f64::MAX),
                order: num(r, "order").unwrap_or(f64::MAX),
            })
            .collect();
        rows.sort_by(|a, b| {
            a.priority
                .total_cmp(&b.priority)
                .then(a.order.total_cmp(&b.order))
                .then(a.onderwerp.cmp(&b.onderwerp))
                .then(a.id.cmp(&b.id))
        });
        let themes = docs["canvas"]["themes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, t)| (id.clone(), text(t, "name")))
            .collect();
        let mut rounds: Vec<(String, Vec<(String, u64)>)> = docs["control"]["rounds"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, r)| r["status"] == "revealed")
            .map(|(_, r)| {
                let mut totals: Vec<(String, u64)> = r["totals"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(c, n)| (c.clone(), n.as_u64().unwrap_or(0)))
                    .collect();
                totals.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                (text(r, "title"), totals)
            })
            .collect();
        rounds.sort();
        BoardView {
            title: text(&export["board"], "title"),
            level: text(&docs["canvas"]["meta"], "level"),
            step: text(&export["session"], "step"),
            cards,
            rows,
            themes,
            rounds,
        }
    }

    fn in_section<'a>(&'a self, section: &'a str) -> impl Iterator<Item = &'a Card> + 'a {
        self.cards.iter().filter(move |c| c.section == section)
    }

    fn card_text(&self, id: &str) -> Option<&str> {
        self.cards
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.text.as_str())
    }
}

fn name_of<'a>(list: &'a [tafel_protocol::template::Named], id: &'a str) -> &'a str {
    list.iter()
        .find(|n| n.id == id)
        .map(|n| n.name.as_str())
        .unwrap_or(id)
}

fn texts<'a>(cards: impl Iterator<Item = &'a Card>) -> Vec<String> {
    cards
        .filter(|c| !c.text.is_empty())
        .map(|c| c.text.clone())
        .collect()
}

/// The list, or a paragraph saying that nothing is there yet.
fn list_or_empty(out: &mut Vec<Block>, items: Vec<String>) {
    if items.is_empty() {
        out.push(Block::Para("—".into()));
    } else {
        out.push(Block::List(items));
    }
}

fn section_title<'a>(t: &'a Template, id: &'a str) -> &'a str {
    t.sections
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.title.as_str())
        .unwrap_or(id)
}

/// The advice report in the whitepaper's five sections.
pub fn advice(t: &Template, b: &BoardView) -> Vec<Block> {
    let mut out = vec![
        Block::Heading(1, format!("Adviesrapport: {}", b.title)),
        Block::Para(format!(
            "Advies van de werkgroep aan de cao-tafel ({}, {}).",
            t.title,
            if b.level.is_empty() {
                &t.level
            } else {
                &b.level
            }
        )),
    ];

    // 1 Inleiding
    out.push(Block::Heading(2, "1 Inleiding".into()));
    out.push(Block::Heading(3, "Doel".into()));
    list_or_empty(&mut out, texts(b.in_section(DOEL)));
    let opdracht = texts(b.in_section(OPDRACHT));
    if !opdracht.is_empty() {
        out.push(Block::Heading(3, section_title(t, OPDRACHT).to_owned()));
        out.push(Block::List(opdracht));
    }
    out.push(Block::Heading(3, "Doorlopen proces".into()));
    let steps: Vec<String> = t
        .steps
        .iter()
        .filter(|s| matches!(s.id.as_str(), "1" | "2" | "3A" | "3B" | "4"))
        .map(|s| format!("Stap {}: {}", s.id, s.title))
        .collect();
    out.push(Block::List(steps));
    let proces = texts(b.in_section(PROCES));
    if !proces.is_empty() {
        out.push(Block::Para(format!("{}:", section_title(t, PROCES))));
        out.push(Block::List(proces));
    }

    // 2 Samenvatting van de analyse
    out.push(Block::PageBreak);
    out.push(Block::Heading(2, "2 Samenvatting van de analyse".into()));
    out.push(Block::Heading(3, "Trends en ontwikkelingen".into()));
    list_or_empty(
        &mut out,
        texts(
            b.cards
                .iter()
                .filter(|c| c.section == ANALYSE || (c.stap.as_deref() == Some("2"))),
        ),
    );
    out.push(Block::Heading(3, "Knelpunten per pijler".into()));
    for p in &t.pijlers {
        out.push(Block::Heading(4, p.name.clone()));
        list_or_empty(
            &mut out,
            texts(b.in_section(THEMAS).filter(|c| c.pijlers.contains(&p.id))),
        );
    }
    let untagged = texts(b.in_section(THEMAS).filter(|c| c.pijlers.is_empty()));
    if !untagged.is_empty() {
        out.push(Block::Heading(4, "Zonder pijler".into()));
        out.push(Block::List(untagged));
    }
    out.push(Block::Heading(3, "Ervaringen van medewerkers".into()));
    out.push(Block::Para(
        "Uit de rondetafelgesprekken (stap 3B), zonder namen.".into(),
    ));
    list_or_empty(
        &mut out,
        texts(b.cards.iter().filter(|c| c.stap.as_deref() == Some("3B"))),
    );

    // 3 Prioriteiten en bouwstenen
    out.push(Block::PageBreak);
    out.push(Block::Heading(2, "3 Prioriteiten en bouwstenen".into()));
    out.push(Block::Heading(3, "Thema's en knoppen".into()));
    let themes: Vec<String> = b
        .themes
        .iter()
        .map(|(id, name)| {
            let n = b
                .cards
                .iter()
                .filter(|c| c.thema.as_deref() == Some(id))
                .count();
            format!("{name} ({n} {})", if n == 1 { "kaart" } else { "kaarten" })
        })
        .collect();
    list_or_empty(&mut out, themes);
    out.push(Block::Heading(3, "Gap-analyse".into()));
    if b.rows.is_empty() {
        out.push(Block::Para("—".into()));
    } else {
        out.push(Block::Table(
            [
                "Onderwerp",
                "Huidige situatie",
                "Gewenste situatie",
                "Gap",
                "Aanbevolen oplossingen",
                "Partijen",
            ]
            .map(str::to_owned)
            .to_vec(),
            b.rows
                .iter()
                .map(|r| {
                    vec![
                        r.onderwerp.clone(),
                        r.huidig.clone(),
                        r.gewenst.clone(),
                        r.gap.clone(),
                        r.oplossingen.clone(),
                        r.partijen.join(", "),
                    ]
                })
                .collect(),
        ));
    }
    out.push(Block::Heading(3, "Voorstellen".into()));
    let bouwstenen: Vec<&Card> = b.in_section(BOUWSTENEN).collect();
    let mut counts = Vec::new();
    for k in &t.types {
        let of_kind: Vec<&Card> = bouwstenen
            .iter()
            .copied()
            .filter(|c| c.kind.as_deref() == Some(k.id.as_str()))
            .collect();
        counts.push((k.name.clone(), of_kind.len()));
        out.push(Block::Heading(4, k.name.clone()));
        list_or_empty(&mut out, of_kind.iter().map(|c| proposal(c)).collect());
    }
    let other: Vec<String> = bouwstenen
        .iter()
        .filter(|c| {
            c.kind
                .as_deref()
                .is_none_or(|k| !t.types.iter().any(|x| x.id == k))
        })
        .map(|c| proposal(c))
        .collect();
    if !other.is_empty() {
        out.push(Block::Heading(4, "Nog niet ingedeeld".into()));
        out.push(Block::List(other));
    }
    out.push(Block::Para(balance(&counts)));

    // 4 Aanbevelingen
    out.push(Block::PageBreak);
    out.push(Block::Heading(2, "4 Aanbevelingen".into()));
    list_or_empty(&mut out, texts(b.in_section(AANBEVELINGEN)));
    let monitoring = texts(b.in_section(MONITORING));
    if !monitoring.is_empty() {
        out.push(Block::Heading(
            3,
            "Ondersteunende maatregelen: monitoring".into(),
        ));
        out.push(Block::List(monitoring));
    }

    // 5 Bijlagen
    out.push(Block::PageBreak);
    out.push(Block::Heading(2, "5 Bijlagen".into()));
    out.push(Block::Heading(3, "A. Het ingevulde DI-canvas".into()));
    for s in &t.sections {
        out.push(Block::Heading(4, s.title.clone()));
        list_or_empty(
            &mut out,
            b.in_section(&s.id)
                .filter(|c| !c.text.is_empty())
                .map(|c| tagged(t, b, c))
                .collect(),
        );
    }
    out.push(Block::Heading(3, "B. Monitoringplan".into()));
    let plan = monitoring_rows(b);
    if plan.is_empty() {
        out.push(Block::Para("—".into()));
    } else {
        out.push(Block::Table(
            MONITORING_HEAD.iter().map(|h| h.to_string()).collect(),
            plan,
        ));
    }
    out.push(Block::Heading(3, "C. Stemresultaten".into()));
    if b.rounds.is_empty() {
        out.push(Block::Para("Geen onthulde stemrondes.".into()));
    }
    for (title, totals) in &b.rounds {
        out.push(Block::Heading(4, title.clone()));
        out.push(Block::Table(
            vec!["Kaart".into(), "Stemmen".into()],
            totals
                .iter()
                .map(|(id, n)| {
                    vec![
                        b.card_text(id).unwrap_or("(niet zichtbaar)").to_owned(),
                        n.to_string(),
                    ]
                })
                .collect(),
        ));
    }
    out.push(Block::Heading(3, "D. Verslag van de sessies".into()));
    let step = t
        .steps
        .iter()
        .find(|s| s.id == b.step)
        .map(|s| format!("Stap {}: {}", s.id, s.title))
        .unwrap_or_else(|| b.step.clone());
    out.push(Block::List(vec![
        format!("Huidige stap: {step}"),
        format!(
            "{} kaarten op het canvas, {} onderwerpen in de gap-analyse, {} onthulde stemrondes",
            b.cards.len(),
            b.rows.len(),
            b.rounds.len()
        ),
    ]));
    out
}

fn proposal(c: &Card) -> String {
    match c.votes {
        Some(v) if v > 0.0 => format!("{} ({} stemmen)", c.text, v),
        _ => c.text.clone(),
    }
}

/// A canvas card with its tags in words (pijlers, thema, type), never its author.
fn tagged(t: &Template, b: &BoardView, c: &Card) -> String {
    let mut tags: Vec<String> = c
        .pijlers
        .iter()
        .map(|p| name_of(&t.pijlers, p).to_owned())
        .collect();
    if let Some(th) = &c.thema {
        tags.push(b.themes.get(th).cloned().unwrap_or_else(|| th.clone()));
    }
    if let Some(k) = &c.kind {
        tags.push(name_of(&t.types, k).to_owned());
    }
    if tags.is_empty() {
        c.text.clone()
    } else {
        format!("{} ({})", c.text, tags.join(", "))
    }
}

/// The balance between the kinds of proposal, in words.
pub fn balance(counts: &[(String, usize)]) -> String {
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return "Balans: nog geen voorstellen ingedeeld.".into();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{k} {n} ({}%)", n * 100 / total))
        .collect();
    let missing: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(k, _)| k.as_str())
        .collect();
    let mut s = format!("Balans: {}.", parts.join(", "));
    if !missing.is_empty() {
        let _ = write!(
            s,
            " Nog geen voorstel dat {} is.",
            missing.join(" of ").to_lowercase()
        );
    }
    s
}

/// Markdown: one paragraph per line, tables with escaped pipes.
pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "{} {}\n", "#".repeat(*level as usize), one_line(text));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "{}\n", md_text(text));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {}", md_text(item).replace('\n', "\n  "));
                }
                out.push('\n');
            }
            Block::Table(head, rows) => {
                let cell = |s: &String| one_line(s).replace('|', "\\|");
                let _ = writeln!(
                    out,
                    "| {} |",
                    head.iter().map(cell).collect::<Vec<_>>().join(" | ")
                );
                let _ = writeln!(out, "|{}", " --- |".repeat(head.len()));
                for r in rows {
                    let _ = writeln!(
                        out,
                        "| {} |",
                        r.iter().map(cell).collect::<Vec<_>>().join(" | ")
                    );
                }
                out.push('\n');
            }
            Block::PageBreak => {}
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text as Markdown shows it literally: characters that would start markup are escaped.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(
            ch,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|'
        ) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The print stylesheet: A4, margins, each of sections 2–5 on a new page, tables that do not
/// cut a row across pages, long text that wraps, and nothing interactive.
pub const PRINT_CSS: &str = "@page { size: A4; margin: 20mm 18mm; }
body { font-family: Georgia, 'Times New Roman', serif; font-size: 11pt; line-height: 1.45; color: #111; max-width: 48em; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 20pt; } h2 { font-size: 15pt; border-bottom: 1px solid #999; } h3 { font-size: 12.5pt; } h4 { font-size: 11pt; }
h1, h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
p, li { overflow-wrap: anywhere; white-space: pre-wrap; }
table { border-collapse: collapse; width: 100%; font-size: 9.5pt; table-layout: fixed; }
th, td { border: 1px solid #999; padding: 4px 6px; vertical-align: top; text-align: left; overflow-wrap: anywhere; white-space: pre-wrap; }
tr { break-inside: avoid; page-break-inside: avoid; }
thead { display: table-header-group; }
.page-break { break-before: page; page-break-before: always; }
@media print { body { margin: 0; max-width: none; padding: 0; } button, nav, input, select, textarea, .no-print { display: none !important; } }";

/// A whole HTML page: the blocks, with the print stylesheet; no script, no controls.
pub fn html(title: &str, blocks: &[Block]) -> String {
    let mut out = format!(
        "<!doctype html>\n<html lang=\"nl\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{PRINT_CSS}\n</style>\n</head>\n<body>\n",
        escape(title)
    );
    let mut open_section = false;
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", escape(text));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "<p>{}</p>", escape(text));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", escape(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(head, rows) => {
                out.push_str("<table>\n<thead><tr>");
                for h in head {
                    let _ = write!(out, "<th>{}</th>", escape(h));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for c in r {
                        let _ = write!(out, "<td>{}</td>", escape(c));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::PageBreak => {
                if open_section {
                    out.push_str("</section>\n");
                }
                out.push_str("<section class=\"page-break\">\n");
                open_section = true;
            }
        }
    }
    if open_section {
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// A CSV table, UTF-8 with a byte-order mark (so a Dutch spreadsheet reads the accents) and
/// `;` as the separator (what a Dutch spreadsheet expects); every cell quoted.
pub fn csv(head: &[&str], rows: &[Vec<String>]) -> String {
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let quoted: Vec<String> = cells
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect();
        quoted.join(";")
    };
    let mut out = String::from("\u{feff}");
    out.push_str(&line(&mut head.iter().copied()));
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
        out.push_str("\r\n");
    }
    out
}

/// The gap analysis as a table: one row per onderwerp, in the report's order.
pub fn gap_csv(t: &Template, b: &BoardView) -> String {
    let rows: Vec<Vec<String>> = b
        .rows
        .iter()
        .map(|r| {
            vec![
                r.onderwerp.clone(),
                r.huidig.clone(),
                r.gewenst.clone(),
                r.gap.clone(),
                r.oplossingen.clone(),
                r.partijen.join(", "),
                r.pijlers
                    .iter()
                    .map(|p| name_of(&t.pijlers, p))
                    .collect::<Vec<_>>()
                    .join(", "),
                r.thema
                    .as_ref()
                    .map(|th| b.themes.get(th).cloned().unwrap_or_else(|| th.clone()))
                    .unwrap_or_default(),
                r.kind
                    .as_deref()
                    .map(|k| name_of(&t.types, k).to_owned())
                    .unwrap_or_default(),
                if r.priority == f64::MAX {
                    String::new()
                } else {
                    r.priority.to_string()
                },
            ]
        })
        .collect();
    csv(
        &[
            "onderwerp",
            "huidige situatie",
            "gewenste situatie",
            "gap",
            "aanbevolen oplossingen",
            "partijen",
            "pijlers",
            "thema",
            "type",
            "prioriteit",
        ],
        &rows,
    )
}

/// The monitoring plan as rows: one per indicator and meetmoment (with the value measured then,
/// if any); an indicator without moments is one row.
pub fn monitoring_rows(b: &BoardView) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for c in b.in_section(MONITORING).filter(|c| !c.text.is_empty()) {
        let f = |k: &str| text(&Value::Object(c.plan.clone()), k);
        let afspraak = c
            .plan
            .get("afspraak")
            .and_then(Value::as_str)
            .and_then(|id| b.card_text(id))
            .unwrap_or("")
            .to_owned();
        let measured: Vec<(String, String)> = c
            .plan
            .get("metingen")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| (text(m, "moment"), text(m, "waarde")))
            .collect();
        let mut moments = strings(&Value::Object(c.plan.clone()), "meetmomenten");
        for (m, _) in &measured {
            if !moments.contains(m) {
                moments.push(m.clone());
            }
        }
        if moments.is_empty() {
            moments.push(String::new());
        }
        for m in moments {
            let value = measured
                .iter()
                .find(|(x, _)| *x == m)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            rows.push(vec![
                afspraak.clone(),
                c.text.clone(),
                f("soort"),
                f("nulmeting"),
                f("streefwaarde"),
                m,
                f("verzamelt"),
                f("rapporteert"),
                f("status"),
                value,
                f("terugkoppeling"),
            ]);
        }
    }
    rows
}

const MONITORING_HEAD: [&str; 11] = [
    "afspraak",
    "indicator",
    "soort",
    "nulmeting",
    "streefwaarde",
    "meetmoment",
    "verzamelt",
    "rapporteert",
    "status",
    "gemeten waarde",
    "terugkoppeling",
];

/// The monitoring plan as CSV: one row per indicator and meetmoment.
pub fn monitoring_csv(_t: &Template, b: &BoardView) -> String {
    csv(&MONITORING_HEAD, &monitoring_rows(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Template {
        serde_json::from_str(include_str!("../../templates/cao-di-organisatie.json"))
            .expect("template")
    }

    fn export() -> Value {
        json!({
            "board": {"title": "Zorg & Welzijn 2027"},
            "session": {"step": "5"},
            "documents": {
                "canvas": {
                    "meta": {"level": "organisatie"},
                    "themes": {"zwaar-werk": {"name": "Zwaar werk"}},
                    "cards": {
                        "d1": {"section": "doel", "text": "Gezond werken tot de AOW", "author": "Facilitator", "owner": "ab"},
                        "k1": {"section": "themas", "text": "Nachtdiensten", "pijlers": ["gezondheid"], "thema": "zwaar-werk", "author": "Medewerker 3"},
                        "e1": {"section": "themas", "text": "Ik wil <b>leren</b>", "stap": "3B", "author": "Medewerker 4"},
                        "b1": {"section": "bouwstenen", "text": "Ontwikkelbudget", "type": "versterkend", "votes": 7},
                        "b2": {"section": "bouwstenen", "text": "Minder nachtdiensten 55+", "type": "curatief"},
                        "a1": {"section": "aanbevelingen", "text": "Start met een pilot"},
                        "m1": {"section": "monitoring", "text": "Gebruik ontwikkelbudget", "afspraak": "b1", "soort": "kwantitatief",
                               "nulmeting": "12%", "streefwaarde": "40%", "meetmomenten": ["halverwege", "einde cao"],
                               "verzamelt": "HR", "rapporteert": "werkgroep", "terugkoppeling": "cao-tafel", "status": "op-koers",
                               "metingen": [{"moment": "halverwege", "waarde": "25%"}]}
                    }
                },
                "gap": {"rows": {
                    "r2": {"onderwerp": "Scholing", "huidig": "weinig", "priority": 2, "partijen": ["HR"]},
                    "r1": {"onderwerp": "Werkdruk | roosters", "huidig": "hoog", "gewenst": "lager", "gap": "groot", "oplossingen": "gezond roosteren", "priority": 1, "partijen": ["OR", "HR"]}
                }},
                "control": {"rounds": {
                    "x": {"title": "Prioriteren", "status": "revealed", "totals": {"b1": 7, "b2": 3}},
                    "y": {"title": "Geheim", "status": "open", "totals": null}
                }}
            }
        })
    }

    #[test]
    fn the_five_sections_in_order_with_the_board_content() {
        let t = template();
        let blocks = advice(&t, &BoardView::from_export(&export()));
        let h2: Vec<&str> = blocks
            .iter()
            .filter_map(|b| match b {
                Block::Heading(2, s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            h2,
            [
                "1 Inleiding",
                "2 Samenvatting van de analyse",
                "3 Prioriteiten en bouwstenen",
                "4 Aanbevelingen",
                "5 Bijlagen"
            ]
        );
        let md = markdown(&blocks);
        assert!(md.starts_with("# Adviesrapport: Zorg & Welzijn 2027\n"));
        for want in [
            "- Gezond werken tot de AOW",
            "- Start met een pilot",
            "Stap 3B: ",
            "| Werkdruk \\| roosters | hoog | lager | groot | gezond roosteren | OR, HR |",
            "- Ontwikkelbudget (7 stemmen)",
            "Balans: Curatief 1 (50%), Preventief 0 (0%), Versterkend 1 (50%). Nog geen voorstel dat preventief is.",
            "Zwaar werk (1 kaart)",
            "#### Prioriteren",
            "| Ontwikkelbudget | 7 |",
        ] {
            assert!(md.contains(want), "missing {want:?} in\n{md}");
        }
        // Rows by priority: Werkdruk (1) before Scholing (2).
        assert!(md.find("Werkdruk").unwrap() < md.find("| Scholing").unwrap());
        // A round that is not revealed shows nothing; authors and owner tags never show.
        assert!(!md.contains("Geheim"));
        assert!(!md.contains("Medewerker 3") && !md.contains("Medewerker 4"));
        assert!(!md.contains("Facilitator"));
        // An employee's round-table contribution is under 2, escaped.
        assert!(md.contains("Ik wil \\<b\\>leren\\</b\\>"));
    }

    #[test]
    fn html_is_escaped_has_page_breaks_and_no_controls() {
        let t = template();
        let blocks = advice(&t, &BoardView::from_export(&export()));
        let page = html("Zorg & Welzijn", &blocks);
        assert!(page.contains("<title>Zorg &amp; Welzijn</title>"));
        assert!(page.contains("Ik wil &lt;b&gt;leren&lt;/b&gt;"));
        assert!(!page.contains("<b>leren"));
        assert_eq!(page.matches("class=\"page-break\"").count(), 4);
        assert_eq!(
            page.matches("<section").count(),
            page.matches("</section>").count()
        );
        assert!(page.contains("size: A4"));
        for control in ["<button", "<input", "<script", "<form", "<select"] {
            assert!(!page.contains(control), "{control} in the report");
        }
    }

    #[test]
    fn an_empty_export_still_builds_every_section() {
        let t = template();
        let md = markdown(&advice(&t, &BoardView::from_export(&json!({}))));
        assert!(md.contains("## 5 Bijlagen"));
        assert!(md.contains("Balans: nog geen voorstellen ingedeeld."));
        assert!(md.contains("Geen onthulde stemrondes."));
    }

    #[test]
    fn csv_has_a_bom_quotes_and_one_row_per_onderwerp() {
        let t = template();
        let out = gap_csv(&t, &BoardView::from_export(&export()));
        assert!(out.starts_with("\u{feff}\"onderwerp\";"));
        let lines: Vec<&str> = out.trim_end().split("\r\n").collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[1].starts_with("\"Werkdruk | roosters\";\"hoog\";"));
        assert!(lines[2].starts_with("\"Scholing\""));
        let quoted = csv(&["a"], &[vec!["zei \"ja\"; nee".into()]]);
        assert!(quoted.ends_with("\"zei \"\"ja\"\"; nee\"\r\n"));
    }

    #[test]
    fn the_monitoring_plan_one_row_per_indicator_and_moment() {
        let t = template();
        let view = BoardView::from_export(&export());
        let out = monitoring_csv(&t, &view);
        let lines: Vec<&str> = out.trim_end().split("\r\n").collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(
            lines[1],
            "\"Ontwikkelbudget\";\"Gebruik ontwikkelbudget\";\"kwantitatief\";\"12%\";\"40%\";\"halverwege\";\"HR\";\"werkgroep\";\"op-koers\";\"25%\";\"cao-tafel\""
        );
        assert!(lines[0].ends_with("\"gemeten waarde\";\"terugkoppeling\""));
        assert!(
            lines[2].contains("\"einde cao\"")
                && lines[2].ends_with("\"op-koers\";\"\";\"cao-tafel\"")
        );
        let md = markdown(&advice(&t, &view));
        assert!(md.contains("### B. Monitoringplan"));
        assert!(md.contains(
            "| Ontwikkelbudget | Gebruik ontwikkelbudget | kwantitatief | 12% | 40% | halverwege |"
        ));
    }

    #[test]
    fn balance_names_missing_kinds() {
        assert_eq!(
            balance(&[("Curatief".into(), 3), ("Preventief".into(), 1)]),
            "Balans: Curatief 3 (75%), Preventief 1 (25%)."
        );
    }
}
