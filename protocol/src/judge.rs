//! The update judge: decides on the bytes of one incoming v1 update, before anything is
//! applied, whether its writer may make it. Pure: the bytes, the document's ownership index
//! (`index`), a read-only view of the live document (`DocView`), the board's template and the
//! facilitator's session in; a decision out.
//!
//! Every struct and every range of the delete set is accounted for (docs/schema.md, "What the
//! server accepts"): what the server already holds is dropped first; every new struct's zone
//! comes from its parent info or its origin (in the index or in the same update); its content
//! kind must be one the schema names there, and its writer must be allowed to put it there.
//! Anything the schema does not name is refused, whole.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use yrs::Any;

use crate::ids::DocName;
use crate::index::{Index, Node, NodeRef, Owner, ResolveError, Resolved, Schema, Shape, Zone};
use crate::policy::{SessionPolicy, PIJLERS, SERVER_FIELDS, STEPS, TYPES};
use crate::rights::Seat;
use crate::roles::Role;
use crate::structs::{decode, Content, DecodeError, Id, TypeKind};
use crate::template::{Rules, Template};

/// Why an update was refused: a stable code for programs, and a reason for people and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ReadOnly,
    BoardLocked,
    DocLocked,
    SectionLocked,
    PrivateWriting,
    RoleNotAllowed,
    NotYourItem,
    ServerField,
    InvalidValue,
    UnknownField,
    UnknownRoot,
    SchemaViolation,
    TooDeep,
    UpdateTooLarge,
    DocumentTooLarge,
    ForeignClientId,
    MissingDependencies,
    ControlManaged,
}

impl Code {
    pub const ALL: [Code; 18] = [
        Code::ReadOnly,
        Code::BoardLocked,
        Code::DocLocked,
        Code::SectionLocked,
        Code::PrivateWriting,
        Code::RoleNotAllowed,
        Code::NotYourItem,
        Code::ServerField,
        Code::InvalidValue,
        Code::UnknownField,
        Code::UnknownRoot,
        Code::SchemaViolation,
        Code::TooDeep,
        Code::UpdateTooLarge,
        Code::DocumentTooLarge,
        Code::ForeignClientId,
        Code::MissingDependencies,
        Code::ControlManaged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::ReadOnly => "read-only",
            Code::BoardLocked => "board-locked",
            Code::DocLocked => "doc-locked",
            Code::SectionLocked => "section-locked",
            Code::PrivateWriting => "private-writing",
            Code::RoleNotAllowed => "role-not-allowed",
            Code::NotYourItem => "not-your-item",
            Code::ServerField => "server-field",
            Code::InvalidValue => "invalid-value",
            Code::UnknownField => "unknown-field",
            Code::UnknownRoot => "unknown-root",
            Code::SchemaViolation => "schema-violation",
            Code::TooDeep => "too-deep",
            Code::UpdateTooLarge => "update-too-large",
            Code::DocumentTooLarge => "document-too-large",
            Code::ForeignClientId => "foreign-client-id",
            Code::MissingDependencies => "missing-dependencies",
            Code::ControlManaged => "control-managed",
        }
    }
}

/// A refusal: sent as `permission-denied` with the reason `<code>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub reason: String,
}

impl Refusal {
    pub fn new(code: Code, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.reason)
    }
}

/// Why an update was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Against the rules: the sender is told and stays connected.
    Refused(Refusal),
    /// Not a valid update: the sender is disconnected (1007).
    Malformed(String),
}

fn refuse<T>(code: Code, reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::Refused(Refusal::new(code, reason)))
}

/// What the judge needs to read from the live document.
pub trait DocView {
    /// The live item under `key` of `root`, if it is a map.
    fn item(&self, root: &str, key: &str) -> Option<LiveItem>;
    /// The keys of the `themes` map.
    fn themes(&self) -> BTreeSet<String>;
}

/// An item as it is in the live document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveItem {
    /// The id of the item whose content is the item's map.
    pub id: Option<Id>,
    pub section: Option<String>,
    /// The `owner` tag the server wrote on it.
    pub owner_tag: Option<String>,
}

/// Who is writing.
pub struct Writer<'a> {
    pub role: Role,
    /// The participant's tag in the index.
    pub owner: Owner,
    /// Whether the connection may write this document at all (the baseline matrix).
    pub can_write: bool,
    /// `owns_tag(item, tag)`: whether an `owner` tag was made for this writer and item (for
    /// items the index has no creator for: written before the index, or by the server).
    pub owns_tag: &'a dyn Fn(&str, &str) -> bool,
}

/// Size limits (config options; see docs/schema.md).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_update_bytes: usize,
    pub max_doc_bytes: u64,
    /// Most levels of nested shared types under a free-form root.
    pub max_depth: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_update_bytes: 8 << 20,
            max_doc_bytes: 256 << 20,
            max_depth: 16,
        }
    }
}

/// An accepted update.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Its new structs and deletions with their places; empty when it changes nothing.
    pub resolved: Resolved,
    /// Items the writer created (the server stamps `owner`, `author`, `createdAt` on them).
    pub created: Vec<String>,
    /// Live items the writer removed (the server keeps a copy for its author to restore).
    pub removed: Vec<String>,
}

const CANVAS_TEXT: &[&str] = &["text"];
/// The monitoring plan's fields on a canvas card (an indicator, in the `monitoring` section).
pub const MONITORING_FIELDS: &[&str] = &[
    "afspraak",
    "soort",
    "nulmeting",
    "streefwaarde",
    "meetmomenten",
    "verzamelt",
    "rapporteert",
    "terugkoppeling",
    "status",
    "metingen",
];
/// An indicator's status during the cao period.
pub const STATUSES: &[&str] = &[
    "gepland", "loopt", "op-koers", "achter", "behaald", "gestopt",
];
const GAP_TEXT: &[&str] = &["onderwerp", "huidig", "gewenst", "gap", "oplossingen"];

/// Which roots each kind of document has.
pub fn schema(doc: DocName, max_depth: u16) -> Schema {
    match doc {
        DocName::Canvas => Schema {
            items_root: Some("cards"),
            free: false,
            not_free: &[],
            map_roots: &["themes", "meta"],
            max_depth,
        },
        DocName::Gap => Schema {
            items_root: Some("rows"),
            free: false,
            not_free: &[],
            map_roots: &["meta"],
            max_depth,
        },
        DocName::Party(_) => Schema {
            items_root: None,
            free: true,
            not_free: &["meta"],
            map_roots: &["meta"],
            max_depth,
        },
        DocName::Control => Schema {
            items_root: None,
            free: true,
            not_free: &["session", "rounds"],
            map_roots: &["session", "rounds"],
            max_depth,
        },
    }
}

/// Resolves `bytes` against the index for a writer the server trusts (its own edits).
pub fn resolve_trusted(
    doc: DocName,
    bytes: &[u8],
    index: &Index,
    limits: &Limits,
) -> Result<Resolved, String> {
    let decoded = decode(bytes).map_err(|e| e.to_string())?;
    index
        .resolve(&decoded, &schema(doc, limits.max_depth), None)
        .map_err(|e| e.to_string())
}

/// Everything the judge reads besides the update.
pub struct Context<'a> {
    pub doc: DocName,
    pub index: &'a Index,
    pub view: &'a dyn DocView,
    pub template: &'a Template,
    pub session: &'a SessionPolicy,
    pub limits: Limits,
    /// The document's current size in bytes (snapshot plus log), for `max_doc_bytes`.
    pub doc_bytes: u64,
}

/// Judges one update from `writer`.
pub fn judge(ctx: &Context<'_>, writer: &Writer<'_>, bytes: &[u8]) -> Result<Accepted, Rejection> {
    if bytes.len() > ctx.limits.max_update_bytes {
        return refuse(
            Code::UpdateTooLarge,
            format!(
                "one update may hold at most {} bytes",
                ctx.limits.max_update_bytes
            ),
        );
    }
    let decoded = match decode(bytes) {
        Ok(d) => d,
        Err(DecodeError::Malformed(e)) => return Err(Rejection::Malformed(e)),
        Err(DecodeError::TooDeep) => {
            return refuse(Code::TooDeep, DecodeError::TooDeep.to_string())
        }
        Err(DecodeError::Unsupported(what)) => return refuse(Code::SchemaViolation, what),
    };
    let schema = schema(ctx.doc, ctx.limits.max_depth);
    let resolved = match ctx.index.resolve(&decoded, &schema, Some(&writer.owner)) {
        Ok(r) => r,
        Err(ResolveError::Missing) => {
            return refuse(
                Code::MissingDependencies,
                "the update builds on changes the server does not have; resync",
            )
        }
        Err(e) => return refuse(Code::SchemaViolation, e.to_string()),
    };
    if resolved.is_empty() {
        // Nothing new (a reconnecting client's sync step 2): no rule applies, not even a lock.
        return Ok(Accepted::default());
    }
    if !writer.can_write {
        return refuse(Code::ReadOnly, "this role may not change this document");
    }
    for (client, owner) in &resolved.writers {
        if owner.as_ref().is_some_and(|o| *o != writer.owner) {
            return refuse(
                Code::ForeignClientId,
                format!("client id {client} belongs to another participant"),
            );
        }
    }
    if ctx.doc_bytes + bytes.len() as u64 > ctx.limits.max_doc_bytes {
        return refuse(
            Code::DocumentTooLarge,
            format!(
                "a document may hold at most {} bytes",
                ctx.limits.max_doc_bytes
            ),
        );
    }
    let mut j = Judging {
        ctx,
        writer,
        resolved: &resolved,
        schema,
        items: Vec::new(),
    };
    j.structure()?;
    j.rights()?;
    let created = j
        .items
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Create { .. }))
        .map(|o| o.key.to_string())
        .collect();
    let removed = j.removed();
    Ok(Accepted {
        resolved,
        created,
        removed,
    })
}

/// One change to an item of the items root.
#[derive(Debug)]
struct ItemOp {
    key: Arc<str>,
    kind: OpKind,
}

#[derive(Debug)]
enum OpKind {
    /// A new map under the key; `node` is the item it creates.
    Create { node: NodeRef },
    /// The entry under the key removed (a deletion, or deleted content written over it).
    Remove { id: Option<Id> },
    /// A field of an item written or removed; `value` is None for a removal.
    Field {
        item: Option<Id>,
        new_item: bool,
        field: Arc<str>,
        value: Option<FieldValue>,
    },
    /// Characters inserted or deleted in a text field.
    Text { item: Option<Id>, new_item: bool },
}

#[derive(Debug, Clone)]
enum FieldValue {
    Any(Any),
    Text,
}

struct Judging<'a, 'b> {
    ctx: &'a Context<'b>,
    writer: &'a Writer<'b>,
    resolved: &'a Resolved,
    /// The document kind's roots (computed once per update).
    schema: Schema,
    items: Vec<ItemOp>,
}

impl Judging<'_, '_> {
    fn node(&self, n: NodeRef) -> &Node {
        self.resolved.node(self.ctx.index, n)
    }

    fn facilitator(&self) -> bool {
        self.writer.role == Role::Facilitator
    }

    fn text_fields(&self) -> &'static [&'static str] {
        match self.ctx.doc {
            DocName::Gap => GAP_TEXT,
            _ => CANVAS_TEXT,
        }
    }

    /// The item a node under the items root belongs to: (its map's id, created here).
    fn item_of(&self, n: NodeRef) -> (Option<Id>, bool) {
        let item = self.node(n).item;
        let new = item.is_some()
            && self
                .resolved
                .new_nodes
                .iter()
                .any(|m| m.id == item && matches!(m.zone, Zone::Item { .. }));
        (item, new)
    }

    /// Checks what every new struct and deletion is, zone by zone, and collects item changes.
    fn structure(&mut self) -> Result<(), Rejection> {
        let facilitator = self.facilitator();
        for p in &self.resolved.placed {
            let Some(n) = p.node else {
                // No place: a GC range of the writer's own (their deleted content), or content
                // whose parent no longer exists (yrs drops it as well).
                continue;
            };
            let node = self.node(n).clone();
            let shape = self.resolved.shape(self.ctx.index, n);
            let keyed = p.key.is_some();
            if shape == Shape::Map && !keyed {
                return refuse(Code::SchemaViolation, "keyless content inside a map");
            }
            if shape == Shape::Seq && keyed {
                return refuse(Code::SchemaViolation, "keyed content inside a list or text");
            }
            if let Some(c) = p.creates {
                match self.node(c).zone {
                    Zone::TooDeep => {
                        return refuse(Code::TooDeep, "shared types nested deeper than the schema")
                    }
                    Zone::Outside => {
                        return refuse(
                            Code::SchemaViolation,
                            "a shared type where the schema has none",
                        )
                    }
                    _ => {}
                }
            }
            let content = &p.s.content;
            match &node.zone {
                Zone::Root(r) => self.root_write(r, p.key.as_ref(), content, p.creates)?,
                Zone::Item { .. } => {
                    let field = p.key.clone().unwrap_or_else(|| "".into());
                    let value = match content {
                        Content::Any(v) if v.len() == 1 => Some(FieldValue::Any(v[0].clone())),
                        Content::Type(TypeKind::Text) => Some(FieldValue::Text),
                        Content::Deleted => None,
                        _ => {
                            return refuse(
                                Code::InvalidValue,
                                format!("{field}: not a value a field may hold"),
                            )
                        }
                    };
                    let (item, new_item) = self.item_of(n);
                    self.items.push(ItemOp {
                        key: item_key(&node.zone),
                        kind: OpKind::Field {
                            item,
                            new_item,
                            field,
                            value,
                        },
                    });
                }
                Zone::Field { .. } => {
                    match content {
                        Content::String | Content::Deleted => {}
                        Content::Embed | Content::Format(_) => {
                            return refuse(
                                Code::SchemaViolation,
                                "embeds and formatting are not allowed in this text",
                            )
                        }
                        _ => return refuse(Code::SchemaViolation, "a text holds only characters"),
                    }
                    let (item, new_item) = self.item_of(n);
                    self.items.push(ItemOp {
                        key: item_key(&node.zone),
                        kind: OpKind::Text { item, new_item },
                    });
                }
                Zone::Free { .. } => free_content(shape, content)?,
                Zone::TooDeep => return refuse(Code::TooDeep, "nested deeper than the schema"),
                Zone::Outside => {
                    return refuse(Code::SchemaViolation, "content where the schema has none")
                }
            }
        }
        for d in &self.resolved.deletions {
            let Some(n) = d.node else { continue };
            let node = self.node(n).clone();
            match &node.zone {
                Zone::Root(r) => {
                    if self.is_items_root(r) {
                        if let (Some(key), Some(t)) = (&d.key, d.type_node) {
                            let id = self.node(t).id;
                            self.items.push(ItemOp {
                                key: key.clone(),
                                kind: OpKind::Remove { id },
                            });
                        }
                    } else {
                        self.root_rights(r)?;
                    }
                }
                Zone::Item { .. } => {
                    let (item, new_item) = self.item_of(n);
                    self.items.push(ItemOp {
                        key: item_key(&node.zone),
                        kind: OpKind::Field {
                            item,
                            new_item,
                            field: d.key.clone().unwrap_or_else(|| "".into()),
                            value: None,
                        },
                    });
                }
                Zone::Field { .. } => {
                    let (item, new_item) = self.item_of(n);
                    self.items.push(ItemOp {
                        key: item_key(&node.zone),
                        kind: OpKind::Text { item, new_item },
                    });
                }
                Zone::Free { root, .. } => self.root_rights(root)?,
                Zone::TooDeep | Zone::Outside => {}
            }
        }
        let _ = facilitator;
        Ok(())
    }

    fn is_items_root(&self, r: &str) -> bool {
        self.schema.items_root == Some(r)
    }

    /// Who may write directly under a root other than the items root.
    fn root_rights(&self, r: &str) -> Result<(), Rejection> {
        let s = self.schema;
        if self.ctx.doc == DocName::Control && s.not_free.contains(&r) {
            return refuse(
                Code::ControlManaged,
                format!("{r} in control changes only through the facilitator's commands"),
            );
        }
        if s.map_roots.contains(&r) {
            return if self.facilitator() {
                Ok(())
            } else {
                refuse(
                    Code::RoleNotAllowed,
                    format!("only the facilitator changes {r}"),
                )
            };
        }
        if s.free && !s.not_free.contains(&r) {
            return Ok(());
        }
        refuse(
            Code::UnknownRoot,
            format!(
                "{r} is not a root of the {} document",
                self.ctx.doc.as_str()
            ),
        )
    }

    fn root_write(
        &mut self,
        r: &Arc<str>,
        key: Option<&Arc<str>>,
        content: &Content,
        creates: Option<NodeRef>,
    ) -> Result<(), Rejection> {
        if self.is_items_root(r) {
            let key = key.cloned().unwrap_or_else(|| "".into());
            match (content, creates) {
                (Content::Type(TypeKind::Map), Some(node)) => self.items.push(ItemOp {
                    key,
                    kind: OpKind::Create { node },
                }),
                (Content::Deleted, _) => self.items.push(ItemOp {
                    key,
                    kind: OpKind::Remove { id: None },
                }),
                _ => return refuse(Code::SchemaViolation, "an item must be a Y.Map"),
            }
            return Ok(());
        }
        self.root_rights(r)?;
        let s = self.schema;
        if s.map_roots.contains(&r.as_ref()) {
            // Plain entries only (meta, themes).
            if !matches!(content, Content::Any(_) | Content::Deleted) {
                return refuse(
                    Code::SchemaViolation,
                    format!("{r} holds plain values only"),
                );
            }
            return Ok(());
        }
        let shape = if key.is_some() {
            Shape::Map
        } else {
            Shape::Seq
        };
        free_content(shape, content)
    }

    /// The rules of the role, the locks and the session, per item.
    fn rights(&self) -> Result<(), Rejection> {
        let facilitator = self.facilitator();
        let changes = !self.resolved.is_empty();
        if !facilitator && changes {
            self.seat().open().map_err(Rejection::Refused)?;
        }
        let Some(root) = self.schema.items_root else {
            return Ok(());
        };
        // Themes as they are after the update: the facilitator may add one and use it at once.
        let mut themes = self.ctx.view.themes();
        for p in &self.resolved.placed {
            if let (Some(n), Some(k)) = (p.node, &p.key) {
                if matches!(&self.node(n).zone, Zone::Root(r) if r.as_ref() == "themes")
                    && matches!(p.s.content, Content::Any(_))
                {
                    themes.insert(k.to_string());
                }
            }
        }
        // Removing an item deletes its fields and text with it: those deletions are part of
        // the removal, judged as such.
        let removed: Vec<Id> = self
            .items
            .iter()
            .filter_map(|o| match &o.kind {
                OpKind::Remove { id: Some(id) } => Some(*id),
                _ => None,
            })
            .collect();
        for op in &self.items {
            if let OpKind::Field { item: Some(i), .. } | OpKind::Text { item: Some(i), .. } =
                &op.kind
            {
                if removed.contains(i) {
                    continue;
                }
            }
            let live = self.ctx.view.item(root, &op.key);
            match &op.kind {
                OpKind::Create { node } => {
                    let fields = self.fields_of(*node);
                    if let Some(old) = &live {
                        // Writing a new map over a live item replaces (removes) it.
                        self.may_remove(&op.key, old)?;
                    }
                    // Every section value the update writes on the new card counts (an
                    // offline client may create a card and move it before it syncs; whichever
                    // write wins, each must be allowed), and there must be one.
                    let sections: Vec<String> = fields
                        .iter()
                        .filter_map(|(f, v)| match (f.as_ref(), v) {
                            ("section", Some(FieldValue::Any(Any::String(s)))) => {
                                Some(s.to_string())
                            }
                            _ => None,
                        })
                        .collect();
                    if self.ctx.doc == DocName::Canvas && sections.is_empty() {
                        return refuse(Code::InvalidValue, "section: a card needs a section");
                    }
                    if sections.is_empty() {
                        let (name, rules) = self.rules(None)?;
                        self.allowed(&rules.add, "add items", &name)?;
                    }
                    for section in &sections {
                        let (name, rules) = self.rules(Some(section))?;
                        self.allowed(&rules.add, "add items", &name)?;
                    }
                    if !facilitator
                        && self.ctx.doc == DocName::Canvas
                        && self.ctx.session.private_writing
                    {
                        return refuse(
                            Code::PrivateWriting,
                            "private writing: add cards to your own drafts until the reveal",
                        );
                    }
                    for (field, value) in &fields {
                        if field.as_ref() == "section" && value.is_none() {
                            // An overwritten section, sent as deleted content.
                            continue;
                        }
                        self.check_field(field, value.as_ref(), &themes)?;
                    }
                }
                OpKind::Remove { id } => {
                    if let Some(old) = &live {
                        if id.is_none() || *id == old.id {
                            self.may_remove(&op.key, old)?;
                        }
                    }
                }
                OpKind::Field {
                    item,
                    new_item,
                    field,
                    value,
                } => {
                    self.check_field(field, value.as_ref(), &themes)?;
                    if *new_item {
                        continue;
                    }
                    let Some(old) = live.as_ref().filter(|l| l.id == *item) else {
                        // An item that is no longer there: the write lands in deleted content.
                        continue;
                    };
                    self.may_edit(&op.key, old)?;
                    if field.as_ref() == "section" {
                        match value {
                            Some(FieldValue::Any(Any::String(to))) => {
                                let (name, rules) = self.rules(Some(to))?;
                                self.allowed(&rules.add, "move items into", &name)?;
                            }
                            _ if self.ctx.doc == DocName::Canvas
                                && !self.section_rewritten(*item) =>
                            {
                                return refuse(
                                    Code::InvalidValue,
                                    "section: a card needs a section",
                                );
                            }
                            _ => {}
                        }
                    }
                }
                OpKind::Text { item, new_item } => {
                    if *new_item {
                        continue;
                    }
                    if let Some(old) = live.as_ref().filter(|l| l.id == *item) {
                        self.may_edit(&op.key, old)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The keys of live items the update removes (each once).
    fn removed(&self) -> Vec<String> {
        let Some(root) = self.schema.items_root else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for op in &self.items {
            if let OpKind::Remove { id } = &op.kind {
                let live = self.ctx.view.item(root, &op.key);
                if live.is_some_and(|l| id.is_none() || *id == l.id)
                    && !out.iter().any(|k| k.as_str() == op.key.as_ref())
                {
                    out.push(op.key.to_string());
                }
            }
        }
        out
    }

    /// Whether the same update writes a new `section` on the item.
    fn section_rewritten(&self, item: Option<Id>) -> bool {
        self.items.iter().any(|o| {
            matches!(&o.kind, OpKind::Field { item: i, field, value: Some(_), .. }
                if *i == item && field.as_ref() == "section")
        })
    }

    /// The fields an item created in this update is created with.
    fn fields_of(&self, node: NodeRef) -> Vec<(Arc<str>, Option<FieldValue>)> {
        let id = self.node(node).id;
        self.items
            .iter()
            .filter_map(|o| match &o.kind {
                OpKind::Field {
                    item, field, value, ..
                } if *item == id => Some((field.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }

    fn seat(&self) -> Seat<'_> {
        Seat {
            doc: self.ctx.doc,
            role: self.writer.role,
            template: self.ctx.template,
            session: self.ctx.session,
        }
    }

    fn rules(&self, section: Option<&str>) -> Result<(String, Rules), Rejection> {
        self.seat().rules(section).map_err(Rejection::Refused)
    }

    fn allowed(&self, roles: &[Role], what: &str, section: &str) -> Result<(), Rejection> {
        self.seat()
            .allowed(roles, what, section)
            .map_err(Rejection::Refused)
    }

    /// Whether the writer created the live item.
    fn owns(&self, key: &str, item: &LiveItem) -> bool {
        let creator = item
            .id
            .and_then(|id| self.ctx.index.type_node(id))
            .and_then(|n| n.creator.clone());
        match creator {
            Some(c) => c == self.writer.owner,
            None => item
                .owner_tag
                .as_deref()
                .is_some_and(|t| (self.writer.owns_tag)(key, t)),
        }
    }

    fn may_remove(&self, key: &str, item: &LiveItem) -> Result<(), Rejection> {
        self.seat()
            .may_remove(item.section.as_deref(), || self.owns(key, item))
            .map_err(Rejection::Refused)
    }

    fn may_edit(&self, key: &str, item: &LiveItem) -> Result<(), Rejection> {
        self.seat()
            .may_edit(item.section.as_deref(), || self.owns(key, item))
            .map_err(Rejection::Refused)
    }

    /// Checks one field written (or removed, `value` None) on an item.
    fn check_field(
        &self,
        field: &str,
        value: Option<&FieldValue>,
        themes: &BTreeSet<String>,
    ) -> Result<(), Rejection> {
        if SERVER_FIELDS.contains(&field) {
            return refuse(Code::ServerField, format!("{field} is set by the server"));
        }
        let doc = self.ctx.doc;
        let text = self.text_fields().contains(&field);
        let known =
            text || matches!(
                field,
                "type" | "stap" | "thema" | "pijlers" | "order" | "priority"
            ) || (doc == DocName::Canvas
                && (matches!(field, "section" | "source") || MONITORING_FIELDS.contains(&field)))
                || (doc == DocName::Gap && field == "partijen");
        if !known {
            return refuse(
                Code::UnknownField,
                format!("{field} is not a field a participant may write here"),
            );
        }
        let Some(value) = value else {
            return Ok(());
        };
        let bad = |what: &str| refuse(Code::InvalidValue, format!("{field}: {what}"));
        let s = |v: &Any| match v {
            Any::String(s) => Some(s.to_string()),
            _ => None,
        };
        match value {
            FieldValue::Text if text => Ok(()),
            _ if text => bad("must be a shared text (Y.Text)"),
            FieldValue::Text => bad("must be a plain value, not a shared text"),
            FieldValue::Any(v) => match field {
                "section" => match s(v) {
                    Some(sec) if self.ctx.template.section(&sec).is_some() => Ok(()),
                    _ => bad("must be one of the template's sections"),
                },
                "type" if s(v).is_some_and(|t| TYPES.contains(&t.as_str())) => Ok(()),
                "type" => bad("must be curatief, preventief or versterkend"),
                "stap" if s(v).is_some_and(|t| STEPS.contains(&t.as_str())) => Ok(()),
                "stap" => bad("must be one of 1, 2, 3A, 3B, 4, 5, 6"),
                "thema" if s(v).is_some_and(|t| themes.is_empty() || themes.contains(&t)) => Ok(()),
                "thema" => bad("must be one of the board's themes"),
                "pijlers" => match v {
                    Any::Array(a)
                        if a.iter().all(
                            |p| matches!(p, Any::String(s) if PIJLERS.contains(&s.as_ref())),
                        ) =>
                    {
                        Ok(())
                    }
                    _ => bad("must be a list of gezondheid, bekwaamheid, motivatie"),
                },
                "partijen" => match v {
                    Any::Array(a)
                        if a.len() <= 50
                            && a.iter()
                                .all(|p| matches!(p, Any::String(s) if s.len() <= 200)) =>
                    {
                        Ok(())
                    }
                    _ => bad("must be a list of party names"),
                },
                "afspraak" if s(v).is_some_and(|t| t.len() <= 64) => Ok(()),
                "afspraak" => bad("must be the id of an agreement's card, at most 64 bytes"),
                "soort"
                    if s(v)
                        .is_some_and(|t| matches!(t.as_str(), "kwantitatief" | "kwalitatief")) =>
                {
                    Ok(())
                }
                "soort" => bad("must be kwantitatief or kwalitatief"),
                "status" if s(v).is_some_and(|t| STATUSES.contains(&t.as_str())) => Ok(()),
                "status" => {
                    bad("must be one of gepland, loopt, op-koers, achter, behaald, gestopt")
                }
                "nulmeting" | "streefwaarde" | "verzamelt" | "rapporteert" | "terugkoppeling"
                    if s(v).is_some_and(|t| t.len() <= 500) =>
                {
                    Ok(())
                }
                "nulmeting" | "streefwaarde" | "verzamelt" | "rapporteert" | "terugkoppeling" => {
                    bad("must be a text of at most 500 bytes")
                }
                "meetmomenten" => match v {
                    Any::Array(a)
                        if a.len() <= 20
                            && a.iter()
                                .all(|m| matches!(m, Any::String(s) if s.len() <= 100)) =>
                    {
                        Ok(())
                    }
                    _ => bad("must be a list of at most 20 moments (texts of at most 100 bytes)"),
                },
                "metingen" => match v {
                    Any::Array(a) if a.len() <= 100 && a.iter().all(measurement) => Ok(()),
                    _ => bad("must be a list of at most 100 {\"moment\", \"waarde\"} texts"),
                },
                "source" if s(v).is_some_and(|t| t.len() <= 64) => Ok(()),
                "source" => bad("must be a staalkaart id of at most 64 bytes"),
                "order" | "priority" if matches!(v, Any::Number(_)) => Ok(()),
                _ => bad("must be a number"),
            },
        }
    }
}

/// One measured value of an indicator: `{"moment": text, "waarde": text}`, nothing else.
fn measurement(m: &Any) -> bool {
    match m {
        Any::Map(o) => {
            o.len() == 2
                && ["moment", "waarde"]
                    .iter()
                    .all(|k| matches!(o.get(*k), Some(Any::String(s)) if s.len() <= 500))
        }
        _ => false,
    }
}

/// What free-form content (party workspaces, the facilitator's own control roots) may hold.
fn free_content(shape: Shape, content: &Content) -> Result<(), Rejection> {
    let ok = match shape {
        Shape::Map | Shape::Unknown => {
            matches!(
                content,
                Content::Any(v) if v.len() == 1
            ) || matches!(content, Content::Type(_) | Content::Deleted)
        }
        Shape::Seq => !matches!(content, Content::Gc | Content::Skip),
    };
    if ok {
        Ok(())
    } else {
        refuse(Code::SchemaViolation, "content the schema does not name")
    }
}

fn item_key(zone: &Zone) -> Arc<str> {
    match zone {
        Zone::Item { key, .. } | Zone::Field { key, .. } => key.clone(),
        _ => "".into(),
    }
}

/// `DocView` over a yrs document.
pub struct YrsView<'a, T: yrs::ReadTxn> {
    pub txn: &'a T,
}

impl<T: yrs::ReadTxn> DocView for YrsView<'_, T> {
    fn item(&self, root: &str, key: &str) -> Option<LiveItem> {
        use yrs::branch::BranchID;
        use yrs::{Map, Out};
        let map = self.txn.get_map(root)?;
        let Out::YMap(item) = map.get(self.txn, key)? else {
            return None;
        };
        let field = |k: &str| match item.get(self.txn, k) {
            Some(Out::Any(Any::String(s))) => Some(s.to_string()),
            _ => None,
        };
        let branch: &yrs::branch::Branch = item.as_ref();
        let id = match branch.id() {
            BranchID::Nested(id) => Some(Id::new(id.client.get(), id.clock)),
            BranchID::Root(_) => None,
        };
        Some(LiveItem {
            id,
            section: field("section"),
            owner_tag: field("owner"),
        })
    }

    fn themes(&self) -> BTreeSet<String> {
        use yrs::Map;
        self.txn
            .get_map("themes")
            .map(|m| m.keys(self.txn).map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DocName;
    use yrs::encoding::write::Write;
    use yrs::updates::encoder::{Encoder, EncoderV1};
    use yrs::{Array, Doc, Map, MapPrelim, ReadTxn, StateVector, Text, TextPrelim, Transact};

    fn template() -> Template {
        Template::from_json(include_str!(
            "../../server/templates/cao-di-organisatie.json"
        ))
        .unwrap()
    }

    /// The server's side: the live document and its index, judged and applied like doc.rs.
    struct Server {
        doc: Doc,
        index: Index,
        name: DocName,
        session: SessionPolicy,
        template: Template,
        limits: Limits,
    }

    const EMPLOYEE: u64 = 101;
    const EMPLOYER: u64 = 202;

    fn who(role: Role) -> (Role, Owner) {
        (role, Owner::Participant(format!("{role}").into()))
    }

    impl Server {
        fn new(name: DocName) -> Server {
            let doc = Doc::with_client_id(1);
            let mut index = Index::new();
            index.claim_for_server(1);
            Server {
                doc,
                index,
                name,
                session: SessionPolicy::default(),
                template: template(),
                limits: Limits::default(),
            }
        }

        fn sv(&self) -> StateVector {
            self.doc.transact().state_vector()
        }

        fn send(&mut self, role: Role, bytes: &[u8]) -> Result<Accepted, Rejection> {
            let (role, owner) = who(role);
            let tags = |_: &str, _: &str| false;
            let writer = Writer {
                role,
                owner: owner.clone(),
                can_write: role != Role::Observer,
                owns_tag: &tags,
            };
            let accepted = {
                let txn = self.doc.transact();
                let view = YrsView { txn: &txn };
                let ctx = Context {
                    doc: self.name,
                    index: &self.index,
                    view: &view,
                    template: &self.template,
                    session: &self.session,
                    limits: self.limits,
                    doc_bytes: 0,
                };
                judge(&ctx, &writer, bytes)?
            };
            let before = self.state();
            if !accepted.resolved.is_empty() {
                // The judge reads every struct first, so what it accepts yrs can decode.
                let u = crate::wire::decode_update(bytes).expect("accepted bytes decode");
                let mut txn = self.doc.transact_mut();
                txn.apply_update(u).expect("accepted bytes apply");
                let ds = txn.delete_set().clone();
                drop(txn);
                self.index
                    .apply(accepted.resolved.clone(), Some(&owner), &ds);
            } else {
                assert_eq!(before, self.state(), "an empty verdict changes nothing");
            }
            Ok(accepted)
        }

        fn state(&self) -> Vec<u8> {
            self.doc
                .transact()
                .encode_state_as_update_v1(&StateVector::default())
        }

        fn code(&mut self, role: Role, bytes: &[u8]) -> Code {
            let before = self.state();
            match self.send(role, bytes) {
                Err(Rejection::Refused(r)) => {
                    assert_eq!(before, self.state(), "a refusal changes nothing");
                    r.code
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    }

    /// A participant's replica, synced from the server.
    struct Client {
        doc: Doc,
    }

    impl Client {
        fn new(id: u64, server: &Server) -> Client {
            let doc = Doc::with_client_id(id);
            let c = Client { doc };
            c.pull(server);
            c
        }

        fn pull(&self, server: &Server) {
            let diff = server
                .doc
                .transact()
                .encode_diff_v1(&self.doc.transact().state_vector());
            let u = crate::wire::decode_update(&diff).unwrap();
            self.doc.transact_mut().apply_update(u).unwrap();
        }

        /// Runs an edit and returns exactly what is new to the server.
        fn edit(&self, server: &Server, f: impl FnOnce(&Doc)) -> Vec<u8> {
            f(&self.doc);
            self.doc.transact().encode_diff_v1(&server.sv())
        }

        fn add_card(&self, server: &Server, key: &str, section: &str) -> Vec<u8> {
            self.edit(server, |d| {
                let cards = d.get_or_insert_map("cards");
                let mut txn = d.transact_mut();
                let card = cards.insert(&mut txn, key, MapPrelim::default());
                card.insert(&mut txn, "section", section);
                card.insert(&mut txn, "text", TextPrelim::new("tekst"));
            })
        }

        fn card_text(&self) -> impl Fn(&Doc, &str) -> yrs::TextRef {
            |d: &Doc, key: &str| {
                let cards = d.get_or_insert_map("cards");
                let txn = d.transact();
                let Some(yrs::Out::YMap(card)) = cards.get(&txn, key) else {
                    panic!("no card {key}")
                };
                let Some(yrs::Out::YText(t)) = card.get(&txn, "text") else {
                    panic!("no text")
                };
                t
            }
        }
    }

    fn canvas_with_card(section: &str) -> (Server, Client) {
        let mut s = Server::new(DocName::Canvas);
        let e = Client::new(EMPLOYEE, &s);
        let u = e.add_card(&s, "k1", section);
        let ok = s.send(Role::Employee, &u).unwrap();
        assert_eq!(ok.created, vec!["k1".to_string()]);
        (s, e)
    }

    /// Writes one hand-made item struct: parent root `root` (or a type id), optional key,
    /// content `Any([value])`.
    fn raw_item(
        client: u64,
        clock: u32,
        parent: Result<&str, (u64, u32)>,
        key: Option<&str>,
        content: &[u8],
    ) -> Vec<u8> {
        let mut e = EncoderV1::new();
        e.write_var(1u32); // one client
        e.write_var(1u32); // one struct
        e.write_var(client);
        e.write_var(clock);
        let mut info = content[0];
        if key.is_some() {
            info |= yrs::block::HAS_PARENT_SUB;
        }
        e.write_info(info);
        match parent {
            Ok(root) => {
                e.write_parent_info(true);
                e.write_string(root);
            }
            Err((c, k)) => {
                e.write_parent_info(false);
                e.write_left_id(&yrs::ID::new(yrs::ClientID::new(c), k));
            }
        }
        if let Some(k) = key {
            e.write_string(k);
        }
        e.write_all(&content[1..]);
        e.write_var(0u32); // empty delete set
        e.to_vec()
    }

    /// Content bytes: the ref number, then the content as written by yrs.
    fn any_content(v: &str) -> Vec<u8> {
        let mut e = EncoderV1::new();
        e.write_len(1);
        e.write_any(&Any::from(v));
        let mut out = vec![yrs::block::BLOCK_ITEM_ANY_REF_NUMBER];
        out.extend(e.to_vec());
        out
    }

    fn gc(client: u64, clock: u32, len: u32) -> Vec<u8> {
        let mut e = EncoderV1::new();
        e.write_var(1u32);
        e.write_var(1u32);
        e.write_var(client);
        e.write_var(clock);
        e.write_info(yrs::block::BLOCK_GC_REF_NUMBER);
        e.write_len(len);
        e.write_var(0u32);
        e.to_vec()
    }

    fn id_of(s: &Server, key: &str) -> (u64, u32) {
        let item = YrsView {
            txn: &s.doc.transact(),
        }
        .item("cards", key)
        .unwrap();
        let id = item.id.unwrap();
        (id.client, id.clock)
    }

    #[test]
    fn sections_add_rules_and_values() {
        let mut s = Server::new(DocName::Canvas);
        let e = Client::new(EMPLOYEE, &s);
        assert_eq!(
            s.code(Role::Employee, &e.add_card(&s, "a", "opdracht")),
            Code::RoleNotAllowed
        );
        let e = Client::new(EMPLOYEE + 1, &s);
        assert_eq!(
            s.code(Role::Employee, &e.add_card(&s, "a", "nergens")),
            Code::InvalidValue
        );
        let e = Client::new(EMPLOYEE + 2, &s);
        assert!(s
            .send(Role::Employee, &e.add_card(&s, "a", "themas"))
            .is_ok());
        let f = Client::new(9, &s);
        assert!(s
            .send(Role::Facilitator, &f.add_card(&s, "b", "opdracht"))
            .is_ok());
        let w = Client::new(EMPLOYER, &s);
        let u = w.edit(&s, |d| {
            let cards = d.get_or_insert_map("cards");
            let mut txn = d.transact_mut();
            let card = cards.insert(&mut txn, "v", MapPrelim::default());
            card.insert(&mut txn, "section", "bouwstenen");
            card.insert(&mut txn, "votes", 3);
        });
        assert_eq!(s.code(Role::Employer, &u), Code::ServerField);
        let w = Client::new(EMPLOYER + 1, &s);
        let u = w.edit(&s, |d| {
            let cards = d.get_or_insert_map("cards");
            let mut txn = d.transact_mut();
            let card = cards.insert(&mut txn, "v", MapPrelim::default());
            card.insert(&mut txn, "section", "bouwstenen");
            card.insert(&mut txn, "type", "magisch");
        });
        assert_eq!(s.code(Role::Employer, &u), Code::InvalidValue);
        let w = Client::new(EMPLOYER + 2, &s);
        let u = w.edit(&s, |d| {
            let cards = d.get_or_insert_map("cards");
            let mut txn = d.transact_mut();
            let card = cards.insert(&mut txn, "v", MapPrelim::default());
            card.insert(&mut txn, "section", "bouwstenen");
            card.insert(&mut txn, "kleur", "rood");
        });
        assert_eq!(s.code(Role::Employer, &u), Code::UnknownField);
    }

    /// The monitoring plan's fields on an indicator card: valid values are taken (by the
    /// `monitoring` section's rules), wrong ones refused; on gap rows they are unknown.
    #[test]
    fn monitoring_fields_on_an_indicator() {
        let mut s = Server::new(DocName::Canvas);
        let indicator =
            |client: u64, s: &Server, set: &dyn Fn(&mut yrs::TransactionMut, &yrs::MapRef)| {
                Client::new(client, s).edit(s, |d| {
                    let cards = d.get_or_insert_map("cards");
                    let mut txn = d.transact_mut();
                    let card = cards.insert(
                        &mut txn,
                        format!("m{client}").as_str(),
                        MapPrelim::default(),
                    );
                    card.insert(&mut txn, "section", "monitoring");
                    set(&mut txn, &card);
                })
            };
        let measured = |moment: &str, waarde: &str| {
            yrs::Any::from(std::collections::HashMap::from([
                ("moment".to_owned(), yrs::Any::from(moment)),
                ("waarde".to_owned(), yrs::Any::from(waarde)),
            ]))
        };
        let good = indicator(EMPLOYER, &s, &|txn, c| {
            c.insert(txn, "text", TextPrelim::new("Gebruik ontwikkelbudget"));
            c.insert(txn, "afspraak", "b1");
            c.insert(txn, "soort", "kwantitatief");
            c.insert(txn, "nulmeting", "12%");
            c.insert(txn, "streefwaarde", "40%");
            c.insert(
                txn,
                "meetmomenten",
                yrs::Any::from(vec![
                    yrs::Any::from("halverwege"),
                    yrs::Any::from("einde cao"),
                ]),
            );
            c.insert(txn, "verzamelt", "HR");
            c.insert(txn, "rapporteert", "werkgroep");
            c.insert(
                txn,
                "terugkoppeling",
                "naar de cao-tafel, basis voor de volgende ronde",
            );
            c.insert(txn, "status", "op-koers");
            c.insert(
                txn,
                "metingen",
                yrs::Any::from(vec![measured("halverwege", "25%")]),
            );
        });
        assert!(
            s.send(Role::Employer, &good).is_ok(),
            "a whole indicator is taken"
        );
        for (n, bad) in [
            ("soort", yrs::Any::from("veel")),
            ("status", yrs::Any::from("klaar")),
            ("nulmeting", yrs::Any::from(3.0)),
            ("terugkoppeling", yrs::Any::from(true)),
            ("terugkoppeling", yrs::Any::from("x".repeat(501))),
            ("meetmomenten", yrs::Any::from("einde")),
            ("metingen", yrs::Any::from(vec![yrs::Any::from("25%")])),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (f, v))| (i as u64, (f, v)))
        {
            let (field, value) = bad;
            let u = indicator(EMPLOYER + 10 + n, &s, &|txn, c| {
                c.insert(txn, field, value.clone());
            });
            assert_eq!(s.code(Role::Employer, &u), Code::InvalidValue, "{field}");
        }
        // An employee may not add to the monitoring section (its rules), whatever the fields.
        let u = indicator(EMPLOYEE, &s, &|txn, c| {
            c.insert(txn, "status", "loopt");
        });
        assert_eq!(s.code(Role::Employee, &u), Code::RoleNotAllowed);
        // On a gap row the fields are unknown.
        let mut g = Server::new(DocName::Gap);
        let u = Client::new(EMPLOYER, &g).edit(&g, |d| {
            let rows = d.get_or_insert_map("rows");
            let mut txn = d.transact_mut();
            let row = rows.insert(&mut txn, "r", MapPrelim::default());
            row.insert(&mut txn, "status", "loopt");
        });
        assert_eq!(g.code(Role::Employer, &u), Code::UnknownField);
    }

    #[test]
    fn only_own_items_in_themas_and_co_editing_in_bouwstenen() {
        let (mut s, e) = canvas_with_card("themas");
        let w = Client::new(EMPLOYER, &s);
        let text = w.card_text();
        let u = w.edit(&s, |d| text(d, "k1").push(&mut d.transact_mut(), " erbij"));
        assert_eq!(s.code(Role::Employer, &u), Code::NotYourItem);
        let text = e.card_text();
        let u = e.edit(&s, |d| {
            text(d, "k1").push(&mut d.transact_mut(), " van mij")
        });
        assert!(s.send(Role::Employee, &u).is_ok());
        // Deleting characters of someone else's card is editing it.
        let w = Client::new(EMPLOYER + 1, &s);
        let text = w.card_text();
        let u = w.edit(&s, |d| {
            text(d, "k1").remove_range(&mut d.transact_mut(), 0, 2)
        });
        assert_eq!(s.code(Role::Employer, &u), Code::NotYourItem);
        // Removing someone else's card.
        let w = Client::new(EMPLOYER + 2, &s);
        let u = w.edit(&s, |d| {
            d.get_or_insert_map("cards")
                .remove(&mut d.transact_mut(), "k1");
        });
        assert_eq!(s.code(Role::Employer, &u), Code::NotYourItem);

        let (mut s, _e) = canvas_with_card("bouwstenen");
        let w = Client::new(EMPLOYER, &s);
        let text = w.card_text();
        let u = w.edit(&s, |d| text(d, "k1").push(&mut d.transact_mut(), " samen"));
        assert!(s.send(Role::Employer, &u).is_ok());
    }

    #[test]
    fn locks_and_private_writing() {
        let (mut s, e) = canvas_with_card("themas");
        let text = e.card_text();
        s.session.locked_sections.insert("themas".into());
        let u = e.edit(&s, |d| text(d, "k1").push(&mut d.transact_mut(), "!"));
        assert_eq!(s.code(Role::Employee, &u), Code::SectionLocked);
        s.session.locked_sections.clear();
        s.session.board_locked = true;
        assert_eq!(s.code(Role::Employee, &u), Code::BoardLocked);
        s.session.board_locked = false;
        s.session.locked_docs.insert("canvas".into());
        assert_eq!(s.code(Role::Employee, &u), Code::DocLocked);
        s.session.locked_docs.clear();
        s.session.private_writing = true;
        let e2 = Client::new(EMPLOYEE + 5, &s);
        assert_eq!(
            s.code(Role::Employee, &e2.add_card(&s, "p", "themas")),
            Code::PrivateWriting
        );
        s.session.private_writing = false;
        assert!(s.send(Role::Employee, &u).is_ok());
        // The whole state again under a lock: nothing new, so no lock applies.
        s.session.board_locked = true;
        let all = e
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert!(s.send(Role::Employee, &all).unwrap().resolved.is_empty());
        // And a reader's resent state is fine too, while a reader's new content is not.
        assert!(s.send(Role::Observer, &all).unwrap().resolved.is_empty());
        let o = Client::new(55, &s);
        assert_eq!(
            s.code(Role::Observer, &o.add_card(&s, "o", "themas")),
            Code::ReadOnly
        );
    }

    #[test]
    fn keyless_content_in_maps_is_refused_under_every_lock() {
        let (mut s, _e) = canvas_with_card("bouwstenen");
        // List content whose parent is the `cards` root map.
        let mut content = vec![yrs::block::BLOCK_ITEM_STRING_REF_NUMBER];
        let mut enc = EncoderV1::new();
        enc.write_string("sluiptekst");
        content.extend(enc.to_vec());
        let u = raw_item(EMPLOYER, 0, Ok("cards"), None, &content);
        assert_eq!(s.code(Role::Employer, &u), Code::SchemaViolation);
        s.session.board_locked = true;
        assert_eq!(s.code(Role::Employer, &u), Code::SchemaViolation);
        assert_eq!(s.code(Role::Facilitator, &u), Code::SchemaViolation);
        s.session.board_locked = false;
        // Keyless content inside a card's map.
        let card = id_of(&s, "k1");
        let u = raw_item(EMPLOYER, 0, Err(card), None, &any_content("x"));
        assert_eq!(s.code(Role::Employer, &u), Code::SchemaViolation);
        // A plain value straight under `cards`.
        let u = raw_item(EMPLOYER, 0, Ok("cards"), Some("k9"), &any_content("x"));
        assert_eq!(s.code(Role::Employer, &u), Code::SchemaViolation);
    }

    #[test]
    fn embeds_formats_and_deeper_types_in_card_text() {
        let (mut s, e) = canvas_with_card("themas");
        let text = e.card_text();
        let u = e.edit(&s, |d| {
            let t = text(d, "k1");
            t.insert_embed(&mut d.transact_mut(), 0, MapPrelim::from([("owner", "x")]));
        });
        assert_eq!(s.code(Role::Employee, &u), Code::SchemaViolation);
        let e = Client::new(EMPLOYEE + 1, &s);
        let text = e.card_text();
        let u = e.edit(&s, |d| {
            let t = text(d, "k1");
            t.insert_embed(&mut d.transact_mut(), 0, Any::from("plain embed"));
        });
        assert_eq!(s.code(Role::Employee, &u), Code::SchemaViolation);
        let e = Client::new(EMPLOYEE + 2, &s);
        let text = e.card_text();
        let u = e.edit(&s, |d| {
            let t = text(d, "k1");
            let attrs = yrs::types::Attrs::from([("owner".into(), Any::from("x"))]);
            t.format(&mut d.transact_mut(), 0, 1, attrs);
        });
        assert_eq!(s.code(Role::Employee, &u), Code::SchemaViolation);
    }

    #[test]
    fn unknown_roots_and_facilitator_roots() {
        let mut s = Server::new(DocName::Canvas);
        let f = Client::new(9, &s);
        let u = f.edit(&s, |d| {
            d.get_or_insert_map("geheim")
                .insert(&mut d.transact_mut(), "a", 1);
        });
        assert_eq!(s.code(Role::Facilitator, &u), Code::UnknownRoot);
        let u = f.edit(&s, |d| {
            d.get_or_insert_map("meta")
                .insert(&mut d.transact_mut(), "title", "x");
        });
        // (the refused root above is still in the facilitator's replica)
        assert_eq!(s.code(Role::Facilitator, &u), Code::UnknownRoot);
        let f = Client::new(10, &s);
        let u = f.edit(&s, |d| {
            d.get_or_insert_map("meta")
                .insert(&mut d.transact_mut(), "title", "x");
        });
        assert!(s.send(Role::Facilitator, &u).is_ok());
        let w = Client::new(EMPLOYER, &s);
        let u = w.edit(&s, |d| {
            d.get_or_insert_map("meta")
                .insert(&mut d.transact_mut(), "title", "y");
        });
        assert_eq!(s.code(Role::Employer, &u), Code::RoleNotAllowed);
        let w = Client::new(EMPLOYER + 1, &s);
        let u = w.edit(&s, |d| {
            d.get_or_insert_map("meta")
                .remove(&mut d.transact_mut(), "title");
        });
        assert_eq!(s.code(Role::Employer, &u), Code::RoleNotAllowed);
        // Control: session and rounds are the server's.
        let mut c = Server::new(DocName::Control);
        let f = Client::new(9, &c);
        let u = f.edit(&c, |d| {
            d.get_or_insert_map("session")
                .insert(&mut d.transact_mut(), "step", "6");
        });
        assert_eq!(c.code(Role::Facilitator, &u), Code::ControlManaged);
        let f = Client::new(11, &c);
        let u = f.edit(&c, |d| {
            d.get_or_insert_map("notities")
                .insert(&mut d.transact_mut(), "a", "b");
        });
        assert!(c.send(Role::Facilitator, &u).is_ok());
    }

    #[test]
    fn client_ids_belong_to_their_first_writer() {
        let (mut s, e) = canvas_with_card("bouwstenen");
        // An employer writing under the employee's client id: structs and a GC range.
        let w = Client::new(EMPLOYEE, &s);
        let text = w.card_text();
        let u = w.edit(&s, |d| {
            text(d, "k1").push(&mut d.transact_mut(), " namens jou")
        });
        assert_eq!(s.code(Role::Employer, &u), Code::ForeignClientId);
        let clock = s.sv().get(&yrs::ClientID::new(EMPLOYEE));
        assert_eq!(
            s.code(Role::Employer, &gc(EMPLOYEE, clock, 1_000_000)),
            Code::ForeignClientId
        );
        // Nor the server's own id.
        assert_eq!(
            s.code(
                Role::Facilitator,
                &gc(1, s.sv().get(&yrs::ClientID::new(1)), 5)
            ),
            Code::ForeignClientId
        );
        // The victim's own edits under that id still go in.
        let text = e.card_text();
        let u = e.edit(&s, |d| {
            text(d, "k1").push(&mut d.transact_mut(), " offline")
        });
        assert!(s.send(Role::Employee, &u).is_ok());
        // A GC range under one's own id is fine (typed and deleted offline).
        let clock = s.sv().get(&yrs::ClientID::new(EMPLOYEE));
        assert!(s.send(Role::Employee, &gc(EMPLOYEE, clock, 3)).is_ok());
    }

    #[test]
    fn missing_dependencies_and_skips() {
        let (mut s, e) = canvas_with_card("bouwstenen");
        let text = e.card_text();
        let _first = e.edit(&s, |d| text(d, "k1").push(&mut d.transact_mut(), "a"));
        let sv_after_first = e.doc.transact().state_vector();
        text(&e.doc, "k1").push(&mut e.doc.transact_mut(), "b");
        let second = e.doc.transact().encode_diff_v1(&sv_after_first);
        assert_eq!(s.code(Role::Employee, &second), Code::MissingDependencies);
        // A parent that does not exist anywhere.
        let u = raw_item(
            EMPLOYEE + 7,
            0,
            Err((999, 5)),
            Some("text"),
            &any_content("x"),
        );
        assert_eq!(s.code(Role::Employee, &u), Code::MissingDependencies);
        // A skip struct alone is never refused; it changes nothing.
        let mut enc = EncoderV1::new();
        enc.write_var(1u32);
        enc.write_var(1u32);
        enc.write_var(EMPLOYEE + 8);
        enc.write_var(0u32);
        enc.write_info(yrs::block::BLOCK_SKIP_REF_NUMBER);
        enc.write_var(4u32);
        enc.write_var(0u32);
        assert!(s
            .send(Role::Employee, &enc.to_vec())
            .unwrap()
            .resolved
            .is_empty());
    }

    #[test]
    fn depth_and_size_limits() {
        let mut s = Server::new(DocName::Party(crate::roles::Party::Employee));
        s.limits.max_depth = 8;
        let e = Client::new(EMPLOYEE, &s);
        let ok = e.edit(&s, |d| {
            let m = d.get_or_insert_map("notities");
            let mut txn = d.transact_mut();
            let mut cur = m.insert(&mut txn, "n", MapPrelim::default());
            for _ in 0..6 {
                cur = cur.insert(&mut txn, "n", MapPrelim::default());
            }
        });
        assert!(s.send(Role::Employee, &ok).is_ok());
        let e = Client::new(EMPLOYEE + 1, &s);
        let deep = e.edit(&s, |d| {
            let m = d.get_or_insert_map("diep");
            let mut txn = d.transact_mut();
            let mut cur = m.insert(&mut txn, "n", MapPrelim::default());
            for _ in 0..20 {
                cur = cur.insert(&mut txn, "n", MapPrelim::default());
            }
        });
        assert_eq!(s.code(Role::Employee, &deep), Code::TooDeep);
        s.limits.max_update_bytes = 10;
        assert_eq!(s.code(Role::Employee, &deep), Code::UpdateTooLarge);
        // Keyless content in a free root used as a map is refused there too.
        s.limits.max_update_bytes = 1 << 20;
        let e = Client::new(EMPLOYEE + 2, &s);
        let list = e.edit(&s, |d| {
            d.get_or_insert_array("notities")
                .push_back(&mut d.transact_mut(), 1);
        });
        assert_eq!(s.code(Role::Employee, &list), Code::SchemaViolation);
    }

    #[test]
    fn replaced_and_removed_items() {
        let (mut s, e) = canvas_with_card("themas");
        // Writing a new map over someone else's card replaces it: refused.
        let w = Client::new(EMPLOYER, &s);
        assert_eq!(
            s.code(Role::Employer, &w.add_card(&s, "k1", "themas")),
            Code::NotYourItem
        );
        // The owner removes it; then a fresh card under the same key is someone else's new card.
        let u = e.edit(&s, |d| {
            d.get_or_insert_map("cards")
                .remove(&mut d.transact_mut(), "k1");
        });
        assert!(s.send(Role::Employee, &u).is_ok());
        let w = Client::new(EMPLOYER + 1, &s);
        assert!(s
            .send(Role::Employer, &w.add_card(&s, "k1", "themas"))
            .is_ok());
        // The old owner's late edit into their removed card lands in deleted content: harmless.
        let text_of_old = e.doc.transact().encode_diff_v1(&s.sv());
        assert!(s.send(Role::Employee, &text_of_old).is_ok());
        let _ = e.doc.get_or_insert_map("cards").len(&e.doc.transact());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let (mut s, e) = canvas_with_card("bouwstenen");
        let good = e.add_card(&s, "k2", "bouwstenen");
        for i in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bytes = good.clone();
            let n = (seed % 4 + 1) as usize;
            for j in 0..n {
                let at = ((seed >> (8 * j)) as usize) % bytes.len();
                bytes[at] = (seed >> (3 * j + i % 5)) as u8;
            }
            if i % 7 == 0 {
                bytes.truncate((seed as usize) % bytes.len());
            }
            let _ = s.send(Role::Employee, &bytes);
        }
    }
}
